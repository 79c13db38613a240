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
                        let created =
                            create_private_file(file, &keyring.to_text()).map_err(|source| {
                                KeyError::Io {
                                    path: file.to_path_buf(),
                                    source,
                                }
                            })?;
                        if created {
                            tracing::info!(path = %file.display(), "created a master key file; back it up, secrets cannot be read without it");
                            keyring
                        } else {
                            // Another replica sharing the file created it first: its key is
                            // the one every replica uses.
                            read_file(file)?.ok_or_else(|| KeyError::Io {
                                path: file.to_path_buf(),
                                source: std::io::ErrorKind::NotFound.into(),
                            })?
                        }
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

    /// Reads the key file again, so a key another replica rotated to is the one this
    /// replica wraps with (keys from the environment do not change).
    pub fn refresh(&self) -> Result<(), KeyError> {
        if let Source::File(path) = &self.source
            && let Some(keyring) = read_file(path)?
        {
            *self.keyring.write().unwrap_or_else(|err| err.into_inner()) = Arc::new(keyring);
        }
        Ok(())
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
    /// from the environment the key to rotate to must already be first there. The caller
    /// holds the rotation lock every replica takes, so the file read here is not changed by
    /// another rotation before it is written back.
    pub fn begin_rotation(&self) -> Result<Arc<Keyring>, KeyError> {
        let Source::File(path) = &self.source else {
            return Ok(self.keyring());
        };
        self.refresh()?;
        let current = self.keyring();
        let mut keys = vec![MasterKey::generate()];
        keys.extend(current.keys().iter().cloned());
        let keyring = Arc::new(Keyring::new(keys).expect("keys are given"));
        write_file(path, &keyring)?;
        *self.keyring.write().unwrap_or_else(|err| err.into_inner()) = Arc::clone(&keyring);
        Ok(keyring)
    }

    /// Ends a rotation: the keys other than the primary leave the key file, except those
    /// that still wrap a data key (`in_use`, by id: a space another replica created while the
    /// rotation ran). Returns the ids of the keys retired.
    pub fn finish_rotation(&self, in_use: &[String]) -> Result<Vec<String>, KeyError> {
        if self.from_environment() {
            // The environment is the operator's to change.
            return Ok(Vec::new());
        }
        let current = self.keyring();
        let (kept, retired): (Vec<&MasterKey>, Vec<&MasterKey>) = current.keys()[1..]
            .iter()
            .partition(|key| in_use.iter().any(|id| id == key.id()));
        if let Source::File(path) = &self.source {
            let mut keys = vec![current.primary().clone()];
            keys.extend(kept.into_iter().cloned());
            let remaining = Keyring::new(keys).expect("the primary is kept");
            write_file(path, &remaining)?;
            *self.keyring.write().unwrap_or_else(|err| err.into_inner()) = Arc::new(remaining);
        }
        Ok(retired.iter().map(|key| key.id().to_string()).collect())
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
    private_temp_file(path, text)?
        .persist(path)
        .map_err(|err| err.error)?;
    Ok(())
}

/// Creates a key file whole, unless one is there already: then nothing is written and the
/// answer is `false`. Replicas sharing the file that start together race here; one wins, the
/// others read its key.
pub(crate) fn create_private_file(path: &Path, text: &str) -> std::io::Result<bool> {
    match private_temp_file(path, text)?.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err.error),
    }
}

/// `text` in a temporary file (mode 0600) beside `path`, written and synced.
fn private_temp_file(path: &Path, text: &str) -> std::io::Result<tempfile::NamedTempFile> {
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
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_creating_the_key_file_at_once_all_end_with_the_winners_key() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("master.key");
            let start = std::sync::Barrier::new(4);
            let primaries: Vec<String> = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            let keys = MasterKeys::load(None, &path).unwrap();
                            keys.keyring().primary().id().to_string()
                        })
                    })
                    .collect();
                racers
                    .into_iter()
                    .map(|racer| racer.join().unwrap())
                    .collect()
            });
            let stored = read_file(&path).unwrap().unwrap();
            assert_eq!(stored.keys().len(), 1, "round {round}");
            for primary in &primaries {
                assert_eq!(primary, stored.primary().id(), "round {round}");
            }
        }
    }

    #[test]
    fn a_rotation_keeps_the_keys_that_still_wrap_a_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let keys = MasterKeys::load(None, &path).unwrap();
        let old = keys.keyring().primary().id().to_string();
        let other_replica = MasterKeys::load(None, &path).unwrap();
        let rotated = keys.begin_rotation().unwrap();
        // The other replica reads the file again before it wraps: the new key.
        other_replica.refresh().unwrap();
        assert_eq!(
            other_replica.keyring().primary().id(),
            rotated.primary().id()
        );
        assert!(
            keys.finish_rotation(std::slice::from_ref(&old))
                .unwrap()
                .is_empty()
        );
        assert_eq!(read_file(&path).unwrap().unwrap().keys().len(), 2);
        assert_eq!(keys.finish_rotation(&[]).unwrap(), [old]);
        assert_eq!(read_file(&path).unwrap().unwrap().keys().len(), 1);
    }
}
