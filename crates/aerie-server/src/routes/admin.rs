//! Administration: the audit log.

use aerie_api_types::{AuditEntryView, ErrorBody};
use aerie_db::AuditQuery;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiResult, Json};
use crate::state::AppState;
use crate::views;

/// A filter over the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Only entries whose target starts with this, like `plugin:acme/`.
    pub target: Option<String>,
    /// Only entries with this action, like `version.publish`.
    pub action: Option<String>,
    /// Only entries older than this id.
    pub before: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<i64>,
}

/// The audit log, newest first (administrators).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(AuditParams),
    responses((status = 200, body = Vec<AuditEntryView>), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<AuditParams>,
) -> ApiResult<Json<Vec<AuditEntryView>>> {
    caller.require_admin()?;
    let entries = state
        .db
        .audit_entries(&AuditQuery {
            target_prefix: params.target,
            action: params.action,
            before_id: params.before,
            limit: params.limit.unwrap_or(100),
        })
        .await?;
    Ok(Json(entries.into_iter().map(views::audit).collect()))
}
