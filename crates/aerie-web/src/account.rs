//! Accounts in the browser: sign-up, sign-in and out, the password, the browser sessions
//! (each can be ended, or all at once), and the theme.

use aerie_api_types::{PasswordChangeRequest, SessionView, SignupRequest};
use aerie_server::AppState;
use aerie_server::auth::ClientAddress;
use aerie_server::error::ApiError;
use aerie_server::error::Path;
use aerie_server::routes::accounts;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use bytes::Bytes;

use crate::{
    Layout, OrPage, PageResult, THEME_COOKIE, Viewer, local_path, read_fields, render, see_other,
};

/// Where a form sends the visitor next: `?next=` of the page.
#[derive(Default, serde::Deserialize)]
struct Next {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
    next: String,
    error: Option<String>,
    signup_open: bool,
}

/// `GET /login`.
pub async fn login_form(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let next: Next = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    Ok(render(&LoginPage {
        layout: viewer.layout,
        username: String::new(),
        next: local_path(next.next.as_deref()).to_string(),
        error: None,
        signup_open: state.config.open_signup,
    }))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login`: signs in and goes on to `next`; a refusal shows the form again with why.
pub async fn login(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form: LoginForm = read_fields(&viewer, &body)?;
    let next = local_path(form.next.as_deref()).to_string();
    match accounts::sign_in(
        &state,
        ClientAddress(viewer.caller.ip),
        &headers,
        &form.username,
        form.password,
    )
    .await
    {
        Ok((_, cookie)) => Ok(with_cookie(see_other(&next), cookie)),
        Err(err) => Ok(crate::refused(
            &err,
            render(&LoginPage {
                layout: viewer.layout,
                username: form.username,
                next,
                error: Some(crate::sentence(&err)),
                signup_open: state.config.open_signup,
            }),
        )),
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    username: String,
    email: String,
    error: Option<String>,
    open: bool,
}

/// `GET /signup`.
pub async fn signup_form(viewer: Viewer, State(state): State<AppState>) -> Response {
    render(&SignupPage {
        layout: viewer.layout,
        username: String::new(),
        email: String::new(),
        error: None,
        open: state.config.open_signup,
    })
}

#[derive(serde::Deserialize)]
struct SignupForm {
    username: String,
    password: String,
    #[serde(default)]
    email: String,
}

/// `POST /signup`: creates the account and signs it in.
pub async fn signup(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form: SignupForm = read_fields(&viewer, &body)?;
    let email = form.email.trim().to_string();
    let created = accounts::create_account(
        &state,
        &viewer.caller,
        SignupRequest {
            username: form.username.clone(),
            password: form.password.clone(),
            email: (!email.is_empty()).then(|| email.clone()),
        },
    )
    .await;
    let signed_in = match created {
        Ok(_) => {
            accounts::sign_in(
                &state,
                ClientAddress(viewer.caller.ip),
                &headers,
                &form.username,
                form.password,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match signed_in {
        Ok((_, cookie)) => Ok(with_cookie(see_other("/account"), cookie)),
        Err(err) => Ok(crate::refused(
            &err,
            render(&SignupPage {
                layout: viewer.layout,
                username: form.username,
                email,
                error: Some(crate::sentence(&err)),
                open: state.config.open_signup,
            }),
        )),
    }
}

/// `POST /logout`: ends this browser session.
pub async fn logout(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> PageResult {
    let cookie = accounts::sign_out(&state, &headers)
        .await
        .or_page(&viewer)?;
    Ok(with_cookie(see_other("/"), cookie))
}

/// A session as the account page lists it.
pub struct SessionRow {
    pub session: SessionView,
    pub browser: String,
    pub since: String,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    username: String,
    since: String,
    namespaces: Vec<(String, String)>,
    sessions: Vec<SessionRow>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct Notice {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /account`: who you are, your namespaces, your password and your sessions.
pub async fn account(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let notice: Notice = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    let notice = match notice.done.as_deref() {
        Some("password") => Some("Your password is changed; your other sessions were ended."),
        Some("session") => Some("The session is ended."),
        _ => None,
    };
    account_page(viewer, state, notice, None).await
}

async fn account_page(
    viewer: Viewer,
    state: AppState,
    notice: Option<&'static str>,
    error: Option<String>,
) -> PageResult {
    let me = accounts::me(State(state.clone()), viewer.caller.clone())
        .await
        .or_page(&viewer)?
        .0;
    let sessions = accounts::sessions(State(state), viewer.caller.clone())
        .await
        .or_page(&viewer)?
        .0;
    Ok(render(&AccountPage {
        username: me.user.username,
        since: crate::day(&me.user.created_at).to_string(),
        namespaces: me
            .namespaces
            .into_iter()
            .map(|membership| (membership.namespace, membership.role))
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|session| SessionRow {
                browser: session
                    .user_agent
                    .as_deref()
                    .map(browser_name)
                    .unwrap_or("Unknown browser")
                    .to_string(),
                since: minute(&session.created_at),
                last_seen: session
                    .last_seen_at
                    .as_deref()
                    .map(minute)
                    .unwrap_or_default(),
                session,
            })
            .collect(),
        notice,
        error,
        layout: viewer.layout,
    }))
}

