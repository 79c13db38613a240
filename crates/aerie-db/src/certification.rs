//! Certification of versions: each version's state with its history, and the queue admins
//! work through. Which steps are allowed is decided by the caller; a step here only lands if
//! the version is still in the state the caller saw.

use serde_json::json;
use sqlx::Row as _;

use crate::audit::{Actor, record};
use crate::catalog::record_change;
use crate::plugins::VersionRecord;
use crate::{Database, DbError, DbResult, now_millis};

/// A version's certification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certification {
    /// `submitted`, `in_review`, `certified` or `rejected`.
    pub state: String,
    /// Who submitted it last.
    pub submitted_by: Option<String>,
    /// When it was submitted last.
    pub submitted_at: i64,
    /// The admin who moved it last, if any.
    pub reviewer: Option<String>,
    /// The reviewer's words.
    pub reason: Option<String>,
    /// The registry's signature, while certified.
    pub signature: Option<String>,
    /// The registry key that signed.
    pub signing_key_id: Option<String>,
    /// When it last changed.
    pub updated_at: i64,
}

/// One step in a version's certification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationEvent {
    /// When.
    pub at: i64,
    /// Who.
    pub actor: Option<String>,
    /// The state before (`None`: never submitted).
    pub from_state: Option<String>,
    /// The state after.
    pub to_state: String,
    /// The words given with it.
    pub reason: Option<String>,
}

/// A step to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationStep<'a> {
    /// The state the caller saw (`None`: never submitted).
    pub from_state: Option<&'a str>,
    /// The state it moves to.
    pub to_state: &'a str,
    /// The user taking the step.
    pub user_id: i64,
    /// Words to keep with it.
    pub reason: Option<&'a str>,
    /// The registry's signature and its key id, when the step certifies.
    pub signature: Option<(&'a str, &'a str)>,
}

/// A version in the certification queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificationListing {
    /// `namespace/name`.
    pub plugin: String,
    /// The version.
    pub version: String,
    /// Its certification.
    pub certification: Certification,
}

/// The columns `certification_from_row` reads, from `certifications c`.
macro_rules! certification_columns {
    () => {
        "c.state, s.username, c.submitted_at, r.username, c.reason, c.signature, \
         c.signing_key_id, c.updated_at \
         FROM certifications c LEFT JOIN users s ON s.id = c.submitted_by \
         LEFT JOIN users r ON r.id = c.reviewer_id "
    };
}

fn certification_from_row(row: &sqlx::any::AnyRow, first: usize) -> DbResult<Certification> {
    Ok(Certification {
        state: row.try_get(first)?,
        submitted_by: row.try_get(first + 1)?,
        submitted_at: row.try_get(first + 2)?,
        reviewer: row.try_get(first + 3)?,
        reason: row.try_get(first + 4)?,
        signature: row.try_get(first + 5)?,
        signing_key_id: row.try_get(first + 6)?,
        updated_at: row.try_get(first + 7)?,
    })
}

