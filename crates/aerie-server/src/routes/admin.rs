//! Administration: the audit log and the users.

use crate::error::Query;
use aerie_api_types::{AuditEntryView, ErrorBody, ReplicaView, UserView};
use aerie_db::AuditQuery;
use axum::extract::State;
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;
use crate::views;

/// A filter over the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// Only entries whose target starts with this, like `plugin:acme/`.
    pub target: Option<String>,
    /// Only entries with this action, like `version.publish`.
    pub action: Option<String>,
    /// Only entries by this user.
    pub actor: Option<String>,
    /// Only entries at or after this time, RFC 3339 (`2026-12-01T00:00:00Z`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only entries before this time, RFC 3339.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Only entries older than this id.
    pub before: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
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
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 1000"));
    }
    let entries = state
        .db
        .audit_entries(&AuditQuery {
            target_prefix: params.target,
            action: params.action,
            actor: params.actor,
            since: params
                .since
                .as_deref()
                .map(|at| time_param("since", at))
                .transpose()?,
            until: params
                .until
                .as_deref()
                .map(|at| time_param("until", at))
                .transpose()?,
            before_id: params.before,
            limit,
        })
        .await?;
    Ok(Json(entries.into_iter().map(views::audit).collect()))
}

/// Where the replica that answers stands with the spaces: those whose stored revision it does
/// not run yet, with how long ago each changed (administrators).
#[utoipa::path(get, path = "/api/v1/admin/replica", tag = "admin",
    responses((status = 200, body = ReplicaView), (status = 403, body = ErrorBody)))]
pub async fn replica(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ReplicaView>> {
    caller.require_admin()?;
    Ok(Json(crate::spaces::replica_view(&state).await?))
}

/// A time given in a query as RFC 3339, in Unix milliseconds.
fn time_param(name: &str, text: &str) -> ApiResult<i64> {
    let at = humantime::parse_rfc3339_weak(text).map_err(|err| {
        ApiError::bad_request(
            "invalid_time",
            format!("`{name}` is a time like 2026-12-01T00:00:00Z: {err}"),
        )
    })?;
    let millis = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ApiError::bad_request("invalid_time", format!("`{name}` is before 1970")))?
        .as_millis();
    Ok(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// A page of the user list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct UserQuery {
    /// Only users whose name starts with this (letters, digits and `-`, as names are).
    #[serde(default)]
    #[param(pattern = "^[a-z0-9-]{0,64}$")]
    pub prefix: Option<String>,
    /// Only users after this name, for the next page.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (1 to 200, default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The server's users by name, in pages (administrators).
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(UserQuery),
    responses((status = 200, body = Vec<UserView>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UserQuery>,
) -> ApiResult<Json<Vec<UserView>>> {
    caller.require_admin()?;
    let prefix = query.prefix.unwrap_or_default();
    if prefix.len() > 64
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ApiError::bad_request(
            "invalid_prefix",
            "a name prefix has up to 64 lowercase letters, digits and `-`",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit is 1 to 200"));
    }
    let users = state
        .db
        .users(&prefix, query.after.as_deref().unwrap_or(""), limit)
        .await?;
    Ok(Json(users.iter().map(views::user).collect()))
}
