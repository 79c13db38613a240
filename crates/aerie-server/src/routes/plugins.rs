//! Plugins and versions: publish, read, yank, deprecate, resolve, stats.

use std::sync::Arc;
use tracing::Instrument as _;

use crate::error::{Path, Query};
use aerie_api_types::{
    DeprecateRequest, DownloadDayView, ErrorBody, PluginView, PublishResponse, StatsView,
    VersionView,
};
use aerie_core::name::PluginName;
use aerie_core::package::read_package;
use aerie_core::signature::{PublicKey, signature_key_id, verify_package};
use aerie_db::{NewVersion, PublishOutcome, Role, VersionRecord};
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{self, CONTENT_LENGTH};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use semver::{Version, VersionReq};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Json};
use crate::routes::namespaces::visible_namespace;
use crate::state::AppState;
use crate::views;

/// The header carrying a publish's detached signature: the `.minisig` text, base64-encoded.
pub const SIGNATURE_HEADER: &str = "x-aerie-signature";

/// `namespace/name` from path segments, checked.
fn plugin_name(namespace: &str, name: &str) -> ApiResult<PluginName> {
    format!("{namespace}/{name}")
        .parse()
        .map_err(|err: aerie_core::name::NameError| {
            ApiError::bad_request("invalid_name", err.to_string())
        })
}

fn parse_version(text: &str) -> ApiResult<Version> {
    Version::parse(text).map_err(|err| {
        ApiError::bad_request(
            "invalid_version",
            format!("{text:?} is not a semantic version (like 1.2.3): {err}"),
        )
    })
}

pub(crate) fn version_not_found(namespace: &str, name: &str, version: &str) -> ApiError {
    ApiError::not_found(
        "version_not_found",
        format!("{namespace}/{name} has no version {version}"),
    )
}

/// A version the caller may see.
pub async fn visible_version(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    name: &str,
    version: &str,
    purpose: Scope,
) -> ApiResult<Arc<VersionRecord>> {
    visible_namespace(state, caller, namespace, purpose).await?;
    state
        .version(namespace, name, version)
        .await?
        .ok_or_else(|| version_not_found(namespace, name, version))
}

/// Takes a publish from the namespace's budget, shared by every replica, before the body is
/// read: 429 with `Retry-After` when it is spent.
async fn take_publish(state: &AppState, namespace: &aerie_db::Namespace) -> ApiResult<()> {
    let limits = &state.config.limits;
    let budget = aerie_db::PublishBudget {
        burst: limits.publish_burst.max(1),
        refill_ms: i64::try_from(limits.publish_refill_seconds.saturating_mul(1000))
            .unwrap_or(i64::MAX),
    };
    match state.db.take_publish(namespace.id, budget).await? {
        aerie_db::Take::Taken { .. } => Ok(()),
        aerie_db::Take::Empty { retry_after_ms } => Err(ApiError::too_many(
            "publish_rate_limited",
            format!(
                "the namespace `{}` has published {} versions lately; it may publish again in {} s",
                namespace.name,
                budget.burst,
                crate::error::retry_after_seconds(std::time::Duration::from_millis(
                    retry_after_ms.unsigned_abs()
                ))
            ),
            std::time::Duration::from_millis(retry_after_ms.unsigned_abs()),
        )),
    }
}

/// Refuses a manifest whose outbound hosts name the operator's own machine or network by
/// address or as `localhost`, unless the operator allows that.
fn check_outbound_hosts(
    state: &AppState,
    manifest: &aerie_core::manifest::Manifest,
) -> ApiResult<()> {
    if state.config.outbound.allow_local_hosts {
        return Ok(());
    }
    let local: Vec<String> = manifest
        .permissions
        .outbound
        .iter()
        .filter(|host| host.is_local())
        .map(ToString::to_string)
        .collect();
    if local.is_empty() {
        return Ok(());
    }
    Err(ApiError::unprocessable(
        "outbound_host_local",
        format!(
            "permissions.outbound names addresses or localhost ({}): this registry accepts only public host names",
            local.join(", ")
        ),
    )
    .with_details(serde_json::json!({ "hosts": local })))
}

