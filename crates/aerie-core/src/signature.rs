//! Publisher keys and detached package signatures, in minisign's format.
//!
//! A signature is an Ed25519 signature over the package archive (minisign's prehashed mode),
//! with a trusted comment that binds it to the package's name, version and digest:
//!
//! ```text
//! untrusted comment: signature from aerie secret key
//! RUQ...
//! trusted comment: aerie-package acme/hello@0.1.0 sha256:9f86d0...
//! Zm9v...
//! ```
//!
//! Ordinary tools verify it: `minisign -Vm acme-hello-0.1.0.aerie -p aerie.pub`. Signatures
//! made by `minisign -Sm` itself are accepted too; their trusted comment is not checked.

use std::fmt;
use std::io::Cursor;

use semver::Version;

use crate::digest::Digest;
use crate::name::PluginName;

/// The prefix of the trusted comment Aerie writes.
const TRUSTED_COMMENT_PREFIX: &str = "aerie-package ";

/// Why signing or verifying failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature text is not a minisign signature.
    #[error("the signature is malformed: {0}")]
    Malformed(String),
    /// The key text is not a minisign key.
    #[error("the {which} key is malformed: {reason}")]
    MalformedKey {
        /// `public` or `secret`.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// The signature was made by a different key.
    #[error("the package was signed by key {signed_by}, not by key {expected}")]
    WrongKey {
        /// The key id in the signature.
        signed_by: String,
        /// The key id of the public key given.
        expected: String,
    },
    /// The signature does not match the bytes.
    #[error("the signature does not match the package: the package was changed after signing")]
    Tampered,
    /// The trusted comment names another package.
    #[error("the signature is for {signed}, not for {actual}")]
    OtherPackage {
        /// What the trusted comment names.
        signed: String,
        /// What the package is.
        actual: String,
    },
    /// The secret key is encrypted and the password is missing or wrong.
    #[error("the secret key is encrypted: {0}")]
    Encrypted(String),
}

impl SignatureError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::MalformedKey { .. } => "signature_key_malformed",
            SignatureError::WrongKey { .. } => "signature_wrong_key",
            SignatureError::Tampered => "signature_mismatch",
            SignatureError::OtherPackage { .. } => "signature_other_package",
            SignatureError::Encrypted(_) => "signature_key_encrypted",
        }
    }
}

/// A publisher's public key.
#[derive(Clone)]
pub struct PublicKey(minisign::PublicKey);

impl PublicKey {
    /// Reads a public key: a minisign `.pub` file, or only its base64 line.
    pub fn parse(text: &str) -> Result<PublicKey, SignatureError> {
        let malformed = |reason: String| SignatureError::MalformedKey {
            which: "public",
            reason,
        };
        let line = key_line(text).ok_or_else(|| malformed("it is empty".to_string()))?;
        minisign::PublicKey::from_base64(line)
            .map(PublicKey)
            .map_err(|err| malformed(err.to_string()))
    }

    /// The key id, as minisign prints it (16 uppercase hex digits).
    pub fn key_id(&self) -> String {
        key_id(self.0.keynum())
    }

    /// The base64 line of the key.
    pub fn to_base64(&self) -> String {
        self.0.to_base64()
    }

