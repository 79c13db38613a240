use super::*;

const ARCHIVE: &[u8] = b"pretend this is a package archive";

fn name() -> PluginName {
    "acme/hello".parse().unwrap()
}

fn version() -> Version {
    Version::new(1, 0, 0)
}

fn keys() -> (PublicKey, SecretKey) {
    let generated = generate_keys(None).unwrap();
    let secret = SecretKey::parse(&generated.secret_text, None).unwrap();
    let public = PublicKey::parse(&generated.public_text).unwrap();
    assert_eq!(public.key_id(), secret.key_id());
    (public, secret)
}

#[test]
fn a_signature_verifies_with_its_public_key() {
    let (public, secret) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    assert!(signature.starts_with("untrusted comment: signature from aerie secret key"));
    let verified = verify_package(ARCHIVE, &name(), &version(), &signature, &public).unwrap();
    assert_eq!(verified.key_id, public.key_id());
    assert_eq!(
        verified.trusted_comment,
        format!("aerie-package acme/hello@1.0.0 {}", Digest::of(ARCHIVE))
    );
}

#[test]
fn the_signing_key_id_is_read_before_verifying() {
    let (public, secret) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    assert_eq!(signature_key_id(&signature).unwrap(), public.key_id());
    assert_eq!(
        signature_key_id("junk").unwrap_err().code(),
        "signature_malformed"
    );
}

#[test]
fn the_public_key_reads_from_a_file_or_a_bare_line() {
    let (public, _) = keys();
    let bare = PublicKey::parse(&public.to_base64()).unwrap();
    assert_eq!(bare.key_id(), public.key_id());
    let file = PublicKey::parse(&public.to_file_text()).unwrap();
    assert_eq!(file.key_id(), public.key_id());
}

#[test]
fn a_signature_from_another_key_is_refused_with_both_key_ids() {
    let (_, secret) = keys();
    let (other_public, _) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    let err = verify_package(ARCHIVE, &name(), &version(), &signature, &other_public).unwrap_err();
    assert_eq!(err.code(), "signature_wrong_key");
    assert_eq!(
        err.to_string(),
        format!(
            "the package was signed by key {}, not by key {}",
            secret.key_id(),
            other_public.key_id()
        )
    );
}

#[test]
fn a_tampered_package_is_refused() {
    let (public, secret) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    let mut tampered = ARCHIVE.to_vec();
    tampered[0] ^= 1;
    let err = verify_package(&tampered, &name(), &version(), &signature, &public).unwrap_err();
    assert_eq!(err, SignatureError::Tampered);
    assert_eq!(
        err.to_string(),
        "the signature does not match the package: the package was changed after signing"
    );
}

#[test]
fn a_signature_for_another_name_or_version_is_refused() {
    let (public, secret) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    let err = verify_package(
        ARCHIVE,
        &name(),
        &Version::new(2, 0, 0),
        &signature,
        &public,
    )
    .unwrap_err();
    assert_eq!(err.code(), "signature_other_package");
    let digest = Digest::of(ARCHIVE);
    assert_eq!(
        err.to_string(),
        format!(
            "the signature is for acme/hello@1.0.0 {digest}, not for acme/hello@2.0.0 {digest}"
        )
    );
}

#[test]
fn an_edited_trusted_comment_breaks_the_signature() {
    let (public, secret) = keys();
    let signature = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    let forged = signature.replace("acme/hello@1.0.0", "acme/hello@9.0.0");
    let err =
        verify_package(ARCHIVE, &name(), &Version::new(9, 0, 0), &forged, &public).unwrap_err();
    assert_eq!(err, SignatureError::Tampered);
}

#[test]
fn malformed_signatures_are_refused_without_panicking() {
    let (public, secret) = keys();
    let good = sign_package(ARCHIVE, &name(), &version(), &secret).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cases = [
        String::new(),
        "not a signature".to_string(),
        "untrusted comment: x\n!!!not base64!!!\ntrusted comment: y\nAAAA\n".to_string(),
        lines[..2].join("\n"),
        format!(
            "{}\n{}\n{}\n{}",
            lines[0],
            &lines[1][..20],
            lines[2],
            lines[3]
        ),
        format!(
            "{}\n{}\n{}\n{}",
            lines[0],
            lines[1],
            lines[2],
            &lines[3][..10]
        ),
        "x".repeat(100_000),
    ];
    for case in &cases {
        let err = verify_package(ARCHIVE, &name(), &version(), case, &public).unwrap_err();
        assert!(
            matches!(err.code(), "signature_malformed" | "signature_mismatch"),
            "{case:?}: {err}"
        );
    }
    let err = verify_package(ARCHIVE, &name(), &version(), "garbage", &public).unwrap_err();
    assert_eq!(err.code(), "signature_malformed");
    assert!(
        err.to_string().starts_with("the signature is malformed: "),
        "{err}"
    );
}

#[test]
fn malformed_keys_are_refused() {
    for text in [
        "",
        "untrusted comment: only a comment",
        "RWQnot-a-key",
        "RW",
    ] {
        let err = PublicKey::parse(text).unwrap_err();
        assert_eq!(err.code(), "signature_key_malformed", "{text:?}");
    }
    let err = SecretKey::parse("not a secret key", None).unwrap_err();
    assert_eq!(err.code(), "signature_key_malformed");
}

#[test]
fn an_encrypted_secret_key_needs_its_password() {
    let generated = generate_keys(Some("correct horse".to_string())).unwrap();
    let err = SecretKey::parse(&generated.secret_text, None).unwrap_err();
    assert_eq!(err.code(), "signature_key_encrypted");
    let key = SecretKey::parse(&generated.secret_text, Some("correct horse".to_string())).unwrap();
    let signature = sign_package(ARCHIVE, &name(), &version(), &key).unwrap();
    verify_package(ARCHIVE, &name(), &version(), &signature, &generated.public).unwrap();
    let wrong = SecretKey::parse(&generated.secret_text, Some("wrong".to_string()));
    assert!(wrong.is_err());
}

#[test]
fn the_secret_key_is_never_printed() {
    let (_, secret) = keys();
    assert_eq!(
        format!("{secret:?}"),
        format!("SecretKey({})", secret.key_id())
    );
}
