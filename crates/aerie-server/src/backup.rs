//! Backups of an embedded deployment (SQLite and a blob store), taken while it serves:
//! a consistent snapshot of the database and of plugins' state, the blobs the snapshot
//! refers to, the key files, and a manifest with every file's digest, written last (a
//! directory without it is no backup). A backup verifies on its own and restores into an
//! empty data directory. Deployments on PostgreSQL back the database up with its own tools
//! (`pg_dump`, point-in-time recovery) and the bucket with the object store's (versioning,
//! replication); see the deployment guide.

use std::path::{Path, PathBuf};

use aerie_blob::BlobStore;
use aerie_core::digest::Digest;
use aerie_db::Database;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::Config;

/// The manifest's name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The metadata database's file in a backup.
const DATABASE_FILE: &str = "aerie.db";
/// Plugins' key-value state's file in a backup.
const STATE_FILE: &str = "plugin-state.db";
/// The master key file in a backup.
const MASTER_KEY_FILE: &str = "keys/master.key";
/// The registry key file in a backup.
const REGISTRY_KEY_FILE: &str = "keys/registry.key";
/// Where blobs go in a backup: `blobs/sha256/HEX`.
const BLOBS_DIR: &str = "blobs";
/// The format this version writes and reads.
const FORMAT: u32 = 1;

/// Why a backup, a verification or a restore did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] aerie_db::DbError),
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] aerie_blob::BlobError),
    /// The deployment is not one this command backs up or restores.
    #[error("{0}")]
    Unsupported(String),
    /// The target is not empty.
    #[error("{0} is not empty: a backup is written into, and restored into, an empty place")]
    NotEmpty(PathBuf),
    /// The backup does not hold what its manifest says.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
}

type BackupResult<T> = Result<T, BackupError>;

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackedUpFile {
    /// Its path in the backup directory.
    pub path: String,
    /// `sha256:HEX` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What a backup holds: written last, read first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupManifest {
    /// The layout's version.
    pub format: u32,
    /// The Aerie version that wrote it.
    pub aerie_version: String,
    /// When the database snapshot was taken, milliseconds since the epoch.
    pub taken_at: i64,
    /// The database files and the key files.
    pub files: Vec<BackedUpFile>,
    /// The package blobs, each stored under its digest.
    pub blobs: Vec<BackedUpFile>,
    /// Whether the master keys come from the environment (`AERIE_MASTER_KEY`), and are then
    /// not in the backup: the operator keeps them.
    pub master_key_from_environment: bool,
}

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The manifest.
    pub manifest: BackupManifest,
    /// Versions in the backed-up database.
    pub versions: usize,
}

fn sqlite_path(config: &Config) -> BackupResult<PathBuf> {
    let url = config.database_url();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| {
            BackupError::Unsupported(
                "the database is PostgreSQL: back it up with pg_dump or point-in-time recovery, and the bucket with the object store's versioning (see docs/deploy.md)".into(),
            )
        })?;
    Ok(PathBuf::from(path.split('?').next().unwrap_or(path)))
}

fn state_path(config: &Config) -> PathBuf {
    config.data_dir.join("plugin-state.db")
}

fn empty_dir(dir: &Path) -> BackupResult<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(dir))
        }
        Err(err) => Err(io(dir)(err)),
    }
}

fn digest_of_file(path: &Path) -> BackupResult<(String, u64)> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

fn record(dir: &Path, path: &str) -> BackupResult<BackedUpFile> {
    let (digest, size) = digest_of_file(&dir.join(path))?;
    Ok(BackedUpFile {
        path: path.to_string(),
        digest,
        size,
    })
}

fn blob_path(digest: &Digest) -> String {
    let text = digest.to_string();
    let hex = text.strip_prefix("sha256:").unwrap_or(&text);
    format!("{BLOBS_DIR}/sha256/{hex}")
}

