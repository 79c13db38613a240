//! Spaces: members, tokens, installations, their config, secrets, events, the lockfile, and
//! the lifecycle (install, update, rollback, enable/disable, uninstall).
//!
//! Each handler makes its one authorization decision with [`Caller::require_space`]: viewers
//! read, admins change installations, members and tokens; owners rename, delete and name
//! owners. A space the caller has no role in answers 404, as a missing one does.

use std::collections::BTreeMap;

use crate::error::{Path, Query};
use aerie_api_types::{
    ConfigRequest, CreateSpaceRequest, CreateSpaceTokenRequest, CreatedSpaceToken, ErrorBody,
    InstallRequest, InstallationEventView, InstallationView, MemberView, RotationView,
    SecretRequest, SetSpaceMemberRequest, SpaceChangeView, SpaceTokenView, UpdateRequest,
    UpdateSpaceRequest,
};
use aerie_core::name::{PluginName, check_name};
use aerie_db::{NewSpaceToken, Space, SpaceRole, SpaceToken};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::auth::{Caller, SPACE_TOKEN_PREFIX, Scope, random_secret, sha256, token_expiry};
use crate::error::{ApiError, ApiResult, Json};
use crate::spaces;
use crate::state::AppState;
use crate::views::time;

fn space_view(
    state: &AppState,
    space: &Space,
    role: SpaceRole,
    installations: usize,
) -> aerie_api_types::SpaceView {
    aerie_api_types::SpaceView {
        name: space.name.clone(),
        created_at: time(space.created_at),
        role: role.as_str().to_string(),
        installations,
        require_certified: crate::spaces::requires_certified(state, space),
        require_signed: space.require_signed,
    }
}

fn parse_role(text: &str) -> ApiResult<SpaceRole> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_role",
            format!("`{text}` is not a space role; the roles are owner, admin, member, viewer"),
        )
    })
}

fn plugin_name(namespace: &str, name: &str) -> ApiResult<PluginName> {
    format!("{namespace}/{name}")
        .parse()
        .map_err(|err| ApiError::bad_request("invalid_plugin_name", format!("{err}")))
}

/// Creates a space; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/spaces", tag = "spaces",
    request_body = CreateSpaceRequest,
    responses((status = 201, body = aerie_api_types::SpaceView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateSpaceRequest>,
) -> ApiResult<(StatusCode, Json<aerie_api_types::SpaceView>)> {
    let user = caller.user()?;
    caller.require_scope(Scope::Spaces, None)?;
    check_name("space", &request.name)
        .map_err(|err| ApiError::bad_request("invalid_space_name", err.to_string()))?;
    let space = spaces::new_space(&state, &caller.actor(), &request.name, user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(space_view(&state, &space, SpaceRole::Owner, 0)),
    ))
}

