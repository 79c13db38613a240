//! Accounts, sessions and API tokens.

use crate::error::Path;
use aerie_api_types::{
    CreateTokenRequest, CreatedToken, ErrorBody, LoginRequest, MeView, Membership,
    PasswordChangeRequest, SessionView, SignupRequest, TokenView, UserView,
};
use aerie_core::name::check_name;
use aerie_db::{NewToken, now_millis};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;

use crate::auth::{
    Caller, ClientAddress, Scope, TOKEN_PREFIX, dummy_password_hash, hash_password, random_secret,
    session_cookie, session_cookie_name, session_user, sha256, token_expiry, verify_password,
};
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;
use crate::views;

/// Shortest password accepted.
const MIN_PASSWORD_LEN: usize = 10;

/// Creates an account. Open to anyone when sign-up is open, otherwise to administrators.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts",
    request_body = SignupRequest,
    responses((status = 201, body = UserView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn signup(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<SignupRequest>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = create_account(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, Json(views::user(&user))))
}

/// What [`signup`] does, for the API and the web UI alike.
pub async fn create_account(
    state: &AppState,
    caller: &Caller,
    request: SignupRequest,
) -> ApiResult<aerie_db::User> {
    if !state.config.open_signup && !caller.is_admin() {
        return Err(ApiError::forbidden(
            "signup_closed",
            "sign-up is closed on this server; an administrator can create your account",
        ));
    }
    check_name("user name", &request.username)
        .map_err(|err| ApiError::bad_request("invalid_username", err.to_string()))?;
    check_password_rules(&request.password)?;
    let hash = hash_password(&state.passwords, request.password).await?;
    Ok(state
        .db
        .create_user(
            &caller.actor(),
            &request.username,
            request.email.as_deref(),
            &hash,
            false,
        )
        .await?)
}

/// Refuses a password too short or too long.
fn check_password_rules(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_LEN..=1024).contains(&length) {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("the password must have {MIN_PASSWORD_LEN} to 1024 characters"),
        ));
    }
    Ok(())
}

/// Signs in: sets the session cookie.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "accounts",
    request_body = LoginRequest,
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let (user, cookie) = sign_in(
        &state,
        address,
        &headers,
        &request.username,
        request.password,
    )
    .await?;
    let me = me_view(&state, &user, None).await?;
    Ok(([(SET_COOKIE, cookie)], Json(me)))
}

/// Checks a user name and password and starts a browser session: the user and the
/// `Set-Cookie` value that carries it. For the API and the web UI alike.
pub async fn sign_in(
    state: &AppState,
    address: ClientAddress,
    headers: &HeaderMap,
    username: &str,
    password: String,
) -> ApiResult<(aerie_db::User, HeaderValue)> {
    let user = check_credentials(state, address, username, password).await?;
    let secret = random_secret();
    let hours = state.config.session_hours;
    let expires_at = now_millis() + (hours as i64) * 3_600_000;
    let origin = aerie_db::SessionOrigin {
        ip: address.0.map(|ip| ip.to_string()),
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(200).collect()),
    };
    state
        .db
        .create_session(user.id, &sha256(secret.as_bytes()), expires_at, &origin)
        .await?;
    let cookie = session_cookie_header(&state.config, &secret, hours * 3600)?;
    Ok((user, cookie))
}

/// The `Set-Cookie` value for the session cookie: host-only, `HttpOnly`, `SameSite=Lax`, and
/// `Secure` with the `__Host-` prefix when the server is reached over HTTPS. An empty value
/// with `max_age` 0 removes it.
fn session_cookie_header(
    config: &crate::Config,
    value: &str,
    max_age: u64,
) -> ApiResult<HeaderValue> {
    let secure = if config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let name = session_cookie_name(config);
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(ApiError::internal)
}

/// Signs out: ends the session.
#[utoipa::path(delete, path = "/api/v1/sessions", tag = "accounts",
    responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, sign_out(&state, &headers).await?)],
    ))
}

