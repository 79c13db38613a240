//! Namespaces, their members and their publisher keys.

use crate::error::Path;
use aerie_api_types::{
    AddKeyRequest, CreateNamespaceRequest, ErrorBody, KeyView, MemberView, NamespaceView,
    SetMemberRequest, UpdateNamespaceRequest,
};
use aerie_core::name::check_name;
use aerie_core::signature::PublicKey;
use aerie_db::{DbError, Namespace, Role};
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;
use crate::views;

/// The namespace called `name`, or the same 404 whether it is missing or hidden from the
/// caller.
pub async fn visible_namespace(
    state: &AppState,
    caller: &Caller,
    name: &str,
    purpose: Scope,
) -> ApiResult<Namespace> {
    let hidden = || {
        ApiError::not_found(
            "namespace_not_found",
            format!("there is no namespace `{name}`"),
        )
    };
    let namespace = state.namespace(name).await?.ok_or_else(hidden)?;
    if !caller.can_see(state, &namespace, purpose).await? {
        return Err(hidden());
    }
    Ok(Namespace::clone(&namespace))
}

/// Creates a namespace; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/namespaces", tag = "namespaces",
    request_body = CreateNamespaceRequest,
    responses((status = 201, body = NamespaceView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateNamespaceRequest>,
) -> ApiResult<(StatusCode, Json<NamespaceView>)> {
    let user = caller.user()?;
    // Creating a namespace is publishing groundwork: tokens need the publish scope.
    caller.require_scope(Scope::Publish, Some(&request.name))?;
    check_name("namespace", &request.name)
        .map_err(|err| ApiError::bad_request("invalid_namespace", err.to_string()))?;
    let require_signature = request
        .require_signature
        .unwrap_or(state.config.require_signature);
    let namespace = state
        .db
        .create_namespace(
            &caller.actor(),
            &request.name,
            user.id,
            require_signature,
            request.private,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(namespace_view(&state, &caller, &namespace).await?),
    ))
}

