//! Plugin endpoints: `/s/{space}/{namespace}/{name}/{*path}` to the plugin's `wasi:http`
//! handler, after the route's guard and the installation's rate limit.
//!
//! A `public` route is open to anyone; a guarded route needs that role (or higher) in the
//! space, and a caller with no role in the space gets the same 404 as for a plugin that is
//! not there. In a local space (`aerie run`, `aerie dev`) `viewer` and `member` routes need a
//! signed-in user and `admin` and `owner` routes an administrator. A request to a guarded
//! route reaches the plugin without the caller's cookie or `Authorization` header (the plugin
//! gets `X-Aerie-User` and `X-Aerie-Role` instead); a public route's request goes through as
//! sent, minus the cookie.

use aerie_core::manifest::{Guard, RouteMatch};
use aerie_core::name::PluginName;
use aerie_host::CallError;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use aerie_db::{Space, SpaceRole};

use axum::extract::FromRequestParts as _;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Largest request body a plugin endpoint accepts.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// Serves the root of a plugin (`/s/{space}/{namespace}/{name}`).
pub async fn serve_root(
    state: State<AppState>,
    Path((space, namespace, name)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve(state, space, namespace, name, String::new(), request).await
}

/// Serves a path within a plugin.
pub async fn serve_path(
    state: State<AppState>,
    Path((space, namespace, name, path)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    serve(state, space, namespace, name, path, request).await
}

async fn serve(
    State(state): State<AppState>,
    space: String,
    namespace: String,
    name: String,
    path: String,
    request: Request,
) -> Response {
    match forward(&state, &space, &namespace, &name, &path, request).await {
        Ok(response) => response,
        Err(response) => response,
    }
}

async fn forward(
    state: &AppState,
    space: &str,
    namespace: &str,
    name: &str,
    path: &str,
    request: Request,
) -> Result<Response, Response> {
    let not_running = || {
        ApiError::not_found(
            "plugin_not_running",
            format!("no plugin {namespace}/{name} runs in the space `{space}`"),
        )
        .into_response()
    };
    let plugin: PluginName = format!("{namespace}/{name}")
        .parse()
        .map_err(|_| not_running())?;
    let host = state.plugins.running().ok_or_else(not_running)?;
    let stored = if state.plugins.is_local(space) {
        None
    } else {
        let stored = state
            .space(space)
            .await
            .map_err(IntoResponse::into_response)?
            .ok_or_else(not_running)?;
        Some(stored)
    };
    let host_space = match &stored {
        Some(stored) => crate::spaces::host_space(stored.id),
        None => space.to_string(),
    };
    let serving = host
        .serving(&host_space, &plugin)
        .map_err(|_| not_running())?;
    let inner_path = format!("/{path}");
    let route = match serving
        .manifest()
        .provides
        .route_for(request.method().as_str(), &inner_path)
    {
        RouteMatch::Found(route) => route,
        RouteMatch::MethodNotAllowed => {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{plugin} does not answer {} on {inner_path}",
                    request.method()
                ),
            )
            .into_response());
        }
        RouteMatch::NotFound => {
            return Err(ApiError::not_found(
                "no_route",
                format!("{plugin} declares no route for {inner_path}"),
            )
            .into_response());
        }
    };
    let (mut parts, body) = request.into_parts();
    // On a public route the caller's credentials are the plugin's business (it may take its
    // own bearer tokens); only a guarded route asks who the caller is.
    let identity = if route.guard == Guard::Public {
        None
    } else {
        let caller = Caller::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match &stored {
            Some(stored) => space_guard(state, &caller, stored, route.guard)
                .await
                .map_err(|err| match err {
                    GuardError::Hidden => not_running(),
                    GuardError::Api(err) => err.into_response(),
                })?,
            None => guard(&caller, route.guard).map_err(IntoResponse::into_response)?,
        }
    };
    if let Some(retry_after) = state.plugin_rate_limited(&host_space, &plugin) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{plugin} gets more requests than its rate limit; retry shortly"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        return Err(response);
    }

    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    parts.uri = format!("http://localhost{inner_path}{query}")
        .parse()
        .map_err(|_| {
            ApiError::bad_request("invalid_path", "the path is not a valid URI").into_response()
        })?;
    parts.headers.remove(COOKIE);
    // Callers cannot speak for themselves through these.
    parts.headers.remove("x-aerie-user");
    parts.headers.remove("x-aerie-role");
    if let Some((user, role)) = identity {
        parts.headers.remove(AUTHORIZATION);
        for (name, value) in [("x-aerie-user", user), ("x-aerie-role", role)] {
            if let Ok(value) = HeaderValue::try_from(value) {
                parts.headers.insert(name, value);
            }
        }
    }
    let body = http_body_util::Limited::new(body, MAX_REQUEST_BODY).map_err(|err| {
        aerie_host::HttpError::InternalError(Some(format!("reading the request body: {err}")))
    });
    let request = axum::http::Request::from_parts(parts, body);
    match serving.handle_http(request).await {
        Ok(response) => Ok(response
            .map(|body| Body::new(body.map_err(axum::Error::new)))
            .into_response()),
        Err(err) => Err(call_error(err)),
    }
}