/// Publishes a version: the package bytes as the body, the signature (base64 of the
/// `.minisig` text) in `X-Aerie-Signature`. The package passes the same checks as
/// `aerie plugin build`; nothing is stored unless every check passes. Publishing identical
/// bytes again answers 200 with the existing version; other bytes for a published version
/// answer 409.
#[utoipa::path(put, path = "/api/v1/plugins/{namespace}/{name}/{version}", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path),
        ("x-aerie-signature" = Option<String>, Header, description = "base64 of the minisign signature")),
    request_body(content = Vec<u8>, content_type = "application/gzip"),
    responses((status = 201, body = PublishResponse), (status = 200, body = PublishResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(name = "publish", skip_all, fields(plugin = %format!("{namespace}/{name}@{version}")))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<PublishResponse>)> {
    let user = caller.user()?.clone();
    let plugin = plugin_name(&namespace, &name)?;
    let parsed_version = parse_version(&version)?;
    let namespace_record =
        visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    caller
        .require_role(&state, &namespace_record, Role::Maintainer, Scope::Publish)
        .await?;
    take_publish(&state, &namespace_record).await?;
    let signature = match headers.get(SIGNATURE_HEADER) {
        Some(value) => Some(decode_signature_header(value.as_bytes())?),
        None => None,
    };

    let bytes = read_body(&state, &headers, body)
        .instrument(tracing::info_span!("publish.receive"))
        .await?;
    let limits = state.config.package_limits();
    let validate = tracing::info_span!("publish.validate", size = bytes.len());
    let package = tokio::task::spawn_blocking(move || {
        validate.in_scope(|| read_package(&bytes, &limits).map(|p| (p, bytes)))
    })
    .await
    .map_err(ApiError::internal)?;
    let (package, bytes) = package?;
    check_outbound_hosts(&state, &package.manifest)?;
    let manifest = &package.manifest.plugin;
    if manifest.name != plugin || manifest.version != parsed_version {
        return Err(ApiError::unprocessable(
            "manifest_mismatch",
            format!(
                "the package's aerie.toml says {} {}, but it is being published as {plugin} {parsed_version}",
                manifest.name, manifest.version
            ),
        ));
    }

    let signing_key_id = match &signature {
        Some(signature) => Some(
            check_signature(
                &state,
                &namespace_record,
                &bytes,
                &plugin,
                &parsed_version,
                signature,
            )
            .instrument(tracing::info_span!("publish.signature"))
            .await?,
        ),
        None if namespace_record.require_signature => {
            return Err(ApiError::unprocessable(
                "signature_required",
                format!(
                    "the namespace `{namespace}` requires signed versions: sign with `aerie plugin sign` and publish the signature too"
                ),
            ));
        }
        None => None,
    };

    // The blob first, then one transaction: a crash in between leaves an unreferenced blob
    // for `aerie gc`, never a version without its package.
    state
        .put_blob(&package.digest, bytes::Bytes::from(bytes))
        .instrument(tracing::info_span!("publish.store", digest = %package.digest))
        .await?;
    let manifest_json = serde_json::to_string(&package.manifest).map_err(ApiError::internal)?;
    let new = NewVersion {
        namespace_id: namespace_record.id,
        namespace: namespace.clone(),
        name: name.clone(),
        version: parsed_version.to_string(),
        digest: package.digest.to_string(),
        size: package.size as i64,
        manifest: manifest_json,
        readme: package.readme().map(String::from),
        changelog: package.changelog().map(String::from),
        signature,
        signing_key_id,
        publisher_id: user.id,
    };
    let outcome = state
        .db
        .publish_version(&caller.actor(), &new)
        .instrument(tracing::info_span!("publish.record"))
        .await
        .map_err(|err| match err {
            aerie_db::DbError::Conflict(message) => ApiError::conflict("version_exists", message),
            other => other.into(),
        })?;
    let (status, created, record) = match outcome {
        PublishOutcome::Created(record) => (StatusCode::CREATED, true, record),
        PublishOutcome::Existing(record) => (StatusCode::OK, false, record),
    };
    tracing::info!(digest = %record.digest, created, "published");
    if created {
        crate::search::reindex(&state.db, &state.search, record.plugin_id)
            .instrument(tracing::info_span!("publish.index"))
            .await?;
    }
    Ok((
        status,
        Json(PublishResponse {
            created,
            version: views::version(&state, &record),
        }),
    ))
}

fn decode_signature_header(value: &[u8]) -> ApiResult<String> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "signature_malformed",
                format!("the {SIGNATURE_HEADER} header must be the base64 of the .minisig file"),
            )
        })
}

/// Reads the request body, refusing it as soon as it passes the size limit: a declared
/// length over the limit is refused before any byte is read.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
    let limit = state.config.max_package_size;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "package_too_large",
            format!("the package is larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limit as usize);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(ApiError::bad_request(
            "body_unreadable",
            format!("the request body could not be read: {err}"),
        )),
    }
}

