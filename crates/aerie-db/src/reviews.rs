//! Ratings and reviews: one per user per plugin, editable; the aggregate is computed from
//! them, so it is right after every edit and deletion.

use serde_json::json;
use sqlx::Row as _;

use crate::audit::{Actor, record};
use crate::catalog::record_change;
use crate::{Database, DbError, DbResult, now_millis};

/// One review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// Who wrote it.
    pub username: String,
    /// 1 to 5.
    pub stars: i64,
    /// Its text, as written.
    pub body: String,
    /// When it was first written.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
}

impl Database {
    /// Writes `user_id`'s review of the plugin, replacing theirs if they wrote one.
    #[tracing::instrument(name = "db.set_review", skip_all)]
    pub async fn set_review(
        &self,
        actor: &Actor,
        plugin_id: i64,
        plugin: &str,
        user_id: i64,
        stars: i64,
        body: &str,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO reviews (plugin_id, user_id, stars, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (plugin_id, user_id) \
             DO UPDATE SET stars = excluded.stars, body = excluded.body, \
             updated_at = excluded.updated_at",
        )
        .bind(plugin_id)
        .bind(user_id)
        .bind(stars)
        .bind(body)
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        record_change(&mut transaction, plugin_id).await?;
        record(
            &mut transaction,
            actor,
            "review.set",
            &format!("plugin:{plugin}"),
            json!({ "user_id": user_id, "stars": stars }),
        )
        .await?;
        transaction.commit().await
    }

    /// Deletes `user_id`'s review of the plugin.
    #[tracing::instrument(name = "db.delete_review", skip_all)]
    pub async fn delete_review(
        &self,
        actor: &Actor,
        plugin_id: i64,
        plugin: &str,
        user_id: i64,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let deleted = sqlx::query("DELETE FROM reviews WHERE plugin_id = $1 AND user_id = $2")
            .bind(plugin_id)
            .bind(user_id)
            .execute(&mut **transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DbError::NotFound("review"));
        }
        record_change(&mut transaction, plugin_id).await?;
        record(
            &mut transaction,
            actor,
            "review.delete",
            &format!("plugin:{plugin}"),
            json!({ "user_id": user_id }),
        )
        .await?;
        transaction.commit().await
    }

    /// The plugin's reviews, newest change first.
    #[tracing::instrument(name = "db.reviews", skip_all)]
    pub async fn reviews(&self, plugin_id: i64, limit: i64, offset: i64) -> DbResult<Vec<Review>> {
        let rows = sqlx::query(
            "SELECT u.username, r.stars, r.body, r.created_at, r.updated_at FROM reviews r \
             JOIN users u ON u.id = r.user_id WHERE r.plugin_id = $1 \
             ORDER BY r.updated_at DESC, r.id DESC LIMIT $2 OFFSET $3",
        )
        .bind(plugin_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Review {
                    username: row.try_get(0)?,
                    stars: row.try_get(1)?,
                    body: row.try_get(2)?,
                    created_at: row.try_get(3)?,
                    updated_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// The plugin's average rating and number of ratings (0 and 0 when unrated).
    #[tracing::instrument(name = "db.rating", skip_all)]
    pub async fn rating(&self, plugin_id: i64) -> DbResult<(f64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(stars), 0) AS BIGINT), COUNT(*) FROM reviews \
             WHERE plugin_id = $1",
        )
        .bind(plugin_id)
        .fetch_one(&self.pool)
        .await?;
        let (sum, count): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((
            if count == 0 {
                0.0
            } else {
                sum as f64 / count as f64
            },
            count,
        ))
    }
}