/// Ends the request's browser session, if it has one: the `Set-Cookie` value that removes
/// the cookie.
pub async fn sign_out(state: &AppState, headers: &HeaderMap) -> ApiResult<HeaderValue> {
    if let Some(session) = session_cookie(&state.config, headers) {
        state.db.delete_session(&sha256(session.as_bytes())).await?;
    }
    session_cookie_header(&state.config, "", 0)
}

/// The caller's browser sessions, newest first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts",
    responses((status = 200, body = Vec<SessionView>), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<SessionView>>> {
    let user = caller.user()?;
    let sessions = state.db.sessions_of(user.id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionView {
                current: caller.session == Some(session.id),
                id: session.id,
                created_at: views::time(session.created_at),
                last_seen_at: session.last_seen_at.map(views::time),
                expires_at: views::time(session.expires_at),
                ip: session.origin.ip,
                user_agent: session.origin.user_agent,
            })
            .collect(),
    ))
}

/// Signs out everywhere: ends every browser session of the caller's, this one too.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn end_all_sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    let cookie = sign_out_everywhere(&state, &caller).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]))
}

/// What [`end_all_sessions`] does, for the API and the web UI alike: the `Set-Cookie` value
/// that removes this browser's cookie.
pub async fn sign_out_everywhere(state: &AppState, caller: &Caller) -> ApiResult<HeaderValue> {
    let user = caller.user()?;
    state
        .db
        .end_sessions(&caller.actor(), user.id, None, None)
        .await?;
    session_cookie_header(&state.config, "", 0)
}

