//! The plugin host inside the server: plugins' key-value state in the database, and the
//! host itself, created on first use so that a registry that runs no plugins reserves no
//! memory pool.

use std::sync::{Arc, OnceLock};

use aerie_db::Database;
use aerie_host::{Host, HostConfig, KeyPage, KeyValue, LoadError, Secrets, StoreError};
use async_trait::async_trait;

/// The local space `aerie run` and `aerie dev` serve packages in, outside any stored space.
pub const DEFAULT_SPACE: &str = "default";

/// Plugins' `wasi:keyvalue` state in the metadata database (on SQLite, a file of its own), so
/// it survives restarts and version swaps and is shared by replicas; every write counts
/// against its space's quota.
pub struct DatabaseKeyValue {
    /// The database.
    pub database: Database,
    /// What each space may hold.
    pub quota: aerie_db::StateQuota,
}

fn store_error(err: aerie_db::DbError) -> StoreError {
    match err {
        aerie_db::DbError::QuotaExceeded(message) => {
            StoreError(format!("quota exceeded: {message}; delete some keys first"))
        }
        // The plugin gets no detail of the database's failures; the log does.
        aerie_db::DbError::Backend(err) => {
            tracing::error!(error = %err, "plugin state failed");
            StoreError("the host's storage failed".into())
        }
        other => StoreError(other.to_string()),
    }
}

#[async_trait]
impl KeyValue for DatabaseKeyValue {
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.database
            .state_get(scope, bucket, key)
            .await
            .map_err(store_error)
    }

    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.database
            .state_set(scope, bucket, key, &value, self.quota)
            .await
            .map_err(store_error)
    }

    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.database
            .state_delete(scope, bucket, key)
            .await
            .map_err(store_error)
    }

    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        cursor: u64,
        limit: u32,
    ) -> Result<KeyPage, StoreError> {
        let page = self
            .database
            .state_keys(scope, bucket, cursor, limit)
            .await
            .map_err(store_error)?;
        let next = cursor + page.keys.len() as u64;
        Ok(KeyPage {
            keys: page.keys,
            cursor: page.more.then_some(next),
        })
    }

    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, StoreError> {
        self.database
            .state_increment(scope, bucket, key, delta, self.quota)
            .await
            .map_err(store_error)
    }
}

/// The server's plugin host, created on first use.
pub struct PluginHost {
    config: HostConfig,
    database: Database,
    quota: aerie_db::StateQuota,
    secrets: Arc<dyn Secrets>,
    host: OnceLock<Result<Host, LoadError>>,
    /// Local spaces: served by name, without a stored space behind them.
    local: std::sync::RwLock<std::collections::BTreeSet<String>>,
}

impl PluginHost {
    /// A host that will run with `config`, keeping plugin state in `database` within
    /// `quota` per space.
    pub fn new(
        config: HostConfig,
        database: Database,
        quota: aerie_db::StateQuota,
        secrets: Arc<dyn Secrets>,
    ) -> PluginHost {
        PluginHost {
            config,
            database,
            quota,
            secrets,
            host: OnceLock::new(),
            local: Default::default(),
        }
    }

    /// The host, created now if it was not yet.
    pub fn get(&self) -> Result<&Host, LoadError> {
        self.host
            .get_or_init(|| {
                Host::new(
                    self.config.clone(),
                    Arc::new(DatabaseKeyValue {
                        database: self.database.clone(),
                        quota: self.quota,
                    }),
                    Arc::clone(&self.secrets),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Serves `space` as a local space: `/s/SPACE/...` reaches the plugins loaded into the
    /// host under that space name, with no stored space behind it (for `aerie run` and
    /// `aerie dev`). Guarded routes then need a signed-in user, or an administrator for admin
    /// and owner routes.
    pub fn serve_locally(&self, space: &str) {
        self.local
            .write()
            .unwrap_or_else(|err| err.into_inner())
            .insert(space.to_string());
    }

    /// Whether `space` is a local space.
    pub fn is_local(&self, space: &str) -> bool {
        self.local
            .read()
            .unwrap_or_else(|err| err.into_inner())
            .contains(space)
    }

    /// The host if it was created.
    pub fn running(&self) -> Option<&Host> {
        self.host.get().and_then(|host| host.as_ref().ok())
    }
}
