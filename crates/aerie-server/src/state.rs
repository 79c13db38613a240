//! What every handler shares: the stores, the configuration, and the download path's caches
//! and counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aerie_blob::BlobStore;
use aerie_core::digest::Digest;
use aerie_db::{Database, VersionRecord, now_millis};
use bytes::Bytes;

use crate::config::Config;
use crate::error::ApiResult;

/// Blobs up to this size are kept in memory once read.
const CACHED_BLOB_MAX: usize = 8 * 1024 * 1024;

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The metadata store.
    pub db: Database,
    /// The package blobs.
    pub blobs: BlobStore,
    /// The configuration.
    pub config: Arc<Config>,
    /// Downloads counted in memory, flushed to the database in the background.
    pub downloads: Arc<DownloadCounter>,
    /// Package bytes by digest. Blobs never change, so nothing is ever stale.
    blob_cache: moka::sync::Cache<Digest, Bytes>,
    /// Versions by `namespace/name@version`, briefly: yank state and visibility may change.
    version_cache: moka::sync::Cache<String, Arc<VersionRecord>>,
}

impl AppState {
    /// State over the given stores.
    pub fn new(db: Database, blobs: BlobStore, config: Config) -> AppState {
        AppState {
            db,
            blobs,
            config: Arc::new(config),
            downloads: Arc::new(DownloadCounter::default()),
            blob_cache: moka::sync::Cache::builder()
                .weigher(|_: &Digest, bytes: &Bytes| bytes.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(256 * 1024 * 1024)
                .build(),
            version_cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
        }
    }

    /// A package's bytes, from memory when possible.
    pub async fn blob(&self, digest: &Digest) -> ApiResult<Bytes> {
        if let Some(bytes) = self.blob_cache.get(digest) {
            return Ok(bytes);
        }
        let bytes = self.blobs.get(digest).await?;
        if bytes.len() <= CACHED_BLOB_MAX {
            self.blob_cache.insert(*digest, bytes.clone());
        }
        Ok(bytes)
    }

    /// A version, from a short-lived cache when possible.
    pub async fn version(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> ApiResult<Option<Arc<VersionRecord>>> {
        let key = format!("{namespace}/{name}@{version}");
        if let Some(record) = self.version_cache.get(&key) {
            return Ok(Some(record));
        }
        let Some(record) = self.db.version(namespace, name, version).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.version_cache.insert(key, Arc::clone(&record));
        Ok(Some(record))
    }

    /// Forgets cached versions after a change to them.
    pub fn forget_versions(&self) {
        self.version_cache.invalidate_all();
    }
}

/// Download counts per version and day, kept in memory so that a download costs no write.
#[derive(Default)]
pub struct DownloadCounter {
    counts: Mutex<HashMap<(i64, i64), i64>>,
}

impl DownloadCounter {
    /// Counts one download of `version_id` today.
    pub fn count(&self, version_id: i64) {
        let day = now_millis() / 86_400_000;
        let mut counts = self
            .counts
            .lock()
            .expect("the counter lock is never poisoned");
        *counts.entry((version_id, day)).or_insert(0) += 1;
    }

    /// Moves the counts so far into the database.
    pub async fn flush(&self, db: &Database) -> ApiResult<()> {
        let drained: Vec<(i64, i64, i64)> = {
            let mut counts = self
                .counts
                .lock()
                .expect("the counter lock is never poisoned");
            counts
                .drain()
                .map(|((version, day), count)| (version, day, count))
                .collect()
        };
        if let Err(err) = db.add_downloads(&drained).await {
            // Put them back so that the next flush retries.
            let mut counts = self
                .counts
                .lock()
                .expect("the counter lock is never poisoned");
            for (version, day, count) in drained {
                *counts.entry((version, day)).or_insert(0) += count;
            }
            return Err(err.into());
        }
        Ok(())
    }
}