/// Backs up the deployment `config` describes into `dir` (empty or missing), while it serves.
pub async fn backup(
    config: &Config,
    db: &Database,
    blobs: &BlobStore,
    dir: &Path,
) -> BackupResult<BackupManifest> {
    sqlite_path(config)?;
    empty_dir(dir)?;
    // The snapshot first: the blobs are those it refers to, and blobs are never deleted
    // before the garbage collector's grace period, which is longer than a backup takes.
    let taken_at = aerie_db::now_millis();
    let separate_state = db
        .snapshot_into(&dir.join(DATABASE_FILE), &dir.join(STATE_FILE))
        .await?;
    let mut files = vec![record(dir, DATABASE_FILE)?];
    if separate_state {
        files.push(record(dir, STATE_FILE)?);
    }
    let mut backed_up = Vec::new();
    for digest in referenced_in(&dir.join(DATABASE_FILE)).await? {
        let digest: Digest = digest
            .parse()
            .map_err(|err| BackupError::Damaged(format!("a version's digest: {err}")))?;
        let bytes = blobs.get(&digest).await?;
        if Digest::of(&bytes) != digest {
            return Err(BackupError::Damaged(format!(
                "the stored blob {digest} has other bytes"
            )));
        }
        let path = blob_path(&digest);
        let target = dir.join(&path);
        std::fs::create_dir_all(target.parent().expect("blob paths have a directory"))
            .map_err(io(&target))?;
        std::fs::write(&target, &bytes).map_err(io(&target))?;
        backed_up.push(BackedUpFile {
            path,
            digest: digest.to_string(),
            size: bytes.len() as u64,
        });
    }
    let master_key_from_environment = config.master_key.is_some();
    let mut keys = Vec::new();
    if !master_key_from_environment {
        keys.push((config.master_key_file(), MASTER_KEY_FILE));
    }
    keys.push((config.registry_key_file(), REGISTRY_KEY_FILE));
    for (source, path) in keys {
        if !source.exists() {
            continue;
        }
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("key paths have a directory"))
            .map_err(io(&target))?;
        let text = std::fs::read_to_string(&source).map_err(io(&source))?;
        crate::keys::write_private_file(&target, &text).map_err(io(&target))?;
        files.push(record(dir, path)?);
    }
    let manifest = BackupManifest {
        format: FORMAT,
        aerie_version: env!("CARGO_PKG_VERSION").to_string(),
        taken_at,
        files,
        blobs: backed_up,
        master_key_from_environment,
    };
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    let path = dir.join(MANIFEST);
    crate::keys::write_private_file(&path, &text).map_err(io(&path))?;
    Ok(manifest)
}

/// The blobs the versions in the database snapshot `file` refer to, read from a copy of it:
/// opening a database may write to its file, and a backup's files do not change.
async fn referenced_in(file: &Path) -> BackupResult<Vec<String>> {
    let scratch = tempfile::tempdir().map_err(io(file))?;
    let copy = scratch.path().join(DATABASE_FILE);
    std::fs::copy(file, &copy).map_err(io(&copy))?;
    let snapshot = Database::connect(&format!("sqlite://{}", copy.display())).await?;
    let referenced = snapshot.referenced_digests().await;
    snapshot.close().await;
    Ok(referenced?)
}

/// Whether a manifest's `path` stays inside the backup directory: relative, and made of
/// names only (no `..`, no root), so that a crafted manifest cannot have a restore read a file
/// from elsewhere.
fn inside(path: &str) -> bool {
    let path = Path::new(path);
    path.components().next().is_some()
        && path
            .components()
            .all(|component| matches!(component, std::path::Component::Normal(_)))
}

