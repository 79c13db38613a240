//! `aerie key generate`, `aerie plugin sign` and `aerie plugin verify`.

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aerie_core::signature::{self, PublicKey, SecretKey};
use anyhow::{Context as _, bail};

use crate::output::load_package;

/// The environment variable holding the password of an encrypted secret key.
const PASSWORD_VAR: &str = "AERIE_KEY_PASSWORD";

pub fn generate(output: &Path, encrypt: bool, force: bool) -> anyhow::Result<()> {
    let secret_path = with_extension(output, "key");
    let public_path = with_extension(output, "pub");
    if !force {
        for path in [&secret_path, &public_path] {
            if path.exists() {
                bail!(
                    "{} already exists; pass --force to replace it",
                    path.display()
                );
            }
        }
    }
    let password = if encrypt {
        Some(password("Password for the new key: ", true)?)
    } else {
        None
    };
    let keys = signature::generate_keys(password)?;
    write_private(&secret_path, keys.secret_text.as_bytes())?;
    fs::write(&public_path, &keys.public_text)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!("Generated key {}", keys.public.key_id());
    println!("  secret key  {}  (keep it private)", secret_path.display());
    println!("  public key  {}", public_path.display());
    Ok(())
}

pub fn sign(package_path: &Path, key_path: &Path, output: Option<PathBuf>) -> anyhow::Result<()> {
    let (bytes, package) = load_package(package_path)?;
    let key_text = fs::read_to_string(key_path)
        .with_context(|| format!("cannot read the secret key {}", key_path.display()))?;
    let key = match SecretKey::parse(&key_text, None) {
        Err(signature::SignatureError::Encrypted(_)) => {
            SecretKey::parse(&key_text, Some(password("Password for the key: ", false)?))
        }
        other => other,
    }
    .with_context(|| format!("cannot use the secret key {}", key_path.display()))?;
    let plugin = &package.manifest.plugin;
    let signature = signature::sign_package(&bytes, &plugin.name, &plugin.version, &key)?;
    let output = output.unwrap_or_else(|| default_signature_path(package_path));
    fs::write(&output, signature).with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "Signed {} {} ({}) with key {}",
        plugin.name,
        plugin.version,
        package.digest,
        key.key_id()
    );
    println!("  signature  {}", output.display());
    Ok(())
}

pub fn verify(
    package_path: &Path,
    public_key_path: &Path,
    signature_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (bytes, package) = load_package(package_path)?;
    let key_text = fs::read_to_string(public_key_path)
        .with_context(|| format!("cannot read the public key {}", public_key_path.display()))?;
    let key = PublicKey::parse(&key_text)?;
    let signature_path = signature_path.unwrap_or_else(|| default_signature_path(package_path));
    let signature_text = read_limited(&signature_path, 64 * 1024)
        .with_context(|| format!("cannot read the signature {}", signature_path.display()))?;
    let plugin = &package.manifest.plugin;
    let verified =
        signature::verify_package(&bytes, &plugin.name, &plugin.version, &signature_text, &key)
            .with_context(|| format!("{} failed verification", package_path.display()))?;
    println!(
        "Signature OK: {} {} ({}) signed by key {}",
        plugin.name, plugin.version, package.digest, verified.key_id
    );
    println!("  trusted comment  {}", verified.trusted_comment);
    Ok(())
}

pub(crate) fn default_signature_path(package: &Path) -> PathBuf {
    let mut name = package.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn with_extension(base: &Path, extension: &str) -> PathBuf {
    let mut name: OsString = base.as_os_str().to_owned();
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

/// Reads a text file, refusing one larger than `limit` bytes before reading it.
fn read_limited(path: &Path, limit: u64) -> anyhow::Result<String> {
    let size = fs::metadata(path)?.len();
    if size > limit {
        bail!("the file is {size} bytes; a signature is at most {limit}");
    }
    String::from_utf8(fs::read(path)?).context("the file is not UTF-8 text")
}

/// Writes a file only its owner can read.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies only to a new file; a replaced one may have been readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The key password: from the environment, or asked for on the terminal.
fn password(prompt: &str, confirm: bool) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return Ok(password);
    }
    let password = rpassword::prompt_password(prompt)
        .with_context(|| format!("cannot read a password; set {PASSWORD_VAR}"))?;
    if confirm && rpassword::prompt_password("Repeat the password: ")? != password {
        bail!("the passwords differ");
    }
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