/// Verifies a publish's signature with a key registered (and not revoked) on the namespace;
/// returns the key's id.
pub(crate) async fn check_signature(
    state: &AppState,
    namespace: &aerie_db::Namespace,
    bytes: &[u8],
    plugin: &PluginName,
    version: &Version,
    signature: &str,
) -> ApiResult<String> {
    let key_id = signature_key_id(signature)?;
    let keys = state.db.keys(namespace.id).await?;
    let key = keys
        .iter()
        .find(|key| key.key_id == key_id && key.revoked_at.is_none())
        .ok_or_else(|| {
            let revoked = keys.iter().any(|key| key.key_id == key_id);
            ApiError::unprocessable(
                "signature_key_unknown",
                if revoked {
                    format!("the package is signed by key {key_id}, which was revoked on the namespace `{}`", namespace.name)
                } else {
                    format!(
                        "the package is signed by key {key_id}, which is not registered on the namespace `{}`; register it with `aerie key add`",
                        namespace.name
                    )
                },
            )
        })?;
    let public_key = PublicKey::parse(&key.public_key).map_err(ApiError::internal)?;
    verify_package(bytes, plugin, version, signature, &public_key)?;
    Ok(key_id)
}

/// The version the catalogue shows ([`aerie_core::shown`]), if it can be installed.
fn latest<'a>(versions: impl IntoIterator<Item = &'a VersionRecord>) -> Option<&'a VersionRecord> {
    views::shown(versions).filter(|record| !record.yanked)
}

/// A plugin with its versions, newest first.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = PluginView), (status = 404, body = ErrorBody)))]
pub async fn plugin(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<PluginView>> {
    visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    let summary = state.db.plugin(&namespace, &name).await?.ok_or_else(|| {
        ApiError::not_found(
            "plugin_not_found",
            format!("there is no plugin {namespace}/{name}"),
        )
    })?;
    let mut versions = state.db.versions(&namespace, &name).await?;
    versions.sort_by_key(|record| std::cmp::Reverse(Version::parse(&record.version).ok()));
    let latest = latest(versions.iter());
    let description = latest
        .map(views::manifest)
        .transpose()?
        .map(|manifest| manifest.plugin.description);
    Ok(Json(PluginView {
        name: format!("{namespace}/{name}"),
        latest: latest.map(|record| record.version.clone()),
        description,
        created_at: views::time(summary.created_at),
        updated_at: views::time(summary.updated_at),
        downloads: summary.downloads,
        versions: versions.iter().map(views::version_summary).collect(),
    }))
}

/// One version: manifest, digest, size, signature, publisher, state.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/{version}", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    let json = state
        .version_view(&namespace, &name, &version)
        .await?
        .ok_or_else(|| version_not_found(&namespace, &name, &version))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// The query of a resolution.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ResolveQuery {
    /// A semver requirement, like `^1.2`; any version when absent.
    #[param(min_length = 1)]
    pub requirement: Option<String>,
}

/// Resolves a requirement to the highest matching version that is not yanked: what a new
/// installation gets. Yanked versions stay downloadable by exact version.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/resolve", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ResolveQuery),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<ResolveQuery>,
) -> ApiResult<Json<VersionView>> {
    visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    let text = query.requirement.unwrap_or_else(|| "*".to_string());
    let requirement = VersionReq::parse(&text).map_err(|err| {
        ApiError::bad_request(
            "invalid_requirement",
            format!("{text:?} is not a version requirement: {err}"),
        )
    })?;
    let versions = state.db.versions(&namespace, &name).await?;
    let matching = |record: &&VersionRecord| {
        Version::parse(&record.version).is_ok_and(|version| requirement.matches(&version))
    };
    if let Some(record) = latest(versions.iter().filter(matching)) {
        return Ok(Json(views::version(&state, record)));
    }
    let yanked: Vec<&str> = versions
        .iter()
        .filter(matching)
        .map(|record| record.version.as_str())
        .collect();
    let message = if yanked.is_empty() {
        format!("no version of {namespace}/{name} matches {requirement}")
    } else {
        format!(
            "no version of {namespace}/{name} matches {requirement} except yanked ones ({}), which new resolutions skip",
            yanked.join(", ")
        )
    };
    Err(ApiError::not_found("no_matching_version", message))
}

async fn maintained_version(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    name: &str,
    version: &str,
) -> ApiResult<Arc<VersionRecord>> {
    let namespace_record = visible_namespace(state, caller, namespace, Scope::ReadPrivate).await?;
    caller
        .require_role(state, &namespace_record, Role::Maintainer, Scope::Yank)
        .await?;
    visible_version(state, caller, namespace, name, version, Scope::ReadPrivate).await
}

