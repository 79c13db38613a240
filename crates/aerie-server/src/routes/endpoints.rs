//! Plugin endpoints, on the plugin origin: `{origin of SPACE}/{namespace}/{name}/{path}` to
//! the plugin's `wasi:http` handler (see [`crate::plugin_origin`] for why each space has an
//! origin of its own).
//!
//! A request goes: the raw path checked and normalised ([`PluginPath`]) → the caller, from the
//! credentials Aerie accepts here (a space or API token in `Authorization`, or the origin's own
//! cookie; an Aerie token that does not authenticate is refused whatever the path) → the space
//! and the plugin → the route, matched on the normalised raw path → its guard → the
//! installation's rate limit → the plugin. A caller with no role in the space gets, for every
//! path and method, exactly the answer a plugin that is not there gives, unless a public route
//! matches. The request reaches the plugin without any Aerie credential or reserved cookie and
//! without the caller's `X-Aerie-*` headers; a guarded route's request carries `X-Aerie-User`
//! and `X-Aerie-Role`, set here. The plugin's response loses the headers that would let it act
//! on the browser beyond its origin (Aerie's cookies, cookies for other hosts,
//! `Clear-Site-Data`, `Refresh`, `Alt-Svc`) and gains `X-Content-Type-Options: nosniff`.
//!
//! In a local space (`aerie run`, `aerie dev`) `viewer` and `member` routes need a signed-in
//! user and `admin` and `owner` routes an administrator.
//!
//! On the API's origin, `/s/{space}/...` only redirects to the plugin origin, through
//! [`credential`]'s ticket when a signed-in member follows it.