/// Reads the backup in `dir` whole: every file and blob has the digest its manifest says, and
/// every version in the database has its blob.
pub async fn verify(dir: &Path) -> BackupResult<Verified> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let manifest: BackupManifest = serde_json::from_str(&text)
        .map_err(|err| BackupError::Damaged(format!("{MANIFEST}: {err}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Unsupported(format!(
            "the backup's format is {}; this version reads {FORMAT}",
            manifest.format
        )));
    }
    for file in manifest.files.iter().chain(&manifest.blobs) {
        if !inside(&file.path) {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} names {:?}, which is not a file inside the backup",
                file.path
            )));
        }
        let (digest, size) = digest_of_file(&dir.join(&file.path))?;
        if digest != file.digest || size != file.size {
            return Err(BackupError::Damaged(format!(
                "{} has {digest} ({size} bytes), the manifest says {} ({} bytes)",
                file.path, file.digest, file.size
            )));
        }
    }
    let referenced = referenced_in(&dir.join(DATABASE_FILE)).await?;
    for digest in &referenced {
        if !manifest.blobs.iter().any(|blob| &blob.digest == digest) {
            return Err(BackupError::Damaged(format!(
                "a version refers to {digest}, which the backup does not hold"
            )));
        }
    }
    Ok(Verified {
        versions: referenced.len(),
        manifest,
    })
}

/// Restores the backup in `dir` into the deployment `config` describes, which must be empty:
/// no database file, no blob, no key file other than the backup's own.
pub async fn restore(config: &Config, blobs: &BlobStore, dir: &Path) -> BackupResult<Verified> {
    let verified = verify(dir).await?;
    let database = sqlite_path(config)?;
    for occupied in [&database, &state_path(config)] {
        if occupied.exists() {
            return Err(BackupError::NotEmpty(occupied.clone()));
        }
    }
    if !blobs.list().await?.is_empty() {
        return Err(BackupError::NotEmpty(config.data_dir.join("blobs")));
    }
    let mut keys = vec![(REGISTRY_KEY_FILE, config.registry_key_file())];
    if !verified.manifest.master_key_from_environment {
        keys.push((MASTER_KEY_FILE, config.master_key_file()));
    }
    for (path, target) in &keys {
        let source = dir.join(path);
        if !source.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&source).map_err(io(&source))?;
        match std::fs::read_to_string(target) {
            Ok(existing) if existing == text => {}
            Ok(_) => return Err(BackupError::NotEmpty(target.clone())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                crate::keys::write_private_file(target, &text).map_err(io(target))?;
            }
            Err(err) => return Err(io(target)(err)),
        }
    }
    for blob in &verified.manifest.blobs {
        let source = dir.join(&blob.path);
        let bytes = std::fs::read(&source).map_err(io(&source))?;
        let digest: Digest = blob
            .digest
            .parse()
            .map_err(|err| BackupError::Damaged(format!("{}: {err}", blob.path)))?;
        blobs.put(&digest, bytes.into()).await?;
    }
    // The database last: a server started on a half-restored directory finds no database and
    // makes an empty one, instead of one whose blobs are missing.
    for (path, target) in [(STATE_FILE, state_path(config)), (DATABASE_FILE, database)] {
        if !verified.manifest.files.iter().any(|file| file.path == path) {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let partial = target.with_extension("restoring");
        std::fs::copy(dir.join(path), &partial).map_err(io(&partial))?;
        std::fs::rename(&partial, &target).map_err(io(&target))?;
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manifest_naming_a_file_outside_the_backup_is_refused_before_anything_is_read() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "not the backup's").unwrap();
        let (digest, size) = digest_of_file(&secret).unwrap();
        for path in [
            // The backup directory is made inside `outside`.
            "../secret".to_string(),
            secret.display().to_string(),
            String::new(),
        ] {
            let backup = tempfile::tempdir_in(outside.path()).unwrap();
            let manifest = BackupManifest {
                format: FORMAT,
                aerie_version: "test".to_string(),
                taken_at: 0,
                files: vec![BackedUpFile {
                    path: path.clone(),
                    digest: digest.clone(),
                    size,
                }],
                blobs: Vec::new(),
                master_key_from_environment: true,
            };
            std::fs::write(
                backup.path().join(MANIFEST),
                serde_json::to_string(&manifest).unwrap(),
            )
            .unwrap();
            match verify(backup.path()).await {
                Err(BackupError::Damaged(message)) => {
                    assert!(
                        message.contains("not a file inside the backup"),
                        "{message}"
                    )
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert!(inside("blobs/sha256/ab/abcd"));
        assert!(!inside("blobs/../../etc/passwd"));
    }
}