/// The spaces the caller belongs to (every space, for an administrator).
#[utoipa::path(get, path = "/api/v1/spaces", tag = "spaces",
    responses((status = 200, body = Vec<aerie_api_types::SpaceView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<aerie_api_types::SpaceView>>> {
    let spaces: Vec<(Space, SpaceRole)> = if let Some(token) = &caller.space_token {
        let space =
            state.db.space_by_id(token.space_id).await?.ok_or_else(|| {
                ApiError::not_found("space_not_found", "the token's space is gone")
            })?;
        vec![(space, token.role)]
    } else if caller.is_admin() {
        state
            .db
            .all_spaces()
            .await?
            .into_iter()
            .map(|space| (space, SpaceRole::Owner))
            .collect()
    } else {
        let user = caller.user()?;
        caller.require_scope(Scope::Spaces, None)?;
        state.db.spaces_of(user.id).await?
    };
    let mut views = Vec::new();
    for (space, role) in spaces {
        let installations = state.db.installations(space.id).await?.len();
        views.push(space_view(&state, &space, role, installations));
    }
    Ok(Json(views))
}

/// One space.
#[utoipa::path(get, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 200, body = aerie_api_types::SpaceView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<aerie_api_types::SpaceView>> {
    let (space, role) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    let installations = state.db.installations(space.id).await?.len();
    Ok(Json(space_view(&state, &space, role, installations)))
}

/// Renames a space or changes its certification policy (owners). Its endpoints move to a
/// new name; its data stays. What the body leaves out stays as it is (an empty body changes
/// nothing), as for a namespace.
#[utoipa::path(patch, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path)), request_body = UpdateSpaceRequest,
    responses((status = 200, body = aerie_api_types::SpaceView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<UpdateSpaceRequest>,
) -> ApiResult<Json<aerie_api_types::SpaceView>> {
    let (mut space, role) = caller
        .require_space(&state, &name, SpaceRole::Owner)
        .await?;
    if let Some(new_name) = &request.name {
        check_name("space", new_name)
            .map_err(|err| ApiError::bad_request("invalid_space_name", err.to_string()))?;
    }
    if request.require_certified.is_some() || request.require_signed.is_some() {
        let policy = aerie_db::SpacePolicy {
            require_certified: request.require_certified.unwrap_or(space.require_certified),
            require_signed: request.require_signed.unwrap_or(space.require_signed),
        };
        state
            .db
            .set_space_policy(&caller.actor(), &space, policy)
            .await?;
        space.require_certified = policy.require_certified;
        space.require_signed = policy.require_signed;
    }
    if let Some(new_name) = request.name {
        state
            .db
            .rename_space(&caller.actor(), &space, &new_name)
            .await?;
        space.name = new_name;
    }
    state.forget_space(&name);
    let installations = state.db.installations(space.id).await?.len();
    Ok(Json(space_view(&state, &space, role, installations)))
}

/// Deletes a space with everything in it (owners): its plugins stop, their data goes.
#[utoipa::path(delete, path = "/api/v1/spaces/{space}", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Owner)
        .await?;
    spaces::delete_space(&state, &caller, &space).await?;
    state.forget_space(&name);
    Ok(StatusCode::NO_CONTENT)
}

/// The space's members.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/members", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 200, body = Vec<MemberView>), (status = 404, body = ErrorBody)))]
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<MemberView>>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    let members = state.db.space_members(space.id).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|(username, role)| MemberView {
                username,
                role: role.as_str().to_string(),
            })
            .collect(),
    ))
}

/// Who may change `target`'s membership from `current` to `wanted`: admins manage roles below
/// owner; only owners make, unmake or remove owners.
fn check_member_change(
    caller_role: SpaceRole,
    current: Option<SpaceRole>,
    wanted: Option<SpaceRole>,
) -> ApiResult<()> {
    let touches_owner = current == Some(SpaceRole::Owner) || wanted == Some(SpaceRole::Owner);
    if touches_owner && caller_role != SpaceRole::Owner {
        return Err(ApiError::forbidden(
            "space_role_required",
            "only an owner makes, unmakes or removes owners",
        ));
    }
    Ok(())
}

async fn change_member(
    state: &AppState,
    caller: &Caller,
    name: &str,
    username: &str,
    wanted: Option<SpaceRole>,
) -> ApiResult<StatusCode> {
    let (space, role) = caller.require_space(state, name, SpaceRole::Admin).await?;
    let user = state.db.user_by_name(username).await?.ok_or_else(|| {
        ApiError::not_found("user_not_found", format!("there is no user `{username}`"))
    })?;
    let current = state.db.space_role(space.id, user.id).await?;
    check_member_change(role, current, wanted)?;
    if wanted.is_none() && current.is_none() {
        return Err(ApiError::not_found(
            "member_not_found",
            format!("{username} is not a member of `{name}`"),
        ));
    }
    state
        .db
        .set_space_member(&caller.actor(), &space, user.id, wanted)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a user a role in the space (admins; owners for owner roles).
#[utoipa::path(put, path = "/api/v1/spaces/{space}/members/{username}", tag = "spaces",
    params(("space" = String, Path), ("username" = String, Path)),
    request_body = SetSpaceMemberRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
    Json(request): Json<SetSpaceMemberRequest>,
) -> ApiResult<StatusCode> {
    let role = parse_role(&request.role)?;
    change_member(&state, &caller, &name, &username, Some(role)).await
}