use aerie_core::manifest::{Guard, RouteMatch};
use aerie_core::name::{PluginName, check_name};
use aerie_db::{Space, SpaceRole, now_millis};
use aerie_host::CallError;
use axum::body::Body;
use axum::extract::{Extension, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;

use crate::auth::{Caller, TOKEN_PREFIX, bearer_caller, cookie, session_user};
use crate::error::ApiError;
use crate::plugin_origin::credential::{self, Kind};
use crate::plugin_origin::path::PluginPath;
use crate::state::AppState;

/// Largest request body a plugin endpoint accepts.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// The space whose plugin origin a request came to, set by the router's dispatch.
#[derive(Debug, Clone)]
pub struct OriginSpace(pub String);

/// Serves a request that came to a space's plugin origin.
pub async fn serve(
    State(state): State<AppState>,
    Extension(OriginSpace(space)): Extension<OriginSpace>,
    request: Request,
) -> Response {
    if request.uri().path() == credential::SESSION_PATH {
        return start_session(&state, &space, request).await;
    }
    match forward(&state, &space, request).await {
        Ok(response) | Err(response) => response,
    }
}

/// The answer for a plugin that does not run in the space, and for everything a caller
/// without a role in the space may not learn.
fn not_running(space: &str, plugin: &str) -> Response {
    ApiError::not_found(
        "plugin_not_running",
        format!("no plugin {plugin} runs in the space `{space}`"),
    )
    .into_response()
}

async fn forward(state: &AppState, space: &str, request: Request) -> Result<Response, Response> {
    let path = PluginPath::parse(request.uri().path())
        .map_err(|err| ApiError::bad_request("invalid_path", err.to_string()).into_response())?;
    let Some((namespace, name, inner)) = path.split_plugin() else {
        return Err(ApiError::not_found(
            "no_plugin",
            "name a plugin: /NAMESPACE/NAME/ followed by its path",
        )
        .into_response());
    };
    let label = format!("{namespace}/{name}");
    let hidden = || not_running(space, &label);
    let (mut parts, body) = request.into_parts();
    let mut caller = plugin_caller(state, space, &mut parts).await?;
    let plugin: PluginName = label.parse().map_err(|_| hidden())?;
    let host = state.plugins.running().ok_or_else(hidden)?;
    let stored = if state.plugins.is_local(space) {
        None
    } else {
        let stored = state
            .space(space)
            .await
            .map_err(IntoResponse::into_response)?
            .ok_or_else(hidden)?;
        Some(stored)
    };
    let host_space = match &stored {
        Some(stored) => crate::spaces::host_space(stored.id),
        None => space.to_string(),
    };
    let serving = host.serving(&host_space, &plugin).map_err(|_| hidden())?;
    let route = serving
        .manifest()
        .provides
        .route_for(parts.method.as_str(), inner.routed());
    let identity = match route {
        RouteMatch::Found(route) if route.guard == Guard::Public => None,
        _ => {
            // Past this point the caller learns what the space runs: only members may.
            caller = signed_in(state, caller)
                .await
                .map_err(IntoResponse::into_response)?;
            let role = role_in_space(state, &caller, stored.as_deref())
                .await
                .map_err(IntoResponse::into_response)?
                .ok_or_else(hidden)?;
            let route = match route {
                RouteMatch::Found(route) => route,
                RouteMatch::MethodNotAllowed => {
                    return Err(ApiError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        format!(
                            "{plugin} does not answer {} on {}",
                            parts.method,
                            inner.forwarded()
                        ),
                    )
                    .into_response());
                }
                RouteMatch::NotFound => {
                    return Err(ApiError::not_found(
                        "no_route",
                        format!("{plugin} declares no route for {}", inner.forwarded()),
                    )
                    .into_response());
                }
            };
            let needed = needed_role(route.guard);
            if !role.at_least(needed) {
                return Err(ApiError::forbidden(
                    "space_role_required",
                    format!(
                        "this route needs the {needed} role (or higher) in the space `{space}`"
                    ),
                )
                .into_response());
            }
            Some((caller_name(&caller), role))
        }
    };
    if let Some(retry_after) = state.plugin_rate_limited(&host_space, &plugin) {
        return Err(ApiError::too_many(
            "rate_limited",
            format!("{plugin} gets more requests than its rate limit; retry shortly"),
            retry_after,
        )
        .into_response());
    }

    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    parts.uri = format!("http://localhost{}{query}", inner.forwarded())
        .parse()
        .map_err(|_| {
            ApiError::bad_request("invalid_path", "the path is not a valid URI").into_response()
        })?;
    if let Some((user, role)) = identity {
        for (name, value) in [("x-aerie-user", user), ("x-aerie-role", role.to_string())] {
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
        Ok(response) => {
            let mut response = response
                .map(|body| Body::new(body.map_err(axum::Error::new)))
                .into_response();
            guard_response_headers(response.headers_mut());
            Ok(response)
        }
        Err(err) => Err(call_error(err)),
    }
}

/// The role a route's guard asks for.
fn needed_role(guard: Guard) -> SpaceRole {
    match guard {
        Guard::Public | Guard::Viewer => SpaceRole::Viewer,
        Guard::Member => SpaceRole::Member,
        Guard::Admin => SpaceRole::Admin,
        Guard::Owner => SpaceRole::Owner,
    }
}

/// The caller's role in a stored space, or in a local one (`None`): there a signed-in user is
/// a member and an administrator an owner.
async fn role_in_space(
    state: &AppState,
    caller: &Caller,
    space: Option<&Space>,
) -> Result<Option<SpaceRole>, ApiError> {
    match space {
        Some(space) => caller.space_role(state, space).await,
        None if caller.is_admin() => Ok(Some(SpaceRole::Owner)),
        None => Ok(caller.user.as_ref().map(|_| SpaceRole::Member)),
    }
}

/// Who the plugin is told the caller is on a guarded route.
fn caller_name(caller: &Caller) -> String {
    match (&caller.user, &caller.space_token) {
        (Some(user), _) => user.username.clone(),
        (None, Some(token)) => format!("token:{}", token.name),
        (None, None) => String::new(),
    }
}

/// Whether a cookie name is one of Aerie's own, which no plugin may read or set.
fn is_reserved_cookie(name: &str) -> bool {
    let name = name.trim();
    let bare = name
        .strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name);
    bare.get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aerie"))
}