impl Database {
    /// The version's certification, if it was ever submitted.
    #[tracing::instrument(name = "db.certification", skip_all)]
    pub async fn certification(&self, version_id: i64) -> DbResult<Option<Certification>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            certification_columns!(),
            "WHERE c.version_id = $1"
        ))
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| certification_from_row(&row, 0)).transpose()
    }

    /// The version's certification history, oldest first.
    #[tracing::instrument(name = "db.certification_events", skip_all)]
    pub async fn certification_events(&self, version_id: i64) -> DbResult<Vec<CertificationEvent>> {
        let rows = sqlx::query(
            "SELECT e.at, u.username, e.from_state, e.to_state, e.reason \
             FROM certification_events e LEFT JOIN users u ON u.id = e.actor_id \
             WHERE e.version_id = $1 ORDER BY e.id",
        )
        .bind(version_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CertificationEvent {
                    at: row.try_get(0)?,
                    actor: row.try_get(1)?,
                    from_state: row.try_get(2)?,
                    to_state: row.try_get(3)?,
                    reason: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Versions in `state` (every state when `None`), oldest change first: the admins' queue.
    #[tracing::instrument(name = "db.certification_queue", skip_all)]
    pub async fn certification_queue(
        &self,
        state: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> DbResult<Vec<CertificationListing>> {
        let rows = sqlx::query(concat!(
            "SELECT n.name, p.name, v.version, ",
            certification_columns!(),
            "JOIN versions v ON v.id = c.version_id JOIN plugins p ON p.id = v.plugin_id \
             JOIN namespaces n ON n.id = p.namespace_id \
             WHERE CAST($1 AS TEXT) IS NULL OR c.state = $1 \
             ORDER BY c.updated_at, c.version_id LIMIT $2 OFFSET $3"
        ))
        .bind(state)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let namespace: String = row.try_get(0)?;
                let name: String = row.try_get(1)?;
                Ok(CertificationListing {
                    plugin: format!("{namespace}/{name}"),
                    version: row.try_get(2)?,
                    certification: certification_from_row(row, 3)?,
                })
            })
            .collect()
    }

    /// Moves `version` one step, if it is still in `step.from_state`; fails with
    /// [`DbError::Conflict`] when another step landed first.
    #[tracing::instrument(name = "db.record_certification_step", skip_all)]
    pub async fn record_certification_step(
        &self,
        actor: &Actor,
        version: &VersionRecord,
        step: &CertificationStep<'_>,
    ) -> DbResult<()> {
        let mut transaction = self.write().await?;
        let now = now_millis();
        let (signature, signing_key_id) = step.signature.unzip();
        let changed = match step.from_state {
            None => sqlx::query(
                "INSERT INTO certifications (version_id, state, submitted_by, submitted_at, \
                 reason, updated_at) VALUES ($1, $2, $3, $4, $5, $4) \
                 ON CONFLICT (version_id) DO NOTHING",
            )
            .bind(version.id)
            .bind(step.to_state)
            .bind(step.user_id)
            .bind(now)
            .bind(step.reason)
            .execute(&mut **transaction)
            .await?
            .rows_affected(),
            Some(from) => {
                let submitting = step.to_state == "submitted";
                sqlx::query(
                    "UPDATE certifications SET state = $1, \
                     submitted_by = CASE WHEN $2 = 1 THEN $3 ELSE submitted_by END, \
                     submitted_at = CASE WHEN $2 = 1 THEN $4 ELSE submitted_at END, \
                     reviewer_id = CASE WHEN $2 = 1 THEN NULL ELSE $3 END, \
                     reason = $5, signature = $6, signing_key_id = $7, updated_at = $4 \
                     WHERE version_id = $8 AND state = $9",
                )
                .bind(step.to_state)
                .bind(i64::from(submitting))
                .bind(step.user_id)
                .bind(now)
                .bind(step.reason)
                .bind(signature)
                .bind(signing_key_id)
                .bind(version.id)
                .bind(from)
                .execute(&mut **transaction)
                .await?
                .rows_affected()
            }
        };
        if changed == 0 {
            return Err(DbError::Conflict(
                "the version's certification changed meanwhile; look at it again".to_string(),
            ));
        }
        sqlx::query(
            "INSERT INTO certification_events (version_id, at, actor_id, from_state, to_state, \
             reason) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(version.id)
        .bind(now)
        .bind(step.user_id)
        .bind(step.from_state)
        .bind(step.to_state)
        .bind(step.reason)
        .execute(&mut **transaction)
        .await?;
        record_change(&mut transaction, version.plugin_id).await?;
        record(
            &mut transaction,
            actor,
            "version.certification",
            &format!(
                "plugin:{}/{}@{}",
                version.namespace, version.name, version.version
            ),
            json!({ "from": step.from_state, "to": step.to_state, "reason": step.reason,
                    "signing_key_id": signing_key_id }),
        )
        .await?;
        transaction.commit().await
    }
}
