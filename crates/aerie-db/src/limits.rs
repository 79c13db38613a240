//! Budgets shared by every replica: a token bucket per namespace for publishes (as crates.io
//! keeps its publish limits in its database). Bookkeeping, not a platform change: no audit row.

use sqlx::Row as _;

use crate::{Database, DbResult, now_millis};

/// A bucket of `burst` publishes, one more every `refill_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishBudget {
    /// Publishes in a full bucket.
    pub burst: u32,
    /// Milliseconds to earn one more.
    pub refill_ms: i64,
}

/// What taking a publish from a bucket gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Taken; this many whole publishes are left.
    Taken {
        /// Whole publishes left in the bucket.
        remaining: u32,
    },
    /// The bucket is empty; one more is earned in this many milliseconds.
    Empty {
        /// Milliseconds until a publish may be taken.
        retry_after_ms: i64,
    },
}

impl Database {
    /// Takes one publish from `namespace_id`'s bucket, which starts full. Concurrent takes,
    /// from any replica, each see the other's.
    #[tracing::instrument(name = "db.take_publish", skip_all)]
    pub async fn take_publish(&self, namespace_id: i64, budget: PublishBudget) -> DbResult<Take> {
        let full = i64::from(budget.burst) * 1000;
        let refill_ms = budget.refill_ms.max(1);
        let now = now_millis();
        let mut transaction = self.write().await?;
        sqlx::query(
            "INSERT INTO publish_buckets (namespace_id, tokens_milli, refilled_at) \
             VALUES ($1, $2, $3) ON CONFLICT (namespace_id) DO NOTHING",
        )
        .bind(namespace_id)
        .bind(full)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        // Locks the row (PostgreSQL) before it is read, so concurrent takes queue here.
        sqlx::query(
            "UPDATE publish_buckets SET namespace_id = namespace_id WHERE namespace_id = $1",
        )
        .bind(namespace_id)
        .execute(&mut **transaction)
        .await?;
        let row = sqlx::query(
            "SELECT tokens_milli, refilled_at FROM publish_buckets WHERE namespace_id = $1",
        )
        .bind(namespace_id)
        .fetch_one(&mut **transaction)
        .await?;
        let (tokens, refilled_at): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let earned = (now - refilled_at).max(0).saturating_mul(1000) / refill_ms;
        let tokens = tokens.saturating_add(earned).min(full);
        if tokens < 1000 {
            transaction.commit().await?;
            return Ok(Take::Empty {
                retry_after_ms: ((1000 - tokens) * refill_ms + 999) / 1000,
            });
        }
        let left = tokens - 1000;
        sqlx::query(
            "UPDATE publish_buckets SET tokens_milli = $2, refilled_at = $3 WHERE namespace_id = $1",
        )
        .bind(namespace_id)
        .bind(left)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        transaction.commit().await?;
        Ok(Take::Taken {
            remaining: u32::try_from(left / 1000).unwrap_or(u32::MAX),
        })
    }
}