/// Who calls on a plugin origin, from the credentials Aerie accepts there — an Aerie token in
/// `Authorization`, or the origin's own cookie — each removed from the request with the
/// caller's `X-Aerie-*` headers and every reserved cookie. An Aerie token that does not
/// authenticate is refused (401) before anything is looked up, so the answer is the same
/// whether or not the plugin is there. Any other `Authorization` is the plugin's.
async fn plugin_caller(
    state: &AppState,
    space: &str,
    parts: &mut Parts,
) -> Result<Caller, Response> {
    let ip = crate::auth::client_ip(state, &parts.extensions, &parts.headers);
    let aerie_token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| token.starts_with(TOKEN_PREFIX))
        .map(str::to_string);
    let origin_cookie = cookie(&parts.headers, origin_cookie_name(state));
    let safe_to_use_cookie = safe_cookie_use(&parts.headers, &parts.method);
    strip_credentials(&mut parts.headers, aerie_token.is_some());
    if let Some(token) = aerie_token {
        return bearer_caller(state, &token, ip)
            .await
            .map_err(IntoResponse::into_response);
    }
    let mut caller = Caller {
        user: None,
        token: None,
        space_token: None,
        ip,
        session: None,
    };
    // The session behind the cookie is looked up only when a guard asks who calls
    // ([`signed_in`]): public routes cost no database read.
    if let Some(text) = origin_cookie.filter(|_| safe_to_use_cookie) {
        let keyring = state.keys.keyring();
        caller.session = credential::verify(&keyring, Kind::Cookie, space, &text, now_millis())
            .map(|claims| claims.session_id);
    }
    Ok(caller)
}

/// `caller` with the user of its origin cookie's session, when it came with one that still
/// lives.
async fn signed_in(state: &AppState, mut caller: Caller) -> Result<Caller, ApiError> {
    if caller.user.is_none()
        && let Some(session) = caller.session
    {
        caller.user = state.db.session_user_by_id(session).await?;
    }
    Ok(caller)
}

/// The origin cookie's name: `__Host-` prefixed when the plugin origin is HTTPS.
fn origin_cookie_name(state: &AppState) -> &'static str {
    if state.plugin_origin.is_secure() {
        credential::SECURE_COOKIE
    } else {
        credential::COOKIE
    }
}

/// Whether the origin's cookie may stand for the caller: always for a safe method; for a
/// change only from a page of the same origin, so another space's page (same-site when the
/// plugin origins share a parent domain) cannot post to this one with its visitor's cookie.
fn safe_cookie_use(headers: &HeaderMap, method: &Method) -> bool {
    method.is_safe()
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| site == "same-origin")
}