/// Removes a member (admins; owners for owners). The last owner stays.
#[utoipa::path(delete, path = "/api/v1/spaces/{space}/members/{username}", tag = "spaces",
    params(("space" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    change_member(&state, &caller, &name, &username, None).await
}

fn token_view(token: &SpaceToken) -> SpaceTokenView {
    SpaceTokenView {
        id: token.id,
        name: token.name.clone(),
        prefix: token.prefix.clone(),
        role: token.role.as_str().to_string(),
        created_by: token.created_by.clone(),
        created_at: time(token.created_at),
        expires_at: token.expires_at.map(time),
        last_used_at: token.last_used_at.map(time),
        revoked_at: token.revoked_at.map(time),
    }
}

/// Creates a space token (admins), with a role no higher than the creator's and never owner.
#[utoipa::path(post, path = "/api/v1/spaces/{space}/tokens", tag = "spaces",
    params(("space" = String, Path)), request_body = CreateSpaceTokenRequest,
    responses((status = 201, body = CreatedSpaceToken), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The space has a token of that name")))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<CreateSpaceTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedSpaceToken>)> {
    let (space, role) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    check_name("token name", &request.name)
        .map_err(|err| ApiError::bad_request("invalid_token_name", err.to_string()))?;
    let token_role = parse_role(&request.role)?;
    if token_role == SpaceRole::Owner || !role.at_least(token_role) {
        return Err(ApiError::forbidden(
            "space_role_required",
            format!(
                "a token may be admin, member or viewer, and no more than your own role ({role})"
            ),
        ));
    }
    let secret = format!("{SPACE_TOKEN_PREFIX}{}", random_secret());
    let token = state
        .db
        .create_space_token(
            &caller.actor(),
            &space,
            &NewSpaceToken {
                name: request.name,
                hash: sha256(secret.as_bytes()),
                prefix: secret[..SPACE_TOKEN_PREFIX.len() + 6].to_string(),
                role: token_role,
                created_by: caller.user.as_ref().map(|user| user.id),
                expires_at: token_expiry(request.expires_in_days)?,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSpaceToken {
            token: secret,
            info: token_view(&token),
        }),
    ))
}

/// The space's tokens (admins). Secrets are never shown again.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/tokens", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 200, body = Vec<SpaceTokenView>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<SpaceTokenView>>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let tokens = state.db.space_tokens(space.id).await?;
    Ok(Json(tokens.iter().map(token_view).collect()))
}

/// Revokes a space token (admins).
#[utoipa::path(delete, path = "/api/v1/spaces/{space}/tokens/{id}", tag = "spaces",
    params(("space" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    state
        .db
        .revoke_space_token(&caller.actor(), &space, id)
        .await
        .map_err(|err| match err {
            aerie_db::DbError::NotFound(_) => {
                ApiError::not_found("token_not_found", "the space has no such live token")
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// The space's installations.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/installations", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 200, body = Vec<InstallationView>), (status = 404, body = ErrorBody)))]
pub async fn installations(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<InstallationView>>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    Ok(Json(spaces::installation_views(&state, &space).await?))
}

async fn change_view(
    state: &AppState,
    space: &Space,
    changed: BTreeMap<String, String>,
) -> ApiResult<Json<SpaceChangeView>> {
    let space = state
        .db
        .space_by_id(space.id)
        .await?
        .unwrap_or_else(|| space.clone());
    Ok(Json(SpaceChangeView {
        changed,
        installations: spaces::installation_views(state, &space).await?,
    }))
}

/// Installs a plugin and what it depends on (admins). The answer is 409 with the
/// permissions to consent to until `accept` covers them.
#[utoipa::path(post, path = "/api/v1/spaces/{space}/installations", tag = "spaces",
    params(("space" = String, Path)), request_body = InstallRequest,
    responses((status = 201, body = SpaceChangeView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<InstallRequest>,
) -> ApiResult<(StatusCode, Json<SpaceChangeView>)> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let changed = spaces::install(&state, &caller, &space, request).await?;
    Ok((
        StatusCode::CREATED,
        change_view(&state, &space, changed).await?,
    ))
}

/// One installation.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = InstallationView), (status = 404, body = ErrorBody)))]
pub async fn installation(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
) -> ApiResult<Json<InstallationView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    spaces::installation_views(&state, &space)
        .await?
        .into_iter()
        .find(|view| view.plugin == plugin.as_str())
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "installation_not_found",
                format!("{plugin} is not installed in the space `{name}`"),
            )
        })
}

/// The query of an uninstall.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct UninstallQuery {
    /// Keep the plugin's key-value data, for a later reinstall.
    #[serde(default)]
    pub keep_data: bool,
}

/// Uninstalls a plugin and the dependencies nothing else needs (admins).
#[utoipa::path(delete, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path), UninstallQuery),
    responses((status = 200, body = SpaceChangeView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn uninstall(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
    Query(query): Query<UninstallQuery>,
) -> ApiResult<Json<SpaceChangeView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    let changed = spaces::uninstall(&state, &caller, &space, &plugin, query.keep_data).await?;
    change_view(&state, &space, changed).await
}

/// Updates a plugin to the newest version its requirement (or a new one) allows (admins). If
/// the new version does not start, the old one keeps serving and the answer says why.
#[utoipa::path(post, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/update", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    request_body = UpdateRequest,
    responses((status = 200, body = SpaceChangeView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
    Json(request): Json<UpdateRequest>,
) -> ApiResult<Json<SpaceChangeView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    let changed = spaces::update(&state, &caller, &space, &plugin, request).await?;
    change_view(&state, &space, changed).await
}

/// Returns a plugin to the version before its last update (admins).
#[utoipa::path(post, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/rollback", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SpaceChangeView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
) -> ApiResult<Json<SpaceChangeView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    let changed = spaces::rollback(&state, &caller, &space, &plugin).await?;
    change_view(&state, &space, changed).await
}