/// Ends one of the caller's browser sessions.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "The session's id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    let ended = state
        .db
        .end_sessions(&caller.actor(), user.id, Some(id), None)
        .await?;
    if ended == 0 {
        return Err(ApiError::not_found(
            "session_not_found",
            format!("you have no session {id}"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password, given the current one; every other browser session ends.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "accounts",
    request_body = PasswordChangeRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    address: ClientAddress,
    Json(request): Json<PasswordChangeRequest>,
) -> ApiResult<StatusCode> {
    set_password(&state, &caller, address, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What [`change_password`] does, for the API and the web UI alike: the current password
/// checked, every other session ended.
pub async fn set_password(
    state: &AppState,
    caller: &Caller,
    address: ClientAddress,
    request: PasswordChangeRequest,
) -> ApiResult<()> {
    let user = caller.user()?.clone();
    check_password_rules(&request.new_password)?;
    check_credentials(state, address, &user.username, request.current_password).await?;
    let hash = hash_password(&state.passwords, request.new_password).await?;
    state
        .db
        .change_password(&caller.actor(), user.id, &hash, caller.session)
        .await?;
    Ok(())
}

/// The caller: user, namespaces, and the token's scopes.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<MeView>> {
    let user = caller.user()?;
    Ok(Json(
        me_view(
            &state,
            user,
            caller.token.as_ref().map(|t| t.scopes.clone()),
        )
        .await?,
    ))
}

async fn me_view(
    state: &AppState,
    user: &aerie_db::User,
    token_scopes: Option<Vec<String>>,
) -> ApiResult<MeView> {
    let namespaces = state
        .db
        .namespaces_of(user.id)
        .await?
        .into_iter()
        .map(|(namespace, role)| Membership {
            namespace: namespace.name,
            role: role.to_string(),
        })
        .collect();
    Ok(MeView {
        user: views::user(user),
        namespaces,
        token_scopes,
    })
}

/// Checks a user name and password; a wrong name costs as much time as a wrong password.
/// An account with too many failures in a row must wait first (429); every failure is
/// audited with the client's address.
async fn check_credentials(
    state: &AppState,
    address: ClientAddress,
    username: &str,
    password: String,
) -> ApiResult<aerie_db::User> {
    if let Some(wait) = state.login_backoff.wait(username) {
        return Err(ApiError::too_many(
            "login_backoff",
            "too many failed sign-ins for this account; wait before trying again",
            wait,
        ));
    }
    let user = state.db.user_by_name(username).await?;
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => dummy_password_hash(&state.passwords).await?,
    };
    let valid = verify_password(&state.passwords, password, hash).await?;
    match user {
        Some(user) if valid => {
            state.login_backoff.succeeded(username);
            Ok(user)
        }
        _ => {
            state.login_backoff.failed(username);
            let actor = aerie_db::Actor {
                ip: address.0.map(|ip| ip.to_string()),
                ..aerie_db::Actor::default()
            };
            let reason = if user.is_some() {
                "wrong password"
            } else {
                "unknown user"
            };
            state
                .db
                .record_failed_login(&actor, username, reason)
                .await?;
            Err(ApiError::unauthorized(
                "login_failed",
                "the user name or password is wrong",
            ))
        }
    }
}

/// Creates an API token. Authenticate with the session cookie or HTTP Basic (user name and
/// password); a token cannot create tokens. The secret is shown only in this response.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    address: ClientAddress,
    headers: HeaderMap,
    Json(request): Json<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let user = token_creator(&state, address, &headers).await?;
    let ip = address.0.map(|ip| ip.to_string());
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad_request(
            "invalid_token_name",
            "the token name must have 1 to 64 characters",
        ));
    }
    if request.scopes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "give the token at least one scope",
        ));
    }
    for scope in &request.scopes {
        let scope: Scope = scope.parse()?;
        if scope == Scope::Admin && !user.is_admin {
            return Err(ApiError::forbidden(
                "admin_required",
                "only administrators can create admin tokens",
            ));
        }
    }
    if let Some(namespaces) = &request.namespaces {
        for namespace in namespaces {
            if state.db.namespace(namespace).await?.is_none() {
                return Err(ApiError::bad_request(
                    "namespace_not_found",
                    format!("there is no namespace `{namespace}`"),
                ));
            }
        }
    }
    let expires_at = token_expiry(request.expires_in_days)?;
    let secret = format!("{TOKEN_PREFIX}{}", random_secret());
    let actor = aerie_db::Actor {
        user_id: Some(user.id),
        token_id: None,
        ip,
    };
    let token = state
        .db
        .create_token(
            &actor,
            &NewToken {
                user_id: user.id,
                name: name.to_string(),
                hash: sha256(secret.as_bytes()),
                prefix: secret[..TOKEN_PREFIX.len() + 6].to_string(),
                scopes: request.scopes.clone(),
                namespaces: request.namespaces.clone(),
                expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: secret,
            info: views::token(&token),
        }),
    ))
}

/// The user creating a token: by HTTP Basic credentials or by session cookie.
async fn token_creator(
    state: &AppState,
    address: ClientAddress,
    headers: &HeaderMap,
) -> ApiResult<aerie_db::User> {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(basic) = authorization.and_then(|value| value.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                ApiError::unauthorized("auth_malformed", "malformed Basic credentials")
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            ApiError::unauthorized("auth_malformed", "malformed Basic credentials")
        })?;
        return check_credentials(state, address, username, password.to_string()).await;
    }
    if authorization.is_some() {
        return Err(ApiError::forbidden(
            "token_cannot_create_tokens",
            "create tokens with your user name and password or a browser session, not with a token",
        ));
    }
    match session_user(state, headers, &Method::POST).await? {
        Some((_, user)) => Ok(user),
        None => Err(ApiError::unauthorized(
            "auth_required",
            "create tokens with HTTP Basic credentials or a browser session",
        )),
    }
}

/// The caller's tokens, newest first.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    let user = caller.user()?;
    let tokens = state.db.tokens_of(user.id).await?;
    Ok(Json(tokens.iter().map(views::token).collect()))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let user = caller.user()?;
    state
        .db
        .revoke_token(&caller.actor(), user.id, id)
        .await
        .map_err(|err| match err {
            aerie_db::DbError::NotFound(_) => {
                ApiError::not_found("token_not_found", format!("you have no token {id}"))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
