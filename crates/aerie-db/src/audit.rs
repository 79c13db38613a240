//! The audit log: who changed what, when, from where. Rows are written only inside the
//! transaction of the change they record.

use serde::Serialize;
use sqlx::{Any, Row as _, Transaction};

use crate::{Database, DbResult, now_millis};

/// Who is making a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The signed-in user, if any.
    pub user_id: Option<i64>,
    /// The API token used, if any.
    pub token_id: Option<i64>,
    /// The client's address.
    pub ip: Option<String>,
}

impl Actor {
    /// The server itself (first start, maintenance).
    pub fn system() -> Actor {
        Actor::default()
    }
}

/// One audit log row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// When, in Unix milliseconds.
    pub at: i64,
    /// The acting user's name, if any.
    pub actor: Option<String>,
    /// The API token used, if any.
    pub token_id: Option<i64>,
    /// The client's address.
    pub ip: Option<String>,
    /// What was done, like `version.publish`.
    pub action: String,
    /// What it was done to, like `acme/hello@1.0.0`.
    pub target: String,
    /// Details, as JSON.
    pub details: serde_json::Value,
}

/// A filter over the audit log, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only rows whose target starts with this.
    pub target_prefix: Option<String>,
    /// Only rows with this action.
    pub action: Option<String>,
    /// Only rows by the user with this name.
    pub actor: Option<String>,
    /// Only rows written at or after this time (Unix milliseconds).
    pub since: Option<i64>,
    /// Only rows written before this time (Unix milliseconds).
    pub until: Option<i64>,
    /// Only rows older than this id (for paging).
    pub before_id: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// Appends an audit row inside `transaction`.
pub(crate) async fn record(
    transaction: &mut Transaction<'static, Any>,
    actor: &Actor,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, token_id, ip, action, target, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now_millis())
    .bind(actor.user_id)
    .bind(actor.token_id)
    .bind(actor.ip.clone())
    .bind(action)
    .bind(target)
    .bind(details.to_string())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Database {
    /// Audit rows matching `query`, newest first.
    #[tracing::instrument(name = "db.audit_entries", skip_all)]
    pub async fn audit_entries(&self, query: &AuditQuery) -> DbResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT a.id, a.at, u.username, a.token_id, a.ip, a.action, a.target, a.details \
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id \
             WHERE ($1 IS NULL OR substr(a.target, 1, length($2)) = $3) \
               AND ($4 IS NULL OR a.action = $5) \
               AND ($6 IS NULL OR a.id < $7) \
               AND ($9 IS NULL OR a.actor_id = (SELECT id FROM users WHERE username = $10)) \
               AND ($11 IS NULL OR a.at >= $12) \
               AND ($13 IS NULL OR a.at < $14) \
             ORDER BY a.id DESC LIMIT $8",
        )
        .bind(query.target_prefix.clone())
        .bind(query.target_prefix.clone())
        .bind(query.target_prefix.clone())
        .bind(query.action.clone())
        .bind(query.action.clone())
        .bind(query.before_id)
        .bind(query.before_id)
        .bind(query.limit.clamp(1, 1000))
        .bind(query.actor.clone())
        .bind(query.actor.clone())
        .bind(query.since)
        .bind(query.since)
        .bind(query.until)
        .bind(query.until)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let details: String = row.try_get(7)?;
                Ok(AuditEntry {
                    id: row.try_get(0)?,
                    at: row.try_get(1)?,
                    actor: row.try_get(2)?,
                    token_id: row.try_get(3)?,
                    ip: row.try_get(4)?,
                    action: row.try_get(5)?,
                    target: row.try_get(6)?,
                    details: serde_json::from_str(&details)
                        .map_err(|err| crate::DbError::Corrupt(err.to_string()))?,
                })
            })
            .collect()
    }
}