async fn set_enabled(
    state: AppState,
    caller: Caller,
    (name, namespace, plugin): (String, String, String),
    enabled: bool,
) -> ApiResult<Json<InstallationView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    spaces::set_enabled(&state, &caller, &space, &plugin, enabled).await?;
    installation(
        State(state),
        caller,
        Path((name, namespace, plugin.name().to_string())),
    )
    .await
}

/// Stops serving an installation, keeping it installed (admins).
#[utoipa::path(post, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/disable", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = InstallationView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<Json<InstallationView>> {
    set_enabled(state, caller, path, false).await
}

/// Serves a disabled installation again (admins).
#[utoipa::path(post, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/enable", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = InstallationView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<Json<InstallationView>> {
    set_enabled(state, caller, path, true).await
}

/// Replaces an installation's config (admins): checked against the plugin's schema, then the
/// plugin restarts with it; if it does not start, the old config stays.
#[utoipa::path(put, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/config", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    request_body = ConfigRequest,
    responses((status = 200, body = InstallationView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_config(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
    Json(request): Json<ConfigRequest>,
) -> ApiResult<Json<InstallationView>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin_name = plugin_name(&namespace, &plugin)?;
    spaces::set_config(&state, &caller, &space, &plugin_name, request.config).await?;
    installation(State(state), caller, Path((name, namespace, plugin))).await
}

/// Sets one of an installation's secrets (admins). The value is sealed at once and never
/// returned by any endpoint.
#[utoipa::path(put, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/secrets/{secret}", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
        ("secret" = String, Path)),
    request_body = SecretRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin, secret)): Path<(String, String, String, String)>,
    Json(request): Json<SecretRequest>,
) -> ApiResult<StatusCode> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    spaces::set_secret(
        &state,
        &caller,
        &space,
        &plugin,
        &secret,
        Some(&request.value),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of an installation's secrets (admins).
#[utoipa::path(delete, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/secrets/{secret}", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path),
        ("secret" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin, secret)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Admin)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    spaces::set_secret(&state, &caller, &space, &plugin, &secret, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An installation's history, newest first (kept after an uninstall).
#[utoipa::path(get, path = "/api/v1/spaces/{space}/installations/{namespace}/{name}/events", tag = "spaces",
    params(("space" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Vec<InstallationEventView>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, namespace, plugin)): Path<(String, String, String)>,
) -> ApiResult<Json<Vec<InstallationEventView>>> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    let plugin = plugin_name(&namespace, &plugin)?;
    let events = state
        .db
        .installation_events(space.id, plugin.as_str(), 200)
        .await?;
    Ok(Json(
        events
            .into_iter()
            .map(|event| InstallationEventView {
                at: time(event.at),
                actor: event.actor,
                kind: event.event.kind,
                from_version: event.event.from_version,
                to_version: event.event.to_version,
                message: event.event.message,
            })
            .collect(),
    ))
}

/// The space's lockfile, as TOML.
#[utoipa::path(get, path = "/api/v1/spaces/{space}/lockfile", tag = "spaces",
    params(("space" = String, Path)),
    responses((status = 200, body = String, content_type = "application/toml"),
        (status = 404, body = ErrorBody)))]
pub async fn lockfile(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (space, _) = caller
        .require_space(&state, &name, SpaceRole::Viewer)
        .await?;
    let text = if space.lockfile.is_empty() {
        aerie_resolve::Lockfile::default().to_toml()
    } else {
        space.lockfile
    };
    Ok(([(CONTENT_TYPE, "application/toml; charset=utf-8")], text))
}

/// Re-wraps every space's data key with a new master key, then retires the old one (server
/// administrators).
#[utoipa::path(post, path = "/api/v1/admin/rotate-master-key", tag = "admin",
    responses((status = 200, body = RotationView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn rotate_master_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<RotationView>> {
    caller.require_admin()?;
    Ok(Json(
        spaces::rotate_master_key(&state, &caller.actor()).await?,
    ))
}
