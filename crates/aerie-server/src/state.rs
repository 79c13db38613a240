//! What every handler shares: the stores, the configuration, and the download path's caches
//! and counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aerie_blob::BlobStore;
use aerie_core::digest::Digest;
use aerie_db::{Database, Namespace, VersionRecord, now_millis};
use axum::http::HeaderValue;
use bytes::Bytes;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::keys::MasterKeys;

/// How long version and namespace records are cached: the longest a change made through
/// another replica takes to show here.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Blobs up to this size are kept in memory once read.
const CACHED_BLOB_MAX: usize = 8 * 1024 * 1024;

/// Shared state: one `Arc`, cloned for every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] shares.
pub struct Shared {
    /// The metadata store.
    pub db: Database,
    /// The package blobs.
    pub blobs: BlobStore,
    /// The configuration.
    pub config: Config,
    /// Where spaces' plugins are served.
    pub plugin_origin: crate::plugin_origin::PluginOrigin,
    /// Downloads counted in memory, flushed to the database in the background.
    pub downloads: DownloadCounter,
    /// The plugin host, created when the first plugin loads.
    pub plugins: crate::plugins::PluginHost,
    /// What `/metrics` exposes.
    pub metrics: crate::metrics::ServerMetrics,
    /// The master keys that wrap the spaces' data keys.
    pub keys: MasterKeys,
    /// The registry's key, which signs certifications.
    pub registry_key: crate::registry_key::RegistryKey,
    /// The catalogue's search index.
    pub search: Arc<aerie_search::SearchIndex>,
    /// The API's budgets per client address and per token.
    pub api_limits: crate::limits::ApiLimits,
    /// Failed sign-ins per account.
    pub login_backoff: crate::limits::LoginBackoff,
    /// Password hashing, a few at a time.
    pub passwords: crate::limits::PasswordWork,
    /// Changes to one space run one at a time.
    pub space_locks: crate::spaces::SpaceLocks,
    /// The revision of each space this replica runs.
    pub space_revisions: crate::spaces::RunningRevisions,
    /// Becomes true once every space's plugins were loaded after the start.
    pub restored: tokio::sync::watch::Sender<bool>,
    /// Spaces by name, briefly: plugin endpoints look their space up on every request.
    space_cache: moka::sync::Cache<String, Arc<aerie_db::Space>>,
    /// Requests per second per installation, by `space/plugin`.
    plugin_rate: Option<governor::DefaultKeyedRateLimiter<String>>,
    /// Package bytes by digest. Blobs never change, so nothing is ever stale.
    blob_cache: moka::sync::Cache<Digest, Bytes>,
    /// Versions by `namespace/name@version`, briefly: yank state may change.
    version_cache: moka::sync::Cache<String, Arc<VersionRecord>>,
    /// Namespaces by name, briefly: visibility and policy may change.
    namespace_cache: moka::sync::Cache<String, Arc<Namespace>>,
    /// Ready-made download answers by `namespace/name@version`, briefly.
    download_cache: moka::sync::Cache<String, Arc<Download>>,
    /// Versions' JSON views by `namespace/name@version`, briefly: rendering the manifest is
    /// most of a metadata request's cost.
    version_view_cache: moka::sync::Cache<String, Bytes>,
}

/// What serving one version's package needs, prepared once.
pub struct Download {
    /// The version's row id, for counting.
    pub version_id: i64,
    /// The namespace, for the visibility check.
    pub namespace: Arc<Namespace>,
    /// The package's digest.
    pub digest: Digest,
    /// `"sha256:..."`.
    pub etag: HeaderValue,
    /// `attachment; filename="NAMESPACE-NAME-VERSION.aerie"`.
    pub disposition: HeaderValue,
}

