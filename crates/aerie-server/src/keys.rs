//! The server's master keys, which wrap every space's data key.
//!
//! They come from `AERIE_MASTER_KEY` (keys separated by commas, the first wrapping) or from
//! the key file (`master_key_file`, by default `DATA_DIR/master.key`, created with mode 0600
//! on first start). A replica that meets a data key wrapped by a key it does not hold reads
//! the file again, so a rotation on one replica reaches the others without a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aerie_core::sealed::{DataKey, Keyring, MasterKey, SealError, WrappedKey};

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Source {
    Environment,
    File(PathBuf),
}

/// Why the keys could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The keys are malformed.
    #[error("{origin}: {source}")]
    Invalid {
        /// Where they came from.
        origin: String,
        /// What is wrong.
        source: SealError,
    },
    /// Keys from the environment cannot be rotated by the server.
    #[error(
        "the master keys come from AERIE_MASTER_KEY, which the server cannot change: generate a key with `aerie admin generate-master-key`, put it first in AERIE_MASTER_KEY (keeping the old one after a comma), restart, then rotate"
    )]
    FromEnvironment,
}

/// The master keyring and where it lives. Cheap to clone.
#[derive(Clone)]
pub struct MasterKeys {
    keyring: Arc<RwLock<Arc<Keyring>>>,
    source: Source,
    /// Held for reading while a data key is wrapped and stored, and for writing by a
    /// rotation, so no key wrapped by a retiring master key is stored after the re-wrap.
    rotation: Arc<tokio::sync::RwLock<()>>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKeys({:?})", self.source)
    }
}

impl MasterKeys {
    /// Loads the keys from `environment` (the value of `AERIE_MASTER_KEY`) if given, else
    /// from `file`, creating it with a new key if it does not exist.
    pub fn load(environment: Option<&str>, file: &Path) -> Result<MasterKeys, KeyError> {
        let (keyring, source) = match environment {
            Some(text) => (
                Keyring::parse(text).map_err(|source| KeyError::Invalid {
                    origin: "AERIE_MASTER_KEY".into(),
                    source,
                })?,
                Source::Environment,
            ),
            None => {
                let keyring = match read_file(file)? {
                    Some(keyring) => keyring,
                    None => {
                        let keyring = Keyring::new(vec![MasterKey::generate()])
                            .expect("one key is a keyring");
                        write_file(file, &keyring)?;
                        tracing::info!(path = %file.display(), "created a master key file; back it up, secrets cannot be read without it");
                        keyring
                    }
                };
                (keyring, Source::File(file.to_path_buf()))
            }
        };
        Ok(MasterKeys {
            keyring: Arc::new(RwLock::new(Arc::new(keyring))),
            source,
            rotation: Arc::default(),
        })
    }

    /// Holds off rotations while a new data key is wrapped and stored.
    pub async fn wrapping(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        Arc::clone(&self.rotation).read_owned().await
    }

    /// Holds off every other wrap during a rotation.
    pub async fn rotating(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.rotation).write_owned().await
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.keyring.read().unwrap_or_else(|err| err.into_inner()))
    }

    /// Unwraps a space's data key, reading the key file again if another replica rotated
    /// to a key this one does not hold yet.
    pub fn unwrap(&self, wrapped: &WrappedKey, owner: &str) -> Result<DataKey, SealError> {
        match self.keyring().unwrap(wrapped, owner) {
            Err(SealError::UnknownMasterKey(id)) => {
                if let Source::File(path) = &self.source
                    && let Ok(Some(keyring)) = read_file(path)
                {
                    let keyring = Arc::new(keyring);
                    *self.keyring.write().unwrap_or_else(|err| err.into_inner()) =
                        Arc::clone(&keyring);
                    return keyring.unwrap(wrapped, owner);
                }
                Err(SealError::UnknownMasterKey(id))
            }
            other => other,
        }
    }

    /// Starts a rotation: a new key goes first in the key file (the old ones stay, so every
    /// replica can still unwrap), and is returned as the keyring to re-wrap with. With keys
    /// from the environment the key to rotate to must already be first there.
    pub fn begin_rotation(&self) -> Result<Arc<Keyring>, KeyError> {
        let Source::File(path) = &self.source else {
            return Ok(self.keyring());
        };
        let current = self.keyring();
        let mut keys = vec![MasterKey::generate()];
        keys.extend(current.keys().iter().cloned());
        let keyring = Arc::new(Keyring::new(keys).expect("keys are given"));
        write_file(path, &keyring)?;
        *self.keyring.write().unwrap_or_else(|err| err.into_inner()) = Arc::clone(&keyring);
        Ok(keyring)
    }

    /// Ends a rotation once every data key is wrapped by the primary: the other keys leave
    /// the key file. Returns the ids of the keys retired.
    pub fn finish_rotation(&self) -> Result<Vec<String>, KeyError> {
        if self.from_environment() {
            // The environment is the operator's to change.
            return Ok(Vec::new());
        }
        let current = self.keyring();
        let retired: Vec<String> = current.keys()[1..]
            .iter()
            .map(|key| key.id().to_string())
            .collect();
        if let Source::File(path) = &self.source {
            let primary_only =
                Keyring::new(vec![current.primary().clone()]).expect("one key is a keyring");
            write_file(path, &primary_only)?;
            *self.keyring.write().unwrap_or_else(|err| err.into_inner()) = Arc::new(primary_only);
        }
        Ok(retired)
    }

    /// Whether the keys come from the environment.
    pub fn from_environment(&self) -> bool {
        matches!(self.source, Source::Environment)
    }
}

fn read_file(path: &Path) -> Result<Option<Keyring>, KeyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Keyring::parse(&text)
            .map(Some)
            .map_err(|source| KeyError::Invalid {
                origin: path.display().to_string(),
                source,
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, keyring: &Keyring) -> Result<(), KeyError> {
    write_private_file(path, &keyring.to_text()).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a key file whole or not at all: a temporary file (mode 0600) renamed into place.
pub(crate) fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let mut file = tempfile::NamedTempFile::new_in(directory)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}
