//! Aerie's metadata store, on SQLite (the embedded default) or PostgreSQL.
//!
//! This is the only crate that contains SQL. It offers typed functions, one per question or
//! state change; every state change runs in one transaction that also appends its row to the
//! audit log, so no change can land without its record.
//!
//! Both back ends run the same queries through `sqlx`'s `Any` driver; only the migrations are
//! written per dialect. Times are Unix milliseconds, flags are integers.
//!
//! On SQLite, write transactions are serialised by a lock in this process, so they never fail
//! with "database is locked" halfway through; reads run concurrently (WAL mode).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor as _, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

mod accounts;
mod audit;
mod catalog;
mod certification;
mod limits;
mod namespaces;
mod plugin_state;
mod plugins;
mod reviews;
mod spaces;

pub use accounts::{ApiToken, NewToken, Session, SessionOrigin, User};
pub use audit::{Actor, AuditEntry, AuditQuery};
pub use catalog::{CatalogEntry, CatalogVersion};
pub use certification::{
    Certification, CertificationEvent, CertificationListing, CertificationStep,
};
pub use limits::{PublishBudget, Take};
pub use namespaces::{Namespace, PublisherKey, Role};
pub use plugin_state::{StateKeys, StateQuota, StateUsage};
pub use plugins::{DownloadDay, NewVersion, PluginSummary, PublishOutcome, VersionRecord};
pub use reviews::Review;
pub use spaces::{
    Installation, InstallationEvent, InstallationRecord, InstallationStatus, NewEvent,
    NewSpaceToken, SPACE_CHANNEL, Space, SpaceChange, SpaceListener, SpaceNotice, SpacePolicy,
    SpaceRole, SpaceToken, installation_scope,
};

/// Which database engine a [`Database`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in a file beside the data directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule would be broken; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The space changed after the change being written was planned: nothing was written.
    #[error("the space `{0}` changed while this change was prepared")]
    SpaceChanged(String),
    /// The operation is not one this database's engine offers.
    #[error("{0}")]
    Unsupported(String),
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A write would take a space's plugin state past its quota; nothing was written.
    #[error("{0}")]
    QuotaExceeded(String),
}

impl DbError {
    /// Whether the error is a uniqueness violation reported by the database itself.
    fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}

/// The result of a database operation.
pub type DbResult<T> = Result<T, DbError>;

/// A connection pool to the metadata store.
#[derive(Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: writers queue here instead of failing.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Where plugins' key-value state lives when not here: a SQLite file of its own.
    plugin_state: Option<Arc<Database>>,
    /// The PostgreSQL URL, for the listeners that need a connection of their own.
    postgres_url: Option<Arc<str>>,
    /// Writes waiting for the writer lock now.
    writers_waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// What [`Database::pool_stats`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections the pool holds.
    pub connections: u32,
    /// Of those, idle.
    pub idle: usize,
    /// Writes waiting for SQLite's one writer.
    pub writers_waiting: usize,
}

/// Which tables a database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schema {
    /// Everything.
    Metadata,
    /// Plugins' key-value state only (a separate SQLite file).
    PluginState,
}

impl Database {
    /// Connects to `url` (`sqlite://PATH` creates the file if needed; `postgres://...`) and
    /// runs the migrations.
    #[tracing::instrument(name = "db.connect", skip_all)]
    pub async fn connect(url: &str) -> DbResult<Database> {
        Database::open(url, Schema::Metadata).await
    }