/// An RFC 3339 time to the minute, `2026-11-29 14:05`, as people read it.
fn minute(time: &str) -> String {
    time.get(..16).unwrap_or(time).replacen('T', " ", 1)
}

/// A browser's common name from its user agent, for a person to recognise a session by.
fn browser_name(agent: &str) -> &'static str {
    // Order matters: Edge and Chromium-based browsers also name Chrome, Chrome names Safari.
    [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("aerie/", "Aerie command line"),
    ]
    .into_iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| name)
    .unwrap_or("Other browser")
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`: changes the password (the current one checked); every other
/// session ends.
pub async fn change_password(
    viewer: Viewer,
    State(state): State<AppState>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: PasswordForm = read_fields(&viewer, &body)?;
    let changed = accounts::set_password(
        &state,
        &viewer.caller,
        ClientAddress(viewer.caller.ip),
        PasswordChangeRequest {
            current_password: form.current_password,
            new_password: form.new_password,
        },
    )
    .await;
    match changed {
        Ok(()) => Ok(see_other("/account?done=password")),
        Err(err) => {
            let page = account_page(viewer, state, None, Some(crate::sentence(&err))).await?;
            Ok(crate::refused(&err, page))
        }
    }
}

/// `POST /account/sessions/{id}/end`: ends one of the viewer's sessions.
pub async fn end_session(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    viewer.require_user()?;
    let id = viewer.id(&id, "A session's id")?;
    accounts::end_session(State(state), viewer.caller.clone(), Path(id))
        .await
        .or_page(&viewer)?;
    Ok(see_other("/account?done=session"))
}

/// `POST /account/sessions/end-all`: signs out everywhere, here too.
pub async fn end_all_sessions(viewer: Viewer, State(state): State<AppState>) -> PageResult {
    viewer.require_user()?;
    let cookie = accounts::sign_out_everywhere(&state, &viewer.caller)
        .await
        .or_page(&viewer)?;
    Ok(with_cookie(see_other("/"), cookie))
}

#[derive(serde::Deserialize)]
struct ThemeForm {
    theme: String,
    #[serde(default)]
    back: Option<String>,
}

/// `POST /theme`: keeps the chosen theme (`light`, `dark`, or `system` to follow the
/// system's) in a cookie and goes back to the page.
pub async fn set_theme(viewer: Viewer, body: Bytes) -> PageResult {
    let form: ThemeForm = read_fields(&viewer, &body)?;
    let cookie = match form.theme.as_str() {
        "light" | "dark" => format!(
            "{THEME_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            form.theme
        ),
        "system" => format!("{THEME_COOKIE}=; Path=/; SameSite=Lax; Max-Age=0"),
        _ => {
            return Err(viewer.error(ApiError::bad_request(
                "invalid_theme",
                "The theme is `light`, `dark` or `system`.",
            )));
        }
    };
    let cookie =
        HeaderValue::from_str(&cookie).map_err(|err| viewer.error(ApiError::internal(err)))?;
    Ok(with_cookie(
        see_other(local_path(form.back.as_deref())),
        cookie,
    ))
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_named_by_their_browser() {
        assert_eq!(
            browser_name(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"
            ),
            "Headless Chrome"
        );
        assert_eq!(
            browser_name(
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0"
            ),
            "Edge"
        );
        assert_eq!(
            browser_name("Mozilla/5.0 (X11; rv:120.0) Gecko/20100101 Firefox/120.0"),
            "Firefox"
        );
        assert_eq!(browser_name("curl/8.5.0"), "curl");
    }

    #[test]
    fn messages_read_as_sentences() {
        let err = ApiError::unauthorized("bad_credentials", "wrong user name or password");
        assert_eq!(crate::sentence(&err), "Wrong user name or password.");
    }
}
