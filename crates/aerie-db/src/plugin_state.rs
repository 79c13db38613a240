//! Plugins' key-value state, by installation scope and bucket.
//!
//! Unlike the platform's own state changes, these writes have no audit row: they are the
//! plugins' data, written at request rates.

use sqlx::Row as _;

use crate::{Database, DbError, DbResult, now_millis};

/// One page of keys, in bytewise order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateKeys {
    /// The keys.
    pub keys: Vec<String>,
    /// Whether more keys follow.
    pub more: bool,
}

impl Database {
    /// The value at `key`, if set.
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        })
    }

    /// Sets `key` to `value`.
    pub async fn state_set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
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
        transaction.commit().await
    }

    /// Removes `key`; removing an absent key succeeds.
    pub async fn state_delete(&self, scope: &str, bucket: &str, key: &str) -> DbResult<()> {
        let mut transaction = self.write().await?;
        sqlx::query("DELETE FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3")
            .bind(scope)
            .bind(bucket)
            .bind(key)
            .execute(&mut **transaction)
            .await?;
        transaction.commit().await
    }

    /// Up to `limit` keys of the bucket from offset `offset`.
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
        .fetch_all(&self.pool)
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
    /// value. Concurrent increments, from any replica, never lose an update: the row is
    /// created first, then locked by an update before it is read.
    pub async fn state_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> DbResult<u64> {
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO plugin_state (scope, bucket, key, value, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, bucket, key) DO NOTHING",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(&b""[..])
        .bind(now_millis())
        .execute(&mut **transaction)
        .await?;
        sqlx::query(
            "UPDATE plugin_state SET updated_at = $4 WHERE scope = $1 AND bucket = $2 AND key = $3",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(now_millis())
        .execute(&mut **transaction)
        .await?;
        let row = sqlx::query(
            "SELECT value FROM plugin_state WHERE scope = $1 AND bucket = $2 AND key = $3",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .fetch_one(&mut **transaction)
        .await?;
        let current: Vec<u8> = row.try_get(0)?;
        let current = if current.is_empty() {
            0
        } else {
            std::str::from_utf8(&current)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    DbError::Conflict(format!("the value at `{key}` is not a counter"))
                })?
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| DbError::Conflict(format!("the counter `{key}` would overflow")))?;
        sqlx::query(
            "UPDATE plugin_state SET value = $4 WHERE scope = $1 AND bucket = $2 AND key = $3",
        )
        .bind(scope)
        .bind(bucket)
        .bind(key)
        .bind(next.to_string().into_bytes())
        .execute(&mut **transaction)
        .await?;
        transaction.commit().await?;
        Ok(next)
    }

    /// Deletes all state of `scope` (an uninstall that does not keep data); returns how many
    /// keys went.
    pub async fn state_clear(&self, scope: &str) -> DbResult<u64> {
        let mut transaction = self.write().await?;
        let deleted = sqlx::query("DELETE FROM plugin_state WHERE scope = $1")
            .bind(scope)
            .execute(&mut **transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok(deleted)
    }
}
