//! Certification: a version's publishers submit it; server admins take it into review, then
//! certify it (the registry signs it) or reject it, and may withdraw a certification.

use crate::error::{Path, Query};
use aerie_api_types::{
    CertificationEventView, CertificationQueueEntry, CertificationQueueView, CertificationRequest,
    CertificationView, ErrorBody, RegistryKeyView,
};
use aerie_core::certification::{self, CertificationAction, CertificationState};
use aerie_db::{CertificationStep, Role, VersionRecord};
use axum::extract::State;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Json};
use crate::registry_key::subject;
use crate::routes::namespaces::visible_namespace;
use crate::routes::plugins::{version_not_found, visible_version};
use crate::state::AppState;
use crate::views::time;

/// Longest reason, in characters.
const MAX_REASON_LEN: usize = 2000;

/// A version's certification, with its history.
async fn view(state: &AppState, record: &VersionRecord) -> ApiResult<CertificationView> {
    let certification = state.db.certification(record.id).await?;
    let history = state.db.certification_events(record.id).await?;
    let plugin = format!("{}/{}", record.namespace, record.name);
    let certified = certification
        .as_ref()
        .is_some_and(|certification| certification.state == "certified");
    let statement = if certified {
        let (name, version, digest) = subject(record)?;
        Some(certification::statement(&name, &version, &digest))
    } else {
        None
    };
    Ok(CertificationView {
        statement,
        plugin,
        version: record.version.clone(),
        digest: record.digest.clone(),
        state: certification
            .as_ref()
            .map_or("not_submitted".to_string(), |c| c.state.clone()),
        submitted_by: certification.as_ref().and_then(|c| c.submitted_by.clone()),
        submitted_at: certification.as_ref().map(|c| time(c.submitted_at)),
        reviewer: certification.as_ref().and_then(|c| c.reviewer.clone()),
        reason: certification.as_ref().and_then(|c| c.reason.clone()),
        signature: certification.as_ref().and_then(|c| c.signature.clone()),
        signing_key_id: certification.and_then(|c| c.signing_key_id),
        history: history
            .into_iter()
            .map(|event| CertificationEventView {
                at: time(event.at),
                actor: event.actor,
                from: event.from_state,
                to: event.to_state,
                reason: event.reason,
            })
            .collect(),
    })
}

/// A version's certification.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/{version}/certification",
    tag = "certification",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = CertificationView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> ApiResult<Json<CertificationView>> {
    let record = visible_version(
        &state,
        &caller,
        &namespace,
        &name,
        &version,
        Scope::ReadPrivate,
    )
    .await?;
    Ok(Json(view(&state, &record).await?))
}

/// Moves a version's certification one step: `submit` (its namespace's maintainers), or
/// `start_review`, `certify`, `reject` (server admins; `reject` needs a reason).
#[utoipa::path(post, path = "/api/v1/plugins/{namespace}/{name}/{version}/certification",
    tag = "certification",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    request_body = CertificationRequest,
    responses((status = 200, body = CertificationView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(plugin = %format!("{namespace}/{name}@{version}"), action = %request.action))]
pub async fn step(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
    Json(request): Json<CertificationRequest>,
) -> ApiResult<Json<CertificationView>> {
    let user = caller.user()?;
    let action: CertificationAction = request
        .action
        .parse()
        .map_err(|message| ApiError::bad_request("invalid_action", message))?;
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty());
    if reason.is_some_and(|reason| reason.chars().count() > MAX_REASON_LEN) {
        return Err(ApiError::bad_request(
            "reason_too_long",
            format!("a reason has at most {MAX_REASON_LEN} characters"),
        ));
    }
    if action == CertificationAction::Reject && reason.is_none() {
        return Err(ApiError::bad_request(
            "reason_required",
            "say why the version is rejected: the publisher reads it",
        ));
    }
    let namespace_record =
        visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    if action.needs_admin() {
        caller.require_admin()?;
    } else {
        caller
            .require_role(&state, &namespace_record, Role::Maintainer, Scope::Publish)
            .await?;
    }
    // Fresh from the database: the cached record may predate the last step.
    let record = state
        .db
        .version(&namespace, &name, &version)
        .await?
        .ok_or_else(|| version_not_found(&namespace, &name, &version))?;
    if action == CertificationAction::Submit && record.yanked {
        return Err(ApiError::conflict(
            "version_yanked",
            format!("{namespace}/{name}@{version} is yanked; submit a version people can install"),
        ));
    }
    let from = record
        .certification
        .as_deref()
        .map(str::parse::<CertificationState>)
        .transpose()
        .map_err(ApiError::internal)?;
    let to = certification::transition(from, action)
        .map_err(|err| ApiError::conflict("invalid_certification_step", err.to_string()))?;
    let signature = if to == CertificationState::Certified {
        Some(state.registry_key.sign(&record)?)
    } else {
        None
    };
    let key_id = state.registry_key.public().key_id();
    state
        .db
        .record_certification_step(
            &caller.actor(),
            &record,
            &CertificationStep {
                from_state: from.map(CertificationState::as_str),
                to_state: to.as_str(),
                user_id: user.id,
                reason,
                signature: signature
                    .as_deref()
                    .map(|signature| (signature, key_id.as_str())),
            },
        )
        .await?;
    state.forget_cached_records();
    crate::search::reindex(&state.db, &state.search, record.plugin_id).await?;
    tracing::info!(from = ?from, to = %to, "certification step");
    Ok(Json(view(&state, &record).await?))
}

/// Which certifications to list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct QueueQuery {
    /// Only this state (default `submitted`); `all` for every state.
    #[serde(default)]
    #[param(pattern = "^(submitted|in_review|certified|rejected|all)$")]
    pub state: Option<String>,
    /// Versions skipped.
    #[serde(default)]
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Versions returned, 1 to 200 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The certification queue, longest waiting first (admins).
#[utoipa::path(get, path = "/api/v1/admin/certifications", tag = "certification",
    params(QueueQuery),
    responses((status = 200, body = CertificationQueueView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<QueueQuery>,
) -> ApiResult<Json<CertificationQueueView>> {
    caller.require_admin()?;
    let wanted = query.state.as_deref().unwrap_or("submitted");
    let filter = match wanted {
        "all" => None,
        text => Some(
            text.parse::<CertificationState>()
                .map_err(|message| ApiError::bad_request("invalid_state", message))?,
        ),
    };
    let limit = query.limit.unwrap_or(50);
    let offset = query.offset.unwrap_or(0);
    if !(1..=200).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_page",
            "limit must be 1 to 200 and offset 0 or more",
        ));
    }
    let listings = state
        .db
        .certification_queue(filter.map(CertificationState::as_str), limit, offset)
        .await?;
    Ok(Json(CertificationQueueView {
        versions: listings
            .into_iter()
            .map(|listing| CertificationQueueEntry {
                plugin: listing.plugin,
                version: listing.version,
                state: listing.certification.state,
                submitted_by: listing.certification.submitted_by,
                updated_at: time(listing.certification.updated_at),
            })
            .collect(),
    }))
}

/// The registry's public key, which verifies certifications.
#[utoipa::path(get, path = "/api/v1/registry/key", tag = "certification",
    responses((status = 200, body = RegistryKeyView)))]
pub async fn registry_key(State(state): State<AppState>) -> Json<RegistryKeyView> {
    let public = state.registry_key.public();
    Json(RegistryKeyView {
        key_id: public.key_id(),
        public_key: public.to_file_text(),
    })
}