impl Download {
    /// The download of `record`, in `namespace`.
    pub fn new(namespace: &Arc<Namespace>, record: &VersionRecord) -> ApiResult<Download> {
        let header = |text: String| HeaderValue::try_from(text).map_err(ApiError::internal);
        Ok(Download {
            version_id: record.id,
            namespace: Arc::clone(namespace),
            digest: record.digest.parse().map_err(ApiError::internal)?,
            etag: header(format!("\"{}\"", record.digest))?,
            disposition: header(format!(
                "attachment; filename=\"{}-{}-{}.aerie\"",
                record.namespace, record.name, record.version
            ))?,
        })
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State over the given stores.
    pub fn new(
        db: Database,
        blobs: BlobStore,
        config: Config,
        keys: MasterKeys,
        registry_key: crate::registry_key::RegistryKey,
        search: Arc<aerie_search::SearchIndex>,
        plugin_origin: crate::plugin_origin::PluginOrigin,
    ) -> AppState {
        let network = config
            .outbound
            .policy()
            .expect("the server checks the outbound policy before it builds its state");
        let plugin_rate = std::num::NonZeroU32::new(config.plugin_rate_limit)
            .map(|rate| governor::RateLimiter::keyed(governor::Quota::per_second(rate)));
        let host_metrics = aerie_host::HostMetrics::new(config.plugin_metrics);
        let metrics = crate::metrics::ServerMetrics::new(&host_metrics);
        let tenants = &config.plugin_limits;
        let plugins = crate::plugins::PluginHost::new(
            aerie_host::HostConfig {
                runtime: aerie_host::RuntimeConfig {
                    cache_dir: Some(config.data_dir.join("compiled")),
                    cache_max_bytes: config.compile_cache_size,
                    max_memory: tenants.ceiling().memory,
                    ..aerie_host::RuntimeConfig::default()
                },
                metrics: host_metrics,
                network,
                space_concurrency: tenants.space_concurrency,
                keyvalue: aerie_host::KeyValueLimits {
                    max_key_bytes: tenants.kv_max_key_bytes,
                    max_value_bytes: tenants.kv_max_value_bytes,
                },
                ..aerie_host::HostConfig::default()
            },
            db.clone(),
            tenants.state_quota(),
            Arc::new(crate::spaces::SpaceSecrets {
                db: db.clone(),
                keys: keys.clone(),
            }),
        );
        AppState(Arc::new(Shared {
            api_limits: crate::limits::ApiLimits::new(&config.limits),
            login_backoff: crate::limits::LoginBackoff::new(&config.limits),
            passwords: crate::limits::PasswordWork::new(
                config.limits.password_hashes,
                config.limits.password_queue,
            ),
            plugin_origin,
            search,
            keys,
            registry_key,
            space_locks: crate::spaces::SpaceLocks::default(),
            space_revisions: crate::spaces::RunningRevisions::default(),
            restored: tokio::sync::watch::channel(false).0,
            space_cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
            metrics,
            plugins,
            plugin_rate,
            db,
            blobs,
            config,
            downloads: DownloadCounter::default(),
            blob_cache: moka::sync::Cache::builder()
                .weigher(|_: &Digest, bytes: &Bytes| bytes.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(256 * 1024 * 1024)
                .build(),
            version_cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            namespace_cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CACHE_TTL)
                .build(),
            download_cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            version_view_cache: moka::sync::Cache::builder()
                .weigher(|_: &String, json: &Bytes| json.len().try_into().unwrap_or(u32::MAX))
                .max_capacity(64 * 1024 * 1024)
                .time_to_live(CACHE_TTL)
                .build(),
        }))
    }

    /// A namespace, from a short-lived cache when possible.
    pub async fn namespace(&self, name: &str) -> ApiResult<Option<Arc<Namespace>>> {
        if let Some(namespace) = self.namespace_cache.get(name) {
            return Ok(Some(namespace));
        }
        let Some(namespace) = self.db.namespace(name).await? else {
            return Ok(None);
        };
        let namespace = Arc::new(namespace);
        self.namespace_cache
            .insert(name.to_string(), Arc::clone(&namespace));
        Ok(Some(namespace))
    }

    /// A space, from a short-lived cache when possible.
    pub async fn space(&self, name: &str) -> ApiResult<Option<Arc<aerie_db::Space>>> {
        if let Some(space) = self.space_cache.get(name) {
            return Ok(Some(space));
        }
        let Some(space) = self.db.space(name).await? else {
            return Ok(None);
        };
        let space = Arc::new(space);
        self.space_cache
            .insert(name.to_string(), Arc::clone(&space));
        Ok(Some(space))
    }

    /// Forgets a cached space (renamed or deleted here).
    pub fn forget_space(&self, name: &str) {
        self.space_cache.invalidate(name);
    }

    /// A package's bytes, from memory when possible.
    pub async fn blob(&self, digest: &Digest) -> ApiResult<Bytes> {
        if let Some(bytes) = self.blob_cache.get(digest) {
            return Ok(bytes);
        }
        let bytes = self.blobs.get(digest).await.inspect_err(|_| {
            self.metrics.blob_failed("read");
        })?;
        if bytes.len() <= CACHED_BLOB_MAX {
            self.blob_cache.insert(*digest, bytes.clone());
        }
        Ok(bytes)
    }

    /// Stores a package blob, counting a failure.
    pub async fn put_blob(&self, digest: &Digest, bytes: Bytes) -> ApiResult<()> {
        self.blobs.put(digest, bytes).await.inspect_err(|_| {
            self.metrics.blob_failed("write");
        })?;
        Ok(())
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

    /// A version's JSON view, rendered once and then from a short-lived cache.
    pub async fn version_view(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> ApiResult<Option<Bytes>> {
        let key = format!("{namespace}/{name}@{version}");
        if let Some(json) = self.version_view_cache.get(&key) {
            return Ok(Some(json));
        }
        let Some(record) = self.version(namespace, name, version).await? else {
            return Ok(None);
        };
        let json = Bytes::from(
            serde_json::to_vec(&crate::views::version(self, &record))
                .map_err(ApiError::internal)?,
        );
        self.version_view_cache.insert(key, json.clone());
        Ok(Some(json))
    }

    /// What serving a version's package needs, from a short-lived cache when possible: the
    /// download path's one lookup.
    pub async fn download(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> ApiResult<Option<Arc<Download>>> {
        let key = format!("{namespace}/{name}@{version}");
        if let Some(download) = self.download_cache.get(&key) {
            return Ok(Some(download));
        }
        let (Some(namespace), Some(record)) = (
            self.namespace(namespace).await?,
            self.version(namespace, name, version).await?,
        ) else {
            return Ok(None);
        };
        let download = Arc::new(Download::new(&namespace, &record)?);
        self.download_cache.insert(key, Arc::clone(&download));
        Ok(Some(download))
    }

    /// What serving the package with `digest` needs, from the same cache.
    pub async fn download_by_digest(&self, digest: &Digest) -> ApiResult<Option<Arc<Download>>> {
        let key = digest.to_string();
        if let Some(download) = self.download_cache.get(&key) {
            return Ok(Some(download));
        }
        let Some(record) = self.db.version_by_digest(&key).await? else {
            return Ok(None);
        };
        let Some(namespace) = self.namespace(&record.namespace).await? else {
            return Ok(None);
        };
        let download = Arc::new(Download::new(&namespace, &record)?);
        self.download_cache.insert(key, Arc::clone(&download));
        Ok(Some(download))
    }

    /// How long until `plugin` in `space` may be called again, when it is over its rate
    /// limit now.
    pub fn plugin_rate_limited(
        &self,
        space: &str,
        plugin: &aerie_core::name::PluginName,
    ) -> Option<Duration> {
        let limiter = self.plugin_rate.as_ref()?;
        let key = format!("{space}/{plugin}");
        limiter
            .check_key(&key)
            .err()
            .map(|not_until| not_until.wait_time_from(governor::clock::Clock::now(limiter.clock())))
    }

    /// Forgets cached versions and namespaces after a change to them. Other replicas see the
    /// change within [`CACHE_TTL`].
    pub fn forget_cached_records(&self) {
        self.version_cache.invalidate_all();
        self.namespace_cache.invalidate_all();
        self.download_cache.invalidate_all();
        self.version_view_cache.invalidate_all();
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
