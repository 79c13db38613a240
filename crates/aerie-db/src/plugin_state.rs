//! Plugins' key-value state, by installation scope and bucket, with each space's usage (keys,
//! and bytes of keys and values) kept beside it so a quota is checked in the transaction of
//! every write.
//!
//! A scope is `SPACE/INSTALLATION`; the part before the first `/` names the space whose quota a
//! write counts against. On SQLite the state lives in a file of its own
//! ([`Database::with_separate_plugin_state`]), so plugins' writes never queue the registry's.
//!
//! Unlike the platform's own state changes, these writes have no audit row: they are the
//! plugins' data, written at request rates.

use sqlx::Row as _;

use crate::{Backend, Database, DbError, DbResult, now_millis};

/// One page of keys, in bytewise order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateKeys {
    /// The keys.
    pub keys: Vec<String>,
    /// Whether more keys follow.
    pub more: bool,
}

/// How much state one space may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateQuota {
    /// Keys, across its installations and buckets.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl StateQuota {
    /// No limit.
    pub const UNLIMITED: StateQuota = StateQuota {
        keys: u64::MAX,
        bytes: u64::MAX,
    };
}

/// Keys and bytes a space holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateUsage {
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// The space a scope counts against: the part before its first `/`.
fn space_of(scope: &str) -> &str {
    scope.split_once('/').map_or(scope, |(space, _)| space)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Database {
    /// Where plugins' state is kept: this database, or its own file on SQLite.
    fn state_store(&self) -> &Database {
        self.plugin_state.as_deref().unwrap_or(self)
    }

    /// Keeps plugins' key-value state in the SQLite database at `url`, a file of its own, so
    /// that their writes never queue behind the registry's (or the registry's behind theirs).
    /// State kept in this database before is copied there the first time.
    #[tracing::instrument(name = "db.with_separate_plugin_state", level = "debug", skip_all)]
    pub async fn with_separate_plugin_state(mut self, url: &str) -> DbResult<Database> {
        if self.backend != Backend::Sqlite {
            return Ok(self);
        }
        let store = Database::open(url, crate::Schema::PluginState).await?;
        self.move_state_into(&store).await?;
        self.plugin_state = Some(std::sync::Arc::new(store));
        Ok(self)
    }

    /// Moves every row of this database's `plugin_state` into `store`, a page at a time:
    /// copied (each an upsert, so an interrupted move is simply done again), then deleted here.
    async fn move_state_into(&self, store: &Database) -> DbResult<()> {
        let mut after = (String::new(), String::new(), String::new());
        loop {
            let rows = sqlx::query(
                "SELECT scope, bucket, key, value FROM plugin_state \
                 WHERE (scope, bucket, key) > ($1, $2, $3) ORDER BY scope, bucket, key LIMIT 500",
            )
            .bind(&after.0)
            .bind(&after.1)
            .bind(&after.2)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                let mut transaction = self.write().await?;
                sqlx::query("DELETE FROM plugin_state")
                    .execute(&mut **transaction)
                    .await?;
                return transaction.commit().await;
            };
            after = (last.try_get(0)?, last.try_get(1)?, last.try_get(2)?);
            for row in &rows {
                let (scope, bucket, key, value): (String, String, String, Vec<u8>) = (
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                );
                store
                    .state_set(&scope, &bucket, &key, &value, StateQuota::UNLIMITED)
                    .await?;
            }
        }
    }

    /// The value at `key`, if set.
    #[tracing::instrument(name = "db.state_get", level = "debug", skip_all)]
    pub async fn state_get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> DbResult<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT value FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.state_store().pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// What the space of `scope` holds now.
    #[tracing::instrument(name = "db.state_usage", level = "debug", skip_all)]
    pub async fn state_usage(&self, scope: &str) -> DbResult<StateUsage> {
        let row = sqlx::query("SELECT keys, bytes FROM plugin_state_usage WHERE space = $1")
            .bind(space_of(scope))
            .fetch_optional(&self.state_store().pool)
            .await?;
        Ok(match row {
            Some(row) => StateUsage {
                keys: count(row.try_get(0)?),
                bytes: count(row.try_get(1)?),
            },
            None => StateUsage::default(),
        })
    }

    /// Sets `key` to `value`, unless that would take the space of `scope` past `quota`
    /// ([`DbError::QuotaExceeded`], and nothing is written).
    #[tracing::instrument(name = "db.state_set", level = "debug", skip_all)]
    pub async fn state_set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
        quota: StateQuota,
    ) -> DbResult<()> {
        let store = self.state_store();
        let mut transaction = store.write().await?;
        let usage = lock_usage(&mut transaction, scope).await?;
        let before = value_length(store.backend, &mut transaction, scope, bucket, key).await?;
        let after = StateUsage {
            keys: usage.keys + u64::from(before.is_none()),
            bytes: (usage.bytes + (key.len() + value.len()) as u64)
                .saturating_sub(before.map_or(0, |length| length + key.len() as u64)),
        };
        if after.keys > quota.keys || (after.bytes > quota.bytes && after.bytes > usage.bytes) {
            return Err(DbError::QuotaExceeded(format!(
                "the space's key-value state would hold {} keys and {} bytes; it may hold {} keys and {} bytes",
                after.keys, after.bytes, quota.keys, quota.bytes
            )));
        }
        sqlx::query(
            "INSERT INTO plugin_state (scope, bucket, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, bucket, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(value)
        .bind(now_millis())
        .execute(&mut **transaction)
        .await?;
        store_usage(&mut transaction, scope, after).await?;
        transaction.commit().await
    }

    /// Removes `key`; removing an absent key succeeds.
    #[tracing::instrument(name = "db.state_delete", level = "debug", skip_all)]
    pub async fn state_delete(&self, scope: &str, bucket: &str, key: &str) -> DbResult<()> {
        let store = self.state_store();
        let mut transaction = store.write().await?;
        let usage = lock_usage(&mut transaction, scope).await?;
        let Some(length) =
            value_length(store.backend, &mut transaction, scope, bucket, key).await?
        else {
            return transaction.commit().await;
        };
        sqlx::query("DELETE FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3")
            .bind(scope)
            .bind(bucket)
            .bind(key)
            .execute(&mut **transaction)
            .await?;
        let after = StateUsage {
            keys: usage.keys.saturating_sub(1),
            bytes: usage.bytes.saturating_sub(length + key.len() as u64),
        };
        store_usage(&mut transaction, scope, after).await?;
        transaction.commit().await
    }

    /// Up to `limit` keys of the bucket from offset `offset`.
    #[tracing::instrument(name = "db.state_keys", level = "debug", skip_all)]
    pub async fn state_keys(
        &self,
        scope: &str,
        bucket: &str,
        offset: u64,
        limit: u32,
    ) -> DbResult<StateKeys> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT key FROM plugin_state WHERE scope = $1 AND bucket = $2 \
             ORDER BY key LIMIT $3 OFFSET $4",
        )
        .bind(scope)
        .bind(bucket)
        .bind(i64::from(limit) + 1)
        .bind(offset)
        .fetch_all(&self.state_store().pool)
        .await?;
        let mut keys = rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<Vec<String>, _>>()?;
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        Ok(StateKeys { keys, more })
    }

    /// Adds `delta` to the counter at `key` (decimal text; absent is 0) and returns the new
    /// value. Concurrent increments, from any replica, never lose an update: the space's usage
    /// row is locked first, then the counter is read. A new counter counts against `quota`.
    #[tracing::instrument(name = "db.state_increment", level = "debug", skip_all)]
    pub async fn state_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: u64,
        quota: StateQuota,
    ) -> DbResult<u64> {
        let store = self.state_store();
        let mut transaction = store.write().await?;
        let usage = lock_usage(&mut transaction, scope).await?;
        let row = sqlx::query(
            "SELECT value FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut **transaction)
        .await?;
        let current: Option<Vec<u8>> = row.map(|row| row.try_get(0)).transpose()?;
        let value = match &current {
            None => 0,
            Some(current) if current.is_empty() => 0,
            Some(current) => std::str::from_utf8(current)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    DbError::Conflict(format!("the value at `{key}` is not a counter"))
                })?,
        };
        let next = value
            .checked_add(delta)
            .ok_or_else(|| DbError::Conflict(format!("the counter `{key}` would overflow")))?;
        let text = next.to_string().into_bytes();
        let after = StateUsage {
            keys: usage.keys + u64::from(current.is_none()),
            bytes: (usage.bytes + (key.len() + text.len()) as u64).saturating_sub(
                current
                    .as_ref()
                    .map_or(0, |current| (key.len() + current.len()) as u64),
            ),
        };
        if current.is_none() && (after.keys > quota.keys || after.bytes > quota.bytes) {
            return Err(DbError::QuotaExceeded(format!(
                "the space's key-value state holds {} keys and {} bytes; it may hold {} keys and {} bytes",
                usage.keys, usage.bytes, quota.keys, quota.bytes
            )));
        }
        sqlx::query(
            "INSERT INTO plugin_state (scope, bucket, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, bucket, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(text)
        .bind(now_millis())
        .execute(&mut **transaction)
        .await?;
        store_usage(&mut transaction, scope, after).await?;
        transaction.commit().await?;
        Ok(next)
    }

    /// Deletes all state of `scope` (an uninstall that does not keep data); returns how many
    /// keys went.
    #[tracing::instrument(name = "db.state_clear", level = "debug", skip_all)]
    pub async fn state_clear(&self, scope: &str) -> DbResult<u64> {
        self.clear_state(scope, scope).await
    }

    /// Deletes the state of every installation in the space `space` (the part of their scopes
    /// before the `/`), and its usage.
    pub(crate) async fn state_clear_space(&self, space: &str) -> DbResult<u64> {
        self.clear_state(space, &format!("{space}/%")).await
    }

    /// Deletes the state of the scopes matching `pattern` (`LIKE`; a plain scope matches
    /// itself), all in the space of `scope`.
    async fn clear_state(&self, scope: &str, pattern: &str) -> DbResult<u64> {
        let store = self.state_store();
        let mut transaction = store.write().await?;
        let usage = lock_usage(&mut transaction, scope).await?;
        let totals = match store.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*), COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) \
                 FROM plugin_state WHERE scope LIKE $1"
            }
            Backend::Postgres => {
                "SELECT COUNT(*), COALESCE(SUM(octet_length(key) + octet_length(value)), 0)::BIGINT \
                 FROM plugin_state WHERE scope LIKE $1"
            }
        };
        let row = sqlx::query(totals)
            .bind(pattern)
            .fetch_one(&mut **transaction)
            .await?;
        let (keys, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query("DELETE FROM plugin_state WHERE scope LIKE $1")
            .bind(pattern)
            .execute(&mut **transaction)
            .await?;
        let after = StateUsage {
            keys: usage.keys.saturating_sub(count(keys)),
            bytes: usage.bytes.saturating_sub(count(bytes)),
        };
        store_usage(&mut transaction, scope, after).await?;
        transaction.commit().await?;
        Ok(count(keys))
    }
}