/// Removes what no plugin may receive: an Aerie token in `Authorization`, every `X-Aerie-*`
/// header the caller sent, and Aerie's cookies (the plugin's own cookies stay).
fn strip_credentials(headers: &mut HeaderMap, aerie_authorization: bool) {
    if aerie_authorization {
        headers.remove(AUTHORIZATION);
    }
    let caller_set: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-aerie-"))
        .cloned()
        .collect();
    for name in caller_set {
        headers.remove(name);
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && !is_reserved_cookie(pair.split('=').next().unwrap_or(pair))
        })
        .map(str::to_string)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::try_from(kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

/// Removes from a plugin's response what would let it act on the browser beyond its own
/// origin, and adds `X-Content-Type-Options: nosniff`.
fn guard_response_headers(headers: &mut HeaderMap) {
    for name in ["clear-site-data", "refresh", "alt-svc"] {
        headers.remove(name);
    }
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    headers.remove(SET_COOKIE);
    for value in cookies {
        if allowed_set_cookie(&value) {
            headers.append(SET_COOKIE, value);
        }
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

/// Whether a plugin may set this cookie: not one of Aerie's names, and host-only (a `Domain`
/// attribute would reach the plugin origins of other spaces under the same parent).
fn allowed_set_cookie(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut pieces = text.split(';');
    let name = pieces
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(name, _)| name)
        .unwrap_or("");
    let has_domain = pieces.any(|attribute| {
        attribute
            .split('=')
            .next()
            .is_some_and(|key| key.trim().eq_ignore_ascii_case("domain"))
    });
    !name.trim().is_empty() && !is_reserved_cookie(name) && !has_domain
}

#[derive(serde::Deserialize)]
struct SessionQuery {
    ticket: String,
    #[serde(default)]
    to: String,
}

/// `GET {plugin origin}/.aerie/session?ticket=...&to=PATH`: trades a ticket from the API's
/// origin for this origin's cookie, then goes on to `PATH` on this origin.
async fn start_session(state: &AppState, space: &str, request: Request) -> Response {
    let Ok(axum::extract::Query(query)) =
        axum::extract::Query::<SessionQuery>::try_from_uri(request.uri())
    else {
        return ApiError::bad_request("invalid_ticket", "the link has no ticket").into_response();
    };
    let now = now_millis();
    let keyring = state.keys.keyring();
    let session = match credential::verify(&keyring, Kind::Ticket, space, &query.ticket, now) {
        Some(claims) => state
            .db
            .session_user_by_id(claims.session_id)
            .await
            .map(|user| user.map(|_| claims.session_id)),
        None => Ok(None),
    };
    let session_id = match session {
        Ok(Some(session_id)) => session_id,
        Ok(None) => {
            return ApiError::forbidden(
                "invalid_ticket",
                "the link has expired or is not for this space: open the page again from Aerie",
            )
            .into_response();
        }
        Err(err) => return ApiError::from(err).into_response(),
    };
    let value = credential::sign(&keyring, Kind::Cookie, space, session_id, now);
    let secure = if state.plugin_origin.is_secure() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        origin_cookie_name(state),
        Kind::Cookie.lifetime_ms() / 1000
    );
    // Only a path on this origin: never another site.
    let to = if query.to.starts_with('/') && !query.to.starts_with("//") && !query.to.contains('\\')
    {
        query.to
    } else {
        "/".to_string()
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (SET_COOKIE, cookie),
        (LOCATION, to),
        (CACHE_CONTROL, "no-store".to_string()),
        (REFERRER_POLICY, "no-referrer".to_string()),
    ] {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => {
                return ApiError::bad_request("invalid_ticket", "the link's path is not valid")
                    .into_response();
            }
        }
    }
    response
}

