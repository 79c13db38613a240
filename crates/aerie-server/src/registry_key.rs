//! The registry's own signing key, with which it signs the certification of a version.
//!
//! It is a minisign key pair kept in `registry_key_file` (by default `DATA_DIR/registry.key`,
//! created with mode 0600 on first start). Replicas share the file. Its public key is served at
//! `/api/v1/registry/key`, so anyone can check a certification with `minisign -V`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aerie_core::certification;
use aerie_core::digest::Digest;
use aerie_core::name::PluginName;
use aerie_core::signature::{PublicKey, SecretKey, SignatureError, generate_keys};
use aerie_db::VersionRecord;
use semver::Version;

use crate::error::{ApiError, ApiResult};

/// Why the key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryKeyError {
    /// The key file could not be read or written.
    #[error("registry key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file is not an unencrypted minisign secret key.
    #[error("registry key file {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SignatureError,
    },
}

/// The registry's key pair. Cheap to clone.
#[derive(Clone)]
pub struct RegistryKey {
    secret: Arc<SecretKey>,
    public: PublicKey,
}

impl std::fmt::Debug for RegistryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryKey({})", self.public.key_id())
    }
}

impl RegistryKey {
    /// Loads the key from `file`, creating a new pair there when it does not exist.
    pub fn load(file: &Path) -> Result<RegistryKey, RegistryKeyError> {
        let io = |source| RegistryKeyError::Io {
            path: file.to_path_buf(),
            source,
        };
        let invalid = |source| RegistryKeyError::Invalid {
            path: file.to_path_buf(),
            source,
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let generated = generate_keys(None).map_err(invalid)?;
                if crate::keys::create_private_file(file, &generated.secret_text).map_err(io)? {
                    tracing::info!(path = %file.display(), key_id = %generated.public.key_id(),
                        "created the registry's signing key; back it up, certifications are signed with it");
                    generated.secret_text
                } else {
                    // Another replica sharing the file created it first.
                    std::fs::read_to_string(file).map_err(io)?
                }
            }
            Err(err) => return Err(io(err)),
        };
        let secret = SecretKey::parse(&text, None).map_err(invalid)?;
        let public = secret.public_key();
        Ok(RegistryKey {
            secret: Arc::new(secret),
            public,
        })
    }

    /// The key that verifies.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The registry's signature on the certification of `record`.
    pub fn sign(&self, record: &VersionRecord) -> ApiResult<String> {
        let (name, version, digest) = subject(record)?;
        certification::sign(&name, &version, &digest, &self.secret).map_err(ApiError::internal)
    }

    /// Whether `record` is certified by this registry: certified in the database and its
    /// signature verifies with this key, so a changed row certifies nothing.
    pub fn certifies(&self, record: &VersionRecord) -> bool {
        let (Some("certified"), Some(signature)) = (
            record.certification.as_deref(),
            record.certification_signature.as_deref(),
        ) else {
            return false;
        };
        subject(record).is_ok_and(|(name, version, digest)| {
            certification::verify(&name, &version, &digest, signature, &self.public).is_ok()
        })
    }
}

/// The name, version and digest a certification of `record` covers.
pub fn subject(record: &VersionRecord) -> ApiResult<(PluginName, Version, Digest)> {
    Ok((
        format!("{}/{}", record.namespace, record.name)
            .parse()
            .map_err(ApiError::internal)?,
        Version::parse(&record.version).map_err(ApiError::internal)?,
        record.digest.parse().map_err(ApiError::internal)?,
    ))
}