/// Who the plugin is told the caller is on a guarded route: a name and a role.
type Identity = Option<(String, String)>;

/// Checks a local space's route guard.
fn guard(caller: &Caller, guard: Guard) -> ApiResult<Identity> {
    match guard {
        Guard::Public => Ok(None),
        Guard::Viewer | Guard::Member => {
            Ok(Some((caller.user()?.username.clone(), "member".into())))
        }
        Guard::Admin | Guard::Owner => Ok(Some((
            caller.require_admin()?.username.clone(),
            "owner".into(),
        ))),
    }
}

/// Why a stored space's guard refused.
enum GuardError {
    /// The caller has no role in the space: answered as if the plugin were not there.
    Hidden,
    /// Anything else.
    Api(ApiError),
}

/// Checks a stored space's route guard against the caller's role there.
async fn space_guard(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    guard: Guard,
) -> Result<Identity, GuardError> {
    let needed = match guard {
        Guard::Public => return Ok(None),
        Guard::Viewer => SpaceRole::Viewer,
        Guard::Member => SpaceRole::Member,
        Guard::Admin => SpaceRole::Admin,
        Guard::Owner => SpaceRole::Owner,
    };
    let role = caller
        .space_role(state, space)
        .await
        .map_err(GuardError::Api)?
        .ok_or(GuardError::Hidden)?;
    if !role.at_least(needed) {
        return Err(GuardError::Api(ApiError::forbidden(
            "space_role_required",
            format!(
                "this route needs the {needed} role (or higher) in the space `{}`",
                space.name
            ),
        )));
    }
    let name = match (&caller.user, &caller.space_token) {
        (Some(user), _) => user.username.clone(),
        (None, Some(token)) => format!("token:{}", token.name),
        (None, None) => return Err(GuardError::Hidden),
    };
    Ok(Some((name, role.as_str().to_string())))
}

/// A failed call, as the client sees it: the plugin is an upstream of this server.
pub fn call_error(err: CallError) -> Response {
    let status = match &err {
        CallError::NotRunning(_) | CallError::NotExported { .. } => StatusCode::NOT_FOUND,
        CallError::BreakerOpen { .. } | CallError::Host { .. } => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        CallError::BadRequest { .. } | CallError::UnknownService { .. } => StatusCode::BAD_REQUEST,
        CallError::MemoryLimit { .. }
        | CallError::ResponseTooLarge { .. }
        | CallError::Trap { .. }
        | CallError::Failed { .. } => StatusCode::BAD_GATEWAY,
    };
    let retry_after = match &err {
        CallError::BreakerOpen { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    let mut response = ApiError::new(status, err.code(), err.to_string()).into_response();
    if let Some(retry_after) = retry_after {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}