    /// The key as a minisign `.pub` file.
    pub fn to_file_text(&self) -> String {
        format!(
            "untrusted comment: aerie public key {}\n{}\n",
            self.key_id(),
            self.to_base64()
        )
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// A publisher's secret key. Its `Debug` output never shows the key.
pub struct SecretKey(minisign::SecretKey);

impl SecretKey {
    /// Reads a minisign secret key file; `password` decrypts an encrypted one.
    pub fn parse(text: &str, password: Option<String>) -> Result<SecretKey, SignatureError> {
        use base64::Engine as _;
        let malformed = |reason: String| SignatureError::MalformedKey {
            which: "secret",
            reason,
        };
        let line = key_line(text).ok_or_else(|| malformed("it is empty".to_string()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|err| malformed(err.to_string()))?;
        let encrypted = minisign::SecretKey::from_bytes(&bytes)
            .map_err(|err| malformed(err.to_string()))?
            .is_encrypted();
        let boxed =
            minisign::SecretKeyBox::from_string(text).map_err(|err| malformed(err.to_string()))?;
        let key = match (encrypted, password) {
            (true, None) => {
                return Err(SignatureError::Encrypted(
                    "give its password to use it".to_string(),
                ));
            }
            (true, Some(password)) => boxed
                .into_secret_key(Some(password))
                .map_err(|err| SignatureError::Encrypted(err.to_string()))?,
            (false, _) => boxed
                .into_unencrypted_secret_key()
                .map_err(|err| malformed(err.to_string()))?,
        };
        Ok(SecretKey(key))
    }

    /// The key id, matching its public key's.
    pub fn key_id(&self) -> String {
        key_id(self.0.keynum())
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(
            minisign::PublicKey::from_secret_key(&self.0)
                .expect("an unencrypted secret key holds its public key"),
        )
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.key_id())
    }
}

/// A freshly generated key pair, as the text of minisign key files.
pub struct GeneratedKeys {
    /// The public key.
    pub public: PublicKey,
    /// The `.pub` file.
    pub public_text: String,
    /// The secret key file. Keep it private.
    pub secret_text: String,
}

/// Generates a key pair. With a password the secret key is encrypted (minisign's scrypt).
pub fn generate_keys(password: Option<String>) -> Result<GeneratedKeys, SignatureError> {
    let failed = |err: minisign::PError| SignatureError::MalformedKey {
        which: "secret",
        reason: format!("generating it failed: {err}"),
    };
    let pair = match password {
        Some(password) => minisign::KeyPair::generate_encrypted_keypair(Some(password)),
        None => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(failed)?;
    let public = PublicKey(pair.pk);
    let comment = format!("aerie secret key {}", public.key_id());
    let secret_text = pair
        .sk
        .to_box(Some(&comment))
        .map_err(failed)?
        .into_string();
    Ok(GeneratedKeys {
        public_text: public.to_file_text(),
        public,
        secret_text,
    })
}

/// The package a signature's trusted comment names.
fn trusted_comment(name: &PluginName, version: &Version, digest: &Digest) -> String {
    format!("{TRUSTED_COMMENT_PREFIX}{name}@{version} {digest}")
}

/// Signs the package `archive` (named `name@version`), returning the `.minisig` text.
pub fn sign_package(
    archive: &[u8],
    name: &PluginName,
    version: &Version,
    key: &SecretKey,
) -> Result<String, SignatureError> {
    let comment = trusted_comment(name, version, &Digest::of(archive));
    sign_message(archive, &comment, key)
}

/// Signs `message` with `comment` as its trusted comment, returning the `.minisig` text.
pub(crate) fn sign_message(
    message: &[u8],
    comment: &str,
    key: &SecretKey,
) -> Result<String, SignatureError> {
    let untrusted = format!("signature from aerie secret key {}", key.key_id());
    let signature = minisign::sign(
        None,
        &key.0,
        Cursor::new(message),
        Some(comment),
        Some(&untrusted),
    )
    .map_err(|err| SignatureError::Malformed(err.to_string()))?;
    Ok(signature.into_string())
}

/// The id of the key that made a signature, read without verifying it, to find the key to
/// verify it with.
pub fn signature_key_id(signature: &str) -> Result<String, SignatureError> {
    if signature.len() > 64 * 1024 {
        return Err(SignatureError::Malformed(
            "it is larger than 64 KiB".to_string(),
        ));
    }
    let signature = minisign::SignatureBox::from_string(signature)
        .map_err(|err| SignatureError::Malformed(err.to_string()))?;
    Ok(key_id(signature.keynum()))
}

/// What a valid signature says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The id of the key that signed.
    pub key_id: String,
    /// The trusted comment, signed along with the package.
    pub trusted_comment: String,
}

/// Verifies `signature` (the `.minisig` text) over the package `archive`, named
/// `name@version`, with `key`.
pub fn verify_package(
    archive: &[u8],
    name: &PluginName,
    version: &Version,
    signature: &str,
    key: &PublicKey,
) -> Result<VerifiedSignature, SignatureError> {
    let verified = verify_message(archive, signature, key)?;
    // The comment is covered by the signature; when it is ours, it must name this package.
    if verified.trusted_comment.starts_with(TRUSTED_COMMENT_PREFIX) {
        let expected = trusted_comment(name, version, &Digest::of(archive));
        if verified.trusted_comment != expected {
            return Err(SignatureError::OtherPackage {
                signed: verified
                    .trusted_comment
                    .trim_start_matches(TRUSTED_COMMENT_PREFIX)
                    .to_string(),
                actual: expected
                    .trim_start_matches(TRUSTED_COMMENT_PREFIX)
                    .to_string(),
            });
        }
    }
    Ok(verified)
}

/// Verifies `signature` (the `.minisig` text) over `message` with `key`, returning its
/// signer and trusted comment.
pub(crate) fn verify_message(
    message: &[u8],
    signature: &str,
    key: &PublicKey,
) -> Result<VerifiedSignature, SignatureError> {
    if signature.len() > 64 * 1024 {
        return Err(SignatureError::Malformed(
            "it is larger than 64 KiB".to_string(),
        ));
    }
    let signature = minisign::SignatureBox::from_string(signature)
        .map_err(|err| SignatureError::Malformed(err.to_string()))?;
    let signed_by = key_id(signature.keynum());
    if signed_by != key.key_id() {
        return Err(SignatureError::WrongKey {
            signed_by,
            expected: key.key_id(),
        });
    }
    let comment = signature
        .trusted_comment()
        .map_err(|err| SignatureError::Malformed(err.to_string()))?;
    minisign::verify(&key.0, &signature, Cursor::new(message), true, false, false).map_err(
        |err| match err.kind() {
            minisign::ErrorKind::Verify => SignatureError::Tampered,
            _ => SignatureError::Malformed(err.to_string()),
        },
    )?;
    Ok(VerifiedSignature {
        key_id: signed_by,
        trusted_comment: comment,
    })
}

/// The base64 line of a minisign key file: the first line that is not its comment.
fn key_line(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
}

fn key_id(keynum: &[u8]) -> String {
    // minisign prints the little-endian key number as a 64-bit hex integer.
    keynum
        .iter()
        .rev()
        .map(|byte| format!("{byte:02X}"))
        .collect()
}

#[cfg(test)]
mod tests;