async fn namespace_view(
    state: &AppState,
    caller: &Caller,
    namespace: &Namespace,
) -> ApiResult<NamespaceView> {
    let is_member = match &caller.user {
        Some(user) => caller.is_admin() || state.db.role_in(namespace.id, user.id).await?.is_some(),
        None => false,
    };
    let members = if is_member {
        state
            .db
            .members(namespace.id)
            .await?
            .into_iter()
            .map(|(username, role)| MemberView {
                username,
                role: role.to_string(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(NamespaceView {
        name: namespace.name.clone(),
        require_signature: namespace.require_signature,
        private: namespace.private,
        created_at: views::time(namespace.created_at),
        members,
        plugins: state.db.plugins_in(namespace.id).await?,
    })
}

/// A namespace, its plugins, and (for members) its members.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}", tag = "namespaces",
    params(("namespace" = String, Path)),
    responses((status = 200, body = NamespaceView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<NamespaceView>> {
    let namespace = visible_namespace(&state, &caller, &name, Scope::ReadPrivate).await?;
    Ok(Json(namespace_view(&state, &caller, &namespace).await?))
}

/// Changes a namespace's settings (owners).
#[utoipa::path(patch, path = "/api/v1/namespaces/{namespace}", tag = "namespaces",
    params(("namespace" = String, Path)),
    request_body = UpdateNamespaceRequest,
    responses((status = 200, body = NamespaceView), (status = 403, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<UpdateNamespaceRequest>,
) -> ApiResult<Json<NamespaceView>> {
    let namespace = visible_namespace(&state, &caller, &name, Scope::ReadPrivate).await?;
    caller
        .require_role(&state, &namespace, Role::Owner, Scope::Owner)
        .await?;
    let require_signature = request
        .require_signature
        .unwrap_or(namespace.require_signature);
    let private = request.private.unwrap_or(namespace.private);
    state
        .db
        .update_namespace(&caller.actor(), &namespace, require_signature, private)
        .await?;
    state.forget_cached_records();
    if private != namespace.private {
        crate::search::catch_up(&state.db, &state.search).await?;
    }
    let namespace = Namespace {
        require_signature,
        private,
        ..namespace
    };
    Ok(Json(namespace_view(&state, &caller, &namespace).await?))
}

fn parse_role(text: &str) -> ApiResult<Role> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_role",
            format!("`{text}` is not a role; the roles are owner, maintainer, member"),
        )
    })
}

/// Gives a user a role in the namespace (owners).
#[utoipa::path(put, path = "/api/v1/namespaces/{namespace}/members/{username}", tag = "namespaces",
    params(("namespace" = String, Path), ("username" = String, Path)),
    request_body = SetMemberRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
    Json(request): Json<SetMemberRequest>,
) -> ApiResult<StatusCode> {
    let role = parse_role(&request.role)?;
    change_member(&state, &caller, &name, &username, Some(role)).await
}

/// Removes a user from the namespace (owners).
#[utoipa::path(delete, path = "/api/v1/namespaces/{namespace}/members/{username}", tag = "namespaces",
    params(("namespace" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    change_member(&state, &caller, &name, &username, None).await
}

async fn change_member(
    state: &AppState,
    caller: &Caller,
    name: &str,
    username: &str,
    role: Option<Role>,
) -> ApiResult<StatusCode> {
    let namespace = visible_namespace(state, caller, name, Scope::ReadPrivate).await?;
    caller
        .require_role(state, &namespace, Role::Owner, Scope::Owner)
        .await?;
    let member = state.db.user_by_name(username).await?.ok_or_else(|| {
        ApiError::not_found("user_not_found", format!("there is no user `{username}`"))
    })?;
    state
        .db
        .set_member(&caller.actor(), &namespace, member.id, role)
        .await?;
    state.forget_cached_records();
    Ok(StatusCode::NO_CONTENT)
}

/// The namespace's publisher keys, revoked ones included.
#[utoipa::path(get, path = "/api/v1/namespaces/{namespace}/keys", tag = "namespaces",
    params(("namespace" = String, Path)),
    responses((status = 200, body = Vec<KeyView>), (status = 404, body = ErrorBody)))]
pub async fn keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<KeyView>>> {
    let namespace = visible_namespace(&state, &caller, &name, Scope::ReadPrivate).await?;
    let keys = state.db.keys(namespace.id).await?;
    Ok(Json(keys.iter().map(views::key).collect()))
}

/// Registers a publisher key (owners).
#[utoipa::path(post, path = "/api/v1/namespaces/{namespace}/keys", tag = "namespaces",
    params(("namespace" = String, Path)),
    request_body = AddKeyRequest,
    responses((status = 201, body = KeyView), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(request): Json<AddKeyRequest>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    let namespace = visible_namespace(&state, &caller, &name, Scope::ReadPrivate).await?;
    let user = caller
        .require_role(&state, &namespace, Role::Owner, Scope::Owner)
        .await?;
    let key = PublicKey::parse(&request.public_key)?;
    state
        .db
        .add_key(
            &caller.actor(),
            &namespace,
            &key.key_id(),
            &key.to_base64(),
            user.id,
        )
        .await?;
    let keys = state.db.keys(namespace.id).await?;
    let added = keys
        .iter()
        .find(|stored| stored.key_id == key.key_id())
        .ok_or(DbError::NotFound("key"))?;
    Ok((StatusCode::CREATED, Json(views::key(added))))
}

/// Revokes a publisher key (owners): versions it signed stay, new ones are refused.
#[utoipa::path(delete, path = "/api/v1/namespaces/{namespace}/keys/{key_id}", tag = "namespaces",
    params(("namespace" = String, Path), ("key_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, key_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let namespace = visible_namespace(&state, &caller, &name, Scope::ReadPrivate).await?;
    caller
        .require_role(&state, &namespace, Role::Owner, Scope::Owner)
        .await?;
    state
        .db
        .revoke_key(&caller.actor(), &namespace, &key_id)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => ApiError::not_found(
                "key_not_found",
                format!("no key {key_id} is registered on `{name}`"),
            ),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