/// `/s/{space}/...` on the API's origin: a redirect to the same path on the space's plugin
/// origin. A signed-in user with a role in the space following it with `GET` goes through
/// the plugin origin's session start with a ticket, so guarded pages open without signing in
/// there; everyone else is sent straight on. Whether the space or plugin exists changes
/// nothing here.
pub async fn to_plugin_origin(State(state): State<AppState>, request: Request) -> Response {
    let raw = request.uri().path();
    let rest = raw.strip_prefix("/s/").unwrap_or("");
    let (space, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if check_name("space", space).is_err() {
        return ApiError::not_found("space_not_found", format!("there is no space `{space}`"))
            .into_response();
    }
    let target = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let origin = state.plugin_origin.url(space);
    let mut location = format!("{origin}{target}");
    if matches!(*request.method(), Method::GET | Method::HEAD)
        && let Ok(Some((session_id, user))) =
            session_user(&state, request.headers(), request.method()).await
        && member_of(&state, user, space).await
    {
        let ticket = credential::sign(
            &state.keys.keyring(),
            Kind::Ticket,
            space,
            session_id,
            now_millis(),
        );
        let query = serde_urlencoded::to_string([("ticket", ticket.as_str()), ("to", &target)])
            .unwrap_or_default();
        location = format!("{origin}{}?{query}", credential::SESSION_PATH);
    }
    match HeaderValue::try_from(location) {
        Ok(location) => {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            response.headers_mut().insert(LOCATION, location);
            response
                .headers_mut()
                .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(_) => ApiError::bad_request("invalid_path", "the path is not valid").into_response(),
    }
}

/// Whether a signed-in `user` has a role in `space` (any user, in a local space).
async fn member_of(state: &AppState, user: aerie_db::User, space: &str) -> bool {
    if state.plugins.is_local(space) {
        return true;
    }
    let Ok(Some(stored)) = state.space(space).await else {
        return false;
    };
    let caller = Caller {
        user: Some(user),
        token: None,
        space_token: None,
        ip: None,
        session: None,
    };
    matches!(caller.space_role(state, &stored).await, Ok(Some(_)))
}

/// A failed call, as the client sees it: the plugin is an upstream of this server.
pub fn call_error(err: CallError) -> Response {
    let status = match &err {
        CallError::NotRunning(_) | CallError::NotExported { .. } => StatusCode::NOT_FOUND,
        CallError::BreakerOpen { .. } | CallError::Host { .. } | CallError::SpaceBusy { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        CallError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        CallError::BadRequest { .. } | CallError::UnknownService { .. } => StatusCode::BAD_REQUEST,
        CallError::MemoryLimit { .. }
        | CallError::ResponseTooLarge { .. }
        | CallError::Trap { .. }
        | CallError::Failed { .. } => StatusCode::BAD_GATEWAY,
    };
    let retry_after = match &err {
        CallError::BreakerOpen { retry_after, .. } => Some(*retry_after),
        CallError::SpaceBusy { .. } => Some(std::time::Duration::from_secs(1)),
        _ => None,
    };
    // What went wrong inside the plugin (a trap's backtrace, its own error text) is for the
    // log, where the call's failure is already written; the client gets the kind of failure.
    let message = match &err {
        CallError::Trap { plugin, .. } => {
            format!("{plugin} crashed; the details are in the server's log")
        }
        CallError::Failed { plugin, .. } => {
            format!("{plugin} failed; the details are in the server's log")
        }
        CallError::Host { plugin, .. } => {
            format!("{plugin} could not be started now; try again shortly")
        }
        other => other.to_string(),
    };
    let error = ApiError::new(status, err.code(), message);
    match retry_after {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aerie_cookies_are_reserved_whatever_their_prefix_or_case() {
        for name in [
            "aerie_session",
            "__Host-aerie_session",
            "__Secure-aerie_plugin",
            "AERIE_x",
            " aerie",
        ] {
            assert!(is_reserved_cookie(name), "{name}");
        }
        for name in ["session", "__Host-app", "aeri"] {
            assert!(!is_reserved_cookie(name), "{name}");
        }
    }

    #[test]
    fn a_plugin_response_cannot_set_aerie_cookies_or_cookies_for_other_hosts() {
        let mut headers = HeaderMap::new();
        for cookie in [
            "aerie_session=x; Path=/api",
            "__Host-aerie_session=x; Secure; Path=/",
            "mine=1; Path=/; HttpOnly",
            "wide=1; Domain=plugins.example.com",
            "wide2=1; path=/; DOMAIN=.example.com",
        ] {
            headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        }
        for name in ["clear-site-data", "refresh", "alt-svc"] {
            headers.insert(name, HeaderValue::from_static("x"));
        }
        headers.insert("x-content-type-options", HeaderValue::from_static("sniff"));
        guard_response_headers(&mut headers);
        let cookies: Vec<&str> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["mine=1; Path=/; HttpOnly"]);
        for name in ["clear-site-data", "refresh", "alt-svc"] {
            assert!(!headers.contains_key(name), "{name}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }

    #[test]
    fn a_plugin_request_keeps_its_own_cookies_and_authorization_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("aerie_session=s; app=1; __Host-aerie_plugin=p"),
        );
        headers.append(COOKIE, HeaderValue::from_static("other=2"));
        headers.insert("x-aerie-role", HeaderValue::from_static("owner"));
        headers.insert("X-Aerie-Anything", HeaderValue::from_static("x"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer plugin-own"));
        strip_credentials(&mut headers, false);
        assert_eq!(headers[COOKIE], "app=1; other=2");
        assert!(!headers.contains_key("x-aerie-role"));
        assert!(!headers.contains_key("x-aerie-anything"));
        assert_eq!(headers[AUTHORIZATION], "Bearer plugin-own");
        strip_credentials(&mut headers, true);
        assert!(!headers.contains_key(AUTHORIZATION));
    }
}
