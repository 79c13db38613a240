//! Administration in the browser: the certification queue with its review steps, and the
//! audit log with filters. Only server administrators get past the services' checks.

use aerie_api_types::{AuditEntryView, CertificationQueueEntry, CertificationRequest, UserView};
use aerie_server::AppState;
use aerie_server::error::{ApiError, Json};
use aerie_server::error::{Path, Query};
use aerie_server::routes::{admin, certification};
use askama::Template;
use axum::extract::{RawQuery, State};
use bytes::Bytes;

use crate::{
    Choice, Layout, OrPage, PageResult, Viewer, form_encode, read_fields, render, see_other,
};

/// The states the queue can be filtered by, with their labels.
const STATES: &[(&str, &str)] = &[
    ("submitted", "Submitted"),
    ("in_review", "In review"),
    ("certified", "Certified"),
    ("rejected", "Rejected"),
    ("all", "All"),
];

#[derive(Template)]
#[template(path = "admin.html")]
struct QueuePage {
    layout: Layout,
    states: Vec<Choice>,
    entries: Vec<CertificationQueueEntry>,
}

#[derive(Default, serde::Deserialize)]
struct QueueFilter {
    #[serde(default)]
    state: Option<String>,
}

/// `GET /admin`: the certification queue, longest waiting first.
pub async fn queue(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let filter: QueueFilter = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    let wanted = filter.state.unwrap_or_else(|| "submitted".into());
    let entries = certification::queue(
        State(state),
        viewer.caller.clone(),
        Query(certification::QueueQuery {
            state: Some(wanted.clone()),
            offset: None,
            limit: Some(200),
        }),
    )
    .await
    .or_page(&viewer)?
    .0
    .versions;
    Ok(render(&QueuePage {
        states: STATES
            .iter()
            .map(|&(value, label)| Choice {
                value,
                label,
                chosen: value == wanted,
            })
            .collect(),
        entries,
        layout: viewer.layout,
    }))
}

#[derive(serde::Deserialize)]
struct StepForm {
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /admin/certifications/{namespace}/{name}/{version}`: one review step.
pub async fn step(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: StepForm = read_fields(&viewer, &body)?;
    let reason = form.reason.trim();
    certification::step(
        State(state),
        viewer.caller.clone(),
        Path(path),
        Json(CertificationRequest {
            action: form.action,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
        }),
    )
    .await
    .or_page(&viewer)?;
    Ok(see_other("/admin"))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    target: String,
    action: String,
    actor: String,
    entries: Vec<AuditEntryView>,
    older: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct AuditFilter {
    #[serde(default)]
    target: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    before: String,
}

/// Entries per audit page.
const AUDIT_PAGE: i64 = 50;

/// `GET /admin/audit`: the audit log, newest first, filtered by target prefix and action.
pub async fn audit(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let filter: AuditFilter = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    let before = match filter.before.as_str() {
        "" => None,
        before => Some(before.parse().map_err(|_| {
            viewer.error(ApiError::bad_request(
                "invalid_before",
                "`before` is an entry's id.",
            ))
        })?),
    };
    let text = |value: &str| (!value.trim().is_empty()).then(|| value.trim().to_string());
    let entries = admin::audit(
        State(state),
        viewer.caller.clone(),
        Query(admin::AuditParams {
            target: text(&filter.target),
            action: text(&filter.action),
            actor: text(&filter.actor),
            since: None,
            until: None,
            before,
            limit: Some(AUDIT_PAGE),
        }),
    )
    .await
    .or_page(&viewer)?
    .0;
    let older = (entries.len() as i64 == AUDIT_PAGE).then(|| {
        format!(
            "/admin/audit?target={}&action={}&actor={}&before={}",
            form_encode(&filter.target),
            form_encode(&filter.action),
            form_encode(&filter.actor),
            entries.last().map_or(0, |entry| entry.id)
        )
    });
    Ok(render(&AuditPage {
        layout: viewer.layout,
        target: filter.target,
        action: filter.action,
        actor: filter.actor,
        entries,
        older,
    }))
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    layout: Layout,
    prefix: String,
    users: Vec<UserView>,
    next: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct UserFilter {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: String,
}

/// Users per page of the list.
const USER_PAGE: i64 = 50;

/// `GET /admin/users`: the server's users by name, filtered by a name prefix, in pages.
pub async fn users(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let filter: UserFilter = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    let query = admin::UserQuery {
        prefix: Some(filter.prefix.trim().to_string()),
        after: (!filter.after.is_empty()).then(|| filter.after.clone()),
        limit: Some(USER_PAGE),
    };
    let users = viewer
        .call(&state, |state, caller| {
            admin::users(state, caller, Query(query))
        })
        .await?;
    let next = (users.len() as i64 == USER_PAGE).then(|| {
        format!(
            "/admin/users?prefix={}&after={}",
            form_encode(filter.prefix.trim()),
            form_encode(
                &users
                    .last()
                    .map(|user| user.username.clone())
                    .unwrap_or_default()
            )
        )
    });
    Ok(render(&UsersPage {
        layout: viewer.layout,
        prefix: filter.prefix,
        users,
        next,
    }))
}