/// The byte length of the value at `key`, if set.
async fn value_length(
    backend: Backend,
    transaction: &mut crate::WriteTransaction,
    scope: &str,
    bucket: &str,
    key: &str,
) -> DbResult<Option<u64>> {
    let query = match backend {
        Backend::Sqlite => {
            "SELECT length(value) FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3"
        }
        Backend::Postgres => {
            "SELECT octet_length(value)::BIGINT FROM plugin_state \
             WHERE scope = $1 AND bucket = $2 AND key = $3"
        }
    };
    let row = sqlx::query(query)
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut ***transaction)
        .await?;
    Ok(match row {
        Some(row) => Some(count(row.try_get(0)?)),
        None => None,
    })
}

/// The usage of the space of `scope`, its row created and locked (on PostgreSQL) so that
/// concurrent writers of the space, from any replica, take turns.
async fn lock_usage(
    transaction: &mut crate::WriteTransaction,
    scope: &str,
) -> DbResult<StateUsage> {
    let space = space_of(scope);
    sqlx::query(
        "INSERT INTO plugin_state_usage (space, keys, bytes) VALUES ($1, 0, 0) \
         ON CONFLICT (space) DO NOTHING",
    )
    .bind(space)
    .execute(&mut ***transaction)
    .await?;
    sqlx::query("UPDATE plugin_state_usage SET space = space WHERE space = $1")
        .bind(space)
        .execute(&mut ***transaction)
        .await?;
    let row = sqlx::query("SELECT keys, bytes FROM plugin_state_usage WHERE space = $1")
        .bind(space)
        .fetch_one(&mut ***transaction)
        .await?;
    Ok(StateUsage {
        keys: count(row.try_get(0)?),
        bytes: count(row.try_get(1)?),
    })
}

async fn store_usage(
    transaction: &mut crate::WriteTransaction,
    scope: &str,
    usage: StateUsage,
) -> DbResult<()> {
    sqlx::query("UPDATE plugin_state_usage SET keys = $2, bytes = $3 WHERE space = $1")
        .bind(space_of(scope))
        .bind(stored(usage.keys))
        .bind(stored(usage.bytes))
        .execute(&mut ***transaction)
        .await?;
    Ok(())
}