/// Yanks a version: new resolutions skip it; exact downloads still work.
#[utoipa::path(put, path = "/api/v1/plugins/{namespace}/{name}/{version}/yank", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody)))]
pub async fn yank(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String, String)>,
) -> ApiResult<Json<VersionView>> {
    set_yanked(state, caller, path, true).await
}

/// Unyanks a version.
#[utoipa::path(delete, path = "/api/v1/plugins/{namespace}/{name}/{version}/yank", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody)))]
pub async fn unyank(
    state: State<AppState>,
    caller: Caller,
    path: Path<(String, String, String)>,
) -> ApiResult<Json<VersionView>> {
    set_yanked(state, caller, path, false).await
}

async fn set_yanked(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
    yanked: bool,
) -> ApiResult<Json<VersionView>> {
    let record = maintained_version(&state, &caller, &namespace, &name, &version).await?;
    state
        .db
        .set_yanked(&caller.actor(), &record, yanked)
        .await?;
    state.forget_cached_records();
    crate::search::reindex(&state.db, &state.search, record.plugin_id).await?;
    let record = VersionRecord {
        yanked,
        ..(*record).clone()
    };
    Ok(Json(views::version(&state, &record)))
}

/// Deprecates a version with a message.
#[utoipa::path(put, path = "/api/v1/plugins/{namespace}/{name}/{version}/deprecation", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    request_body = DeprecateRequest,
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody)))]
pub async fn deprecate(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
    Json(request): Json<DeprecateRequest>,
) -> ApiResult<Json<VersionView>> {
    let message = request.message.trim();
    if message.is_empty() || message.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "invalid_message",
            "a deprecation message has 1 to 500 characters",
        ));
    }
    let record = maintained_version(&state, &caller, &namespace, &name, &version).await?;
    state
        .db
        .set_deprecated(&caller.actor(), &record, Some(message))
        .await?;
    state.forget_cached_records();
    let record = VersionRecord {
        deprecated: Some(message.to_string()),
        ..(*record).clone()
    };
    Ok(Json(views::version(&state, &record)))
}

/// Lifts a deprecation.
#[utoipa::path(delete, path = "/api/v1/plugins/{namespace}/{name}/{version}/deprecation", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = VersionView), (status = 403, body = ErrorBody)))]
pub async fn undeprecate(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> ApiResult<Json<VersionView>> {
    let record = maintained_version(&state, &caller, &namespace, &name, &version).await?;
    state
        .db
        .set_deprecated(&caller.actor(), &record, None)
        .await?;
    state.forget_cached_records();
    let record = VersionRecord {
        deprecated: None,
        ..(*record).clone()
    };
    Ok(Json(views::version(&state, &record)))
}

/// A version's detached signature, as minisign wrote it.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/{version}/signature", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 404, body = ErrorBody)))]
pub async fn signature(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name, version)): Path<(String, String, String)>,
) -> ApiResult<impl IntoResponse> {
    let record = visible_version(
        &state,
        &caller,
        &namespace,
        &name,
        &version,
        Scope::Download,
    )
    .await?;
    let signature = record.signature.clone().ok_or_else(|| {
        ApiError::not_found(
            "signature_not_found",
            format!("{namespace}/{name}@{version} is not signed"),
        )
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        signature,
    ))
}

/// Downloads of a plugin per day and version, and its active installations.
#[utoipa::path(get, path = "/api/v1/plugins/{namespace}/{name}/stats", tag = "plugins",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = StatsView), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<StatsView>> {
    visible_namespace(&state, &caller, &namespace, Scope::ReadPrivate).await?;
    let summary = state.db.plugin(&namespace, &name).await?.ok_or_else(|| {
        ApiError::not_found(
            "plugin_not_found",
            format!("there is no plugin {namespace}/{name}"),
        )
    })?;
    let days = state.db.downloads(summary.id).await?;
    let full_name = format!("{namespace}/{name}");
    let mut by_version = state.db.active_installations(&full_name).await?;
    by_version.sort_by_key(|(version, _)| std::cmp::Reverse(Version::parse(version).ok()));
    Ok(Json(StatsView {
        active_installations: by_version.iter().map(|(_, count)| count).sum(),
        installations_by_version: by_version
            .into_iter()
            .map(|(version, count)| aerie_api_types::VersionCountView { version, count })
            .collect(),
        name: full_name,
        total: summary.downloads,
        days: days
            .into_iter()
            .map(|day| DownloadDayView {
                date: views::date(day.day),
                version: day.version,
                count: day.count,
            })
            .collect(),
    }))
}
