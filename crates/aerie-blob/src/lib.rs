//! Content-addressed package storage over the `object_store` crate: a local directory by
//! default, S3-compatible object storage when configured.
//!
//! A blob's name is its digest, so writing is idempotent and a blob never changes once
//! written. On a local directory every write is flushed to disk before it returns, so a
//! database row written after it never refers to a blob a crash could lose.
//!
//! This crate knows nothing of databases or HTTP.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aerie_core::digest::Digest;
use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob has that digest.
    #[error("no blob {0}")]
    NotFound(Digest),
    /// The storage could not be set up.
    #[error("blob storage configuration: {0}")]
    Config(String),
    /// The storage failed.
    #[error("blob storage: {0}")]
    Storage(#[from] object_store::Error),
    /// A local file operation failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
}

/// The result of a blob operation.
pub type BlobResult<T> = Result<T, BlobError>;

/// Where S3-compatible storage is.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// The endpoint, for services other than AWS (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Access key id; from the environment when absent.
    pub access_key_id: Option<String>,
    /// Secret access key; from the environment when absent.
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints.
    pub allow_http: bool,
    /// A prefix for every key, to share a bucket.
    pub prefix: Option<String>,
}

/// A stored blob's name and age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, Unix milliseconds.
    pub written_at: i64,
}

/// Content-addressed blob storage.
#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The root directory for local storage, to flush writes to disk.
    local_root: Option<PathBuf>,
    prefix: Option<String>,
}

impl BlobStore {
    /// Blobs in a local directory, created if missing.
    pub fn local(dir: &Path) -> BlobResult<BlobStore> {
        std::fs::create_dir_all(dir)?;
        let root = std::fs::canonicalize(dir)?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|err| BlobError::Config(err.to_string()))?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: Some(root),
            prefix: None,
        })
    }

    /// Blobs in an S3-compatible bucket.
    pub fn s3(config: &S3Config) -> BlobResult<BlobStore> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|err| BlobError::Config(err.to_string()))?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: None,
            prefix: config.prefix.clone().filter(|prefix| !prefix.is_empty()),
        })
    }

    fn location(&self, digest: &Digest) -> StorePath {
        let hex = digest.hex();
        let key = format!("sha256/{}/{}/{hex}", &hex[..2], &hex[2..4]);
        match &self.prefix {
            Some(prefix) => StorePath::from(format!("{prefix}/{key}")),
            None => StorePath::from(key),
        }
    }

    fn not_found(digest: &Digest) -> impl Fn(object_store::Error) -> BlobError + '_ {
        move |err| match err {
            object_store::Error::NotFound { .. } => BlobError::NotFound(*digest),
            other => BlobError::Storage(other),
        }
    }

    /// Stores `bytes` under `digest`, which the caller has computed from them. A blob that
    /// exists is written again, whole and in place: its age starts over, so that garbage
    /// collection, which removes only unreferenced blobs older than its grace period, does not
    /// take it from a publish of the same bytes about to refer to it.
    pub async fn put(&self, digest: &Digest, bytes: Bytes) -> BlobResult<()> {
        let location = self.location(digest);
        self.store
            .put(&location, PutPayload::from_bytes(bytes))
            .await?;
        if let Some(root) = &self.local_root {
            let path = root.join(location.as_ref());
            tokio::task::spawn_blocking(move || sync_file_and_directory(&path))
                .await
                .map_err(|err| BlobError::Io(std::io::Error::other(err)))??;
        }
        Ok(())
    }

    /// The whole blob.
    pub async fn get(&self, digest: &Digest) -> BlobResult<Bytes> {
        let result = self
            .store
            .get(&self.location(digest))
            .await
            .map_err(Self::not_found(digest))?;
        Ok(result.bytes().await?)
    }

    /// Bytes `range` of the blob.
    pub async fn get_range(&self, digest: &Digest, range: Range<u64>) -> BlobResult<Bytes> {
        self.store
            .get_range(&self.location(digest), range)
            .await
            .map_err(Self::not_found(digest))
    }

    /// The blob's size, if it exists.
    pub async fn size(&self, digest: &Digest) -> BlobResult<Option<u64>> {
        match self.store.head(&self.location(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// When the blob was last written (milliseconds since the epoch), if it exists.
    pub async fn written_at(&self, digest: &Digest) -> BlobResult<Option<i64>> {
        match self.store.head(&self.location(digest)).await {
            Ok(meta) => Ok(Some(meta.last_modified.timestamp_millis())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Removes the blob; removing a missing blob is not an error.
    pub async fn delete(&self, digest: &Digest) -> BlobResult<()> {
        match self.store.delete(&self.location(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Every stored blob. Keys that are not blob names are skipped.
    pub async fn list(&self) -> BlobResult<Vec<StoredBlob>> {
        let prefix = match &self.prefix {
            Some(prefix) => StorePath::from(format!("{prefix}/sha256")),
            None => StorePath::from("sha256"),
        };
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?;
                let digest: Digest = format!("sha256:{name}").parse().ok()?;
                Some(StoredBlob {
                    digest,
                    size: meta.size,
                    written_at: meta.last_modified.timestamp_millis(),
                })
            })
            .collect())
    }
}

/// Flushes a file and its directory entry to disk.
fn sync_file_and_directory(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