    /// Connects to `url` and migrates it to `schema`.
    async fn open(url: &str, schema: Schema) -> DbResult<Database> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyPoolOptions::new().max_connections(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        });
        let options = match backend {
            Backend::Sqlite => options.after_connect(|connection, _| {
                Box::pin(async move {
                    connection
                        .execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(&url).await?;
        let database = Database {
            pool,
            backend,
            write_lock: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
            plugin_state: None,
            postgres_url: (backend == Backend::Postgres).then(|| Arc::from(url.as_str())),
            writers_waiting: Arc::default(),
        };
        database.migrate(schema).await?;
        Ok(database)
    }

    async fn migrate(&self, schema: Schema) -> DbResult<()> {
        match (self.backend, schema) {
            (Backend::Sqlite, Schema::PluginState) => {
                sqlx::migrate!("migrations/sqlite-state")
                    .run(&self.pool)
                    .await?
            }
            (Backend::Sqlite, Schema::Metadata) => {
                sqlx::migrate!("migrations/sqlite").run(&self.pool).await?
            }
            (Backend::Postgres, _) => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The pool's connections now, and the writes queued for SQLite's one writer.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            connections: self.pool.size(),
            idle: self.pool.num_idle(),
            writers_waiting: self
                .writers_waiting
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The engine this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    #[tracing::instrument(name = "db.ping", skip_all)]
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes a consistent copy of this SQLite database to `metadata`, and of plugins' state
    /// to `state` when it lives in a file of its own (answering whether it does), while the
    /// database serves: each copy is one read transaction (`VACUUM INTO`), so it holds every
    /// change committed before it and none after. PostgreSQL has its own tools for this.
    #[tracing::instrument(name = "db.snapshot_into", skip_all)]
    pub async fn snapshot_into(
        &self,
        metadata: &std::path::Path,
        state: &std::path::Path,
    ) -> DbResult<bool> {
        if self.backend != Backend::Sqlite {
            return Err(DbError::Unsupported(
                "a PostgreSQL database is backed up with pg_dump or point-in-time recovery".into(),
            ));
        }
        let into = |path: &std::path::Path| path.to_string_lossy().into_owned();
        sqlx::query("VACUUM INTO $1")
            .bind(into(metadata))
            .execute(&self.pool)
            .await?;
        let Some(state_store) = self.plugin_state.as_deref() else {
            return Ok(false);
        };
        sqlx::query("VACUUM INTO $1")
            .bind(into(state))
            .execute(&state_store.pool)
            .await?;
        Ok(true)
    }

    /// Closes every connection.
    #[tracing::instrument(name = "db.close", skip_all)]
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(state) = &self.plugin_state {
            state.pool.close().await;
        }
    }

    /// Waits until no other replica holds `lock`, then holds it until the answer is dropped:
    /// a PostgreSQL advisory lock, taken in a transaction of its own so that it is released
    /// however the holder ends. On SQLite, which one replica serves, there is no one to wait
    /// for.
    #[tracing::instrument(name = "db.exclusive", skip_all)]
    pub async fn exclusive(&self, lock: ReplicaLock) -> DbResult<HeldLock> {
        self.advisory("SELECT pg_advisory_xact_lock($1)", lock)
            .await
    }

    /// Holds `lock` beside other shared holders, waiting while one replica holds it
    /// exclusively ([`Database::exclusive`]).
    #[tracing::instrument(name = "db.shared", skip_all)]
    pub async fn shared(&self, lock: ReplicaLock) -> DbResult<HeldLock> {
        self.advisory("SELECT pg_advisory_xact_lock_shared($1)", lock)
            .await
    }

    async fn advisory(&self, statement: &'static str, lock: ReplicaLock) -> DbResult<HeldLock> {
        if self.backend != Backend::Postgres {
            return Ok(HeldLock { _held: None });
        }
        let mut transaction = self.pool.begin().await?;
        sqlx::query(statement)
            .bind(lock as i64)
            .execute(&mut *transaction)
            .await?;
        Ok(HeldLock {
            _held: Some(transaction),
        })
    }

    /// Starts a write transaction, queueing behind other writers on SQLite.
    async fn write(&self) -> DbResult<WriteTransaction> {
        let guard = match &self.write_lock {
            Some(lock) => {
                use std::sync::atomic::Ordering;
                self.writers_waiting.fetch_add(1, Ordering::Relaxed);
                let guard = Arc::clone(lock).lock_owned().await;
                self.writers_waiting.fetch_sub(1, Ordering::Relaxed);
                Some(guard)
            }
            None => None,
        };
        let transaction = self.pool.begin().await?;
        Ok(WriteTransaction {
            transaction,
            _guard: guard,
        })
    }
}

/// Whether a token used `now` and last recorded as used at `last_used_at` should be
/// recorded again: at most once a minute, so that the requests a token makes stay reads.
pub(crate) fn use_worth_recording(last_used_at: Option<i64>, now: i64) -> bool {
    last_used_at.is_none_or(|last| now - last >= 60_000)
}

/// The tables whose rows a transaction may lock with [`lock_row`].
#[derive(Clone, Copy)]
enum Locked {
    Spaces,
    Namespaces,
}

/// Locks one row of `table` until the transaction ends, so that transactions reading and then
/// changing what hangs from it (its members) run one after the other instead of each deciding
/// from what it read before the other wrote. (SQLite runs one writer at a time already.)
async fn lock_row(transaction: &mut WriteTransaction, table: Locked, id: i64) -> DbResult<()> {
    let statement = match table {
        Locked::Spaces => "UPDATE spaces SET id = id WHERE id = $1",
        Locked::Namespaces => "UPDATE namespaces SET id = id WHERE id = $1",
    };
    sqlx::query(statement)
        .bind(id)
        .execute(&mut ***transaction)
        .await?;
    Ok(())
}

/// Work that replicas coordinate through the database ([`Database::exclusive`],
/// [`Database::shared`]); the value is the advisory lock's key, fixed forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum ReplicaLock {
    /// The master keys: held exclusively by a rotation, shared while a data key is wrapped
    /// and stored.
    MasterKeys = 0x6165_7269_6501,
    /// Creating the first administrator of an empty database.
    FirstAdministrator = 0x6165_7269_6502,
}

/// A [`ReplicaLock`] held until dropped.
pub struct HeldLock {
    /// The transaction the lock lives in; rolled back, and the lock released, when dropped.
    _held: Option<Transaction<'static, Any>>,
}

/// A write transaction, holding SQLite's writer lock until it ends.
struct WriteTransaction {
    transaction: Transaction<'static, Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    async fn commit(self) -> DbResult<()> {
        self.transaction.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.transaction
    }
}

/// The current time in Unix milliseconds.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Reads a stored JSON list of strings.
fn json_list(text: &str) -> DbResult<Vec<String>> {
    serde_json::from_str(text).map_err(|err| DbError::Corrupt(format!("{text:?}: {err}")))
}
