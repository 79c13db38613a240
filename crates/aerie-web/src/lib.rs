//! Aerie's web UI: server-rendered pages beside the API on its origin.
//!
//! Every page is HTML from a template checked at compile time (askama), readable and usable
//! without JavaScript: forms post, and the server answers with a redirect (`303`) or the form
//! again with its errors. One small first-party script ([`assets`]) only makes search answer
//! as you type. Pages call the server's services, the same functions the API's handlers are
//! or call, so the UI and the API never disagree; no SQL here.
//!
//! What a page may do is fixed by its headers ([`security_headers`]): no inline script or
//! style, nothing from another origin, never framed. Forms that change something pass the
//! server's same-origin check ([`aerie_server::auth::same_origin_write`]) whether or not the
//! visitor is signed in.

use aerie_server::AppState;
use aerie_server::auth::Caller;
use aerie_server::error::ApiError;
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

mod access;
mod account;
mod admin;
pub mod assets;
mod catalogue;
mod changes;
mod chart;
mod install;
mod plugin;
mod publisher;
mod schema_form;
mod spaces;

/// The web UI's routes, for [`aerie_server::Server::start_with_pages`].
pub fn pages(state: AppState) -> Router<AppState> {
    // An uploaded package may be as large as a published one, with room for the form around it.
    let upload_limit = usize::try_from(state.config.max_package_size)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route(
            "/publish/upload",
            get(publisher::upload_form)
                .post(publisher::upload)
                .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route("/", get(catalogue::home))
        .route("/search", get(catalogue::search))
        .route("/plugins/{namespace}/{name}", get(plugin::overview))
        .route("/plugins/{namespace}/{name}/{tab}", get(plugin::tab))
        .route(
            "/plugins/{namespace}/{name}/reviews",
            get(plugin::reviews).post(plugin::write_review),
        )
        .route(
            "/plugins/{namespace}/{name}/reviews/delete",
            post(plugin::delete_review),
        )
        .route("/login", get(account::login_form).post(account::login))
        .route("/signup", get(account::signup_form).post(account::signup))
        .route("/logout", post(account::logout))
        .route("/account", get(account::account))
        .route("/account/password", post(account::change_password))
        .route("/account/sessions/{id}/end", post(account::end_session))
        .route("/account/sessions/end-all", post(account::end_all_sessions))
        .route("/theme", post(account::set_theme))
        .route("/publish", get(publisher::dashboard))
        .route("/publish/{namespace}/members", post(publisher::set_member))
        .route("/publish/{namespace}/keys", post(publisher::add_key))
        .route(
            "/publish/{namespace}/keys/{key}/revoke",
            post(publisher::revoke_key),
        )
        .route(
            "/publish/{namespace}/{name}/{version}/{action}",
            post(publisher::act),
        )
        .route("/admin", get(admin::queue))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users", get(admin::users))
        .route(
            "/admin/certifications/{namespace}/{name}/{version}",
            post(admin::step),
        )
        .route("/spaces", get(spaces::list).post(spaces::create))
        .route("/spaces/{space}", get(spaces::dashboard))
        .route("/spaces/{space}/update-all", post(spaces::update_all))
        .route("/spaces/{space}/access", get(access::space))
        .route("/spaces/{space}/members", post(access::set_member))
        .route("/spaces/{space}/policy", post(access::set_policy))
        .route("/spaces/{space}/tokens", post(access::create_space_token))
        .route(
            "/spaces/{space}/tokens/{id}/revoke",
            post(access::revoke_space_token),
        )
        .route(
            "/account/tokens",
            get(access::tokens).post(access::create_token),
        )
        .route("/account/tokens/{id}/revoke", post(access::revoke_token))
        .route(
            "/install",
            get(install::install_form).post(install::install),
        )
        .route(
            "/spaces/{space}/plugins/{namespace}/{name}",
            get(spaces::installation),
        )
        .route(
            "/spaces/{space}/plugins/{namespace}/{name}/config",
            post(spaces::set_config),
        )
        .route(
            "/spaces/{space}/plugins/{namespace}/{name}/secrets",
            post(spaces::set_secret),
        )
        .route(
            "/spaces/{space}/plugins/{namespace}/{name}/{action}",
            post(spaces::act),
        )
        .fallback(not_found)
        .layer(axum::Extension(std::sync::Arc::new(
            catalogue::HomeCache::default(),
        )))
        .layer(axum::middleware::map_response(security_headers))
        .route("/static/{file}", get(assets::serve))
        // Pages, styles and scripts are text: gzip takes a first visit to about a quarter.
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

/// The headers every page carries: a content security policy that allows only this origin's
/// own script and style files (no inline code, no `eval`, nothing from elsewhere), forbids
/// framing, and sends no referrer to other sites; pages hold personal data, so caches keep
/// none.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A page that frames a plugin's page sets its own policy, naming that one origin.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    response
}

/// What every page may load and do: this origin's script and style files, nothing inline,
/// nothing from elsewhere, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// [`CONTENT_SECURITY_POLICY`] for a page that frames pages of one plugin origin.
fn policy_framing(origin: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("{CONTENT_SECURITY_POLICY}; frame-src {origin}")).ok()
}

/// A response given instead of the page asked for: an error page, or a redirect to sign in.
/// Boxed, since a whole response is large and most results are not refusals.
pub struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Refusal {
        Refusal(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page handler answers.
pub type PageResult = Result<Response, Refusal>;

/// The page shown for a path nothing serves; the API's paths answer in its error envelope.
async fn not_found(viewer: Viewer, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return aerie_server::no_route().into_response();
    }
    viewer
        .error(ApiError::not_found(
            "no_route",
            "There is no page at this address.",
        ))
        .into_response()
}

/// The name of the cookie that keeps a visitor's chosen theme.
const THEME_COOKIE: &str = "aerie_theme";

/// Who is looking, and how they like the page: what every page's frame needs.
pub struct Viewer {
    /// The caller, anonymous or signed in.
    pub caller: Caller,
    /// The frame's data.
    pub layout: Layout,
}

/// What the frame around every page shows.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The signed-in user's name.
    pub user: Option<String>,
    /// Whether the user is a server administrator.
    pub is_admin: bool,
    /// `light` or `dark` when chosen; the system's choice otherwise.
    pub theme: Option<&'static str>,
    /// The page's own path and query, where a theme change or sign-in comes back to.
    pub here: String,
    /// The search words, kept in the header's search box.
    pub query: String,
    /// The stylesheet's URL.
    pub css: &'static str,
    /// The script's URL.
    pub js: &'static str,
}

/// One choice of a select or a group of options.
pub struct Choice {
    /// What the form sends.
    pub value: &'static str,
    /// What people read.
    pub label: &'static str,
    /// Whether it is the one chosen now.
    pub chosen: bool,
}

impl Layout {
    /// The theme switch's choices.
    pub fn themes(&self) -> Vec<Choice> {
        [("system", "System"), ("light", "Light"), ("dark", "Dark")]
            .into_iter()
            .map(|(value, label)| Choice {
                value,
                label,
                chosen: self.theme.unwrap_or("system") == value,
            })
            .collect()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Viewer, Refusal> {
        let theme = match aerie_server::auth::cookie(&parts.headers, THEME_COOKIE).as_deref() {
            Some("light") => Some("light"),
            Some("dark") => Some("dark"),
            _ => None,
        };
        let mut layout = Layout {
            theme,
            here: parts
                .uri
                .path_and_query()
                .map(|path| path.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
            css: &assets::ASSETS.css.url,
            js: &assets::ASSETS.js.url,
            ..Layout::default()
        };
        // A form that changes something must come from one of this server's own pages,
        // signed in or not: no other site may sign a visitor in or out, or change a setting.
        if !aerie_server::auth::same_origin_write(&app.config, &parts.headers, &parts.method) {
            return Err(Refusal::from(error_page(
                &layout,
                ApiError::forbidden(
                    "csrf",
                    "This form was sent from another site. Go back to the page and send it again.",
                ),
            )));
        }
        let caller = match Caller::from_request_parts(parts, app).await {
            Ok(caller) => caller,
            Err(err) => return Err(Refusal::from(error_page(&layout, err))),
        };
        if let Ok(user) = caller.user() {
            layout.user = Some(user.username.clone());
            layout.is_admin = user.is_admin;
        }
        Ok(Viewer { caller, layout })
    }
}

impl Viewer {
    /// The error page for `error`, in this viewer's frame.
    pub fn error(&self, error: ApiError) -> Refusal {
        error_page(&self.layout, error).into()
    }

    /// A service's answer for this viewer — `call(state, caller)`, one of the API's handlers or
    /// the function it calls — or the error page in this viewer's frame.
    pub async fn call<T, Answer>(
        &self,
        state: &AppState,
        call: impl FnOnce(axum::extract::State<AppState>, Caller) -> Answer,
    ) -> Result<T, Refusal>
    where
        Answer: std::future::Future<Output = Result<aerie_server::error::Json<T>, ApiError>>,
    {
        call(axum::extract::State(state.clone()), self.caller.clone())
            .await
            .map(|json| json.0)
            .or_page(self)
    }

    /// `text` from a page's path as an id, or a 400 page saying `what` it is.
    pub fn id(&self, text: &str, what: &str) -> Result<i64, Refusal> {
        text.parse().map_err(|_| {
            self.error(ApiError::bad_request(
                "invalid_id",
                format!("{what} is a number."),
            ))
        })
    }

    /// Sends a visitor who is not signed in to the sign-in page, to come back here after.
    pub fn require_user(&self) -> Result<(), Refusal> {
        match self.layout.user {
            Some(_) => Ok(()),
            None => Err(
                Redirect::to(&format!("/login?next={}", form_encode(&self.layout.here)))
                    .into_response()
                    .into(),
            ),
        }
    }
}

/// The page for an error: its status, its stable code and its message.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: &'a Layout,
    status: u16,
    reason: &'a str,
    code: &'a str,
    message: &'a str,
}

fn error_page(layout: &Layout, error: ApiError) -> Response {
    let page = ErrorPage {
        layout,
        status: error.status.as_u16(),
        reason: error.status.canonical_reason().unwrap_or("Error"),
        code: error.code,
        message: &error.message,
    };
    refused(&error, render(&page))
}

/// `page` answered under `error`'s status, with its `Retry-After` when it has one: the error
/// page, or a form shown again with why it was refused.
fn refused(error: &ApiError, mut page: Response) -> Response {
    *page.status_mut() = error.status;
    if let Some(wait) = error.retry_after
        && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
    {
        page.headers_mut().insert(header::RETRY_AFTER, value);
    }
    page
}

/// A template rendered, or the plain statement that it could not be (a template that does
/// not render is a bug of this build, logged).
fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => ApiError::internal(format!("rendering a page failed: {err}")).into_response(),
    }
}

/// A service's result as a page: the value, or the error page in the viewer's frame.
trait OrPage<T> {
    fn or_page(self, viewer: &Viewer) -> Result<T, Refusal>;
}

impl<T> OrPage<T> for Result<T, ApiError> {
    fn or_page(self, viewer: &Viewer) -> Result<T, Refusal> {
        self.map_err(|err| viewer.error(err))
    }
}

/// Form fields (a body or a query string), read as `T`; fields that do not read are a 400 page.
fn read_fields<T: serde::de::DeserializeOwned>(viewer: &Viewer, body: &[u8]) -> Result<T, Refusal> {
    serde_urlencoded::from_bytes(body).map_err(|err| {
        viewer.error(ApiError::bad_request(
            "invalid_form",
            format!("The form's fields could not be read: {err}."),
        ))
    })
}

/// `text` encoded for a query string or form.
fn form_encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair[1..].to_string())
        .unwrap_or_default()
}

/// Where to send a visitor after a form: `next` when it is a path on this site, so a link
/// cannot send them elsewhere (`//evil.example`, `https://…`, `/\evil`), else `/`.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// `303 See Other` to `path`: what every form that worked answers.
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// An error's message as a sentence for a form.
fn sentence(err: &ApiError) -> String {
    let mut message = err.message.clone();
    if let Some(first) = message.get(..1) {
        let upper = first.to_uppercase();
        message.replace_range(..1, &upper);
    }
    if !message.ends_with('.') {
        message.push('.');
    }
    message
}

/// A number the way people read it: `1,234,567`.
fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// An RFC 3339 time as its date, `2026-11-29`.
fn day(time: &str) -> &str {
    time.get(..10).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed_after_a_form() {
        assert_eq!(local_path(Some("/plugins/acme/x")), "/plugins/acme/x");
        assert_eq!(local_path(Some("/search?q=a")), "/search?q=a");
        for hostile in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/\nLocation: x",
            "",
        ] {
            assert_eq!(local_path(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn messages_read_as_sentences() {
        let err = ApiError::unauthorized("bad_credentials", "wrong user name or password");
        assert_eq!(sentence(&err), "Wrong user name or password.");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn form_values_are_encoded() {
        assert_eq!(
            form_encode("/search?q=a b&x=1"),
            "%2Fsearch%3Fq%3Da+b%26x%3D1"
        );
    }
}

/// The pages' invariants, checked on the templates themselves: nothing inline that the
/// content security policy would have to allow, and raw HTML only where it was made safe
/// before it reached the template.
#[cfg(test)]
mod invariants {
    use std::path::Path;

    fn templates() -> Vec<(String, String)> {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut found: Vec<(String, String)> = std::fs::read_dir(&directory)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        found.sort();
        assert!(found.len() > 5, "the templates are where they were");
        found
    }

    #[test]
    fn no_template_has_inline_script_style_or_handlers() {
        for (name, text) in templates() {
            let lower = text.to_ascii_lowercase();
            for (index, _) in lower.match_indices("<script") {
                let tag = &lower[index..index + lower[index..].find('>').unwrap()];
                assert!(tag.contains(" src="), "{name}: an inline script: {tag}");
            }
            for forbidden in ["<style", " style=", "javascript:"] {
                assert!(!lower.contains(forbidden), "{name} has {forbidden}");
            }
            let handler = lower.split(|c: char| c.is_whitespace()).any(|word| {
                word.starts_with("on")
                    && word.contains('=')
                    && word[2..word.find('=').unwrap()]
                        .chars()
                        .all(|c| c.is_ascii_lowercase())
                    && word.len() > 3
            });
            assert!(!handler, "{name} has an event handler attribute");
        }
    }

    #[test]
    fn the_ui_reaches_no_database_but_through_the_services() {
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
        for forbidden in ["aerie-db", "sqlx"] {
            assert!(
                !manifest.contains(forbidden),
                "aerie-web depends on {forbidden}"
            );
        }
        for entry in std::fs::read_dir(crate_dir.join("src")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for forbidden in ["aerie_db", "sqlx", "state.db", ".db."] {
                let found = text
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("//"))
                    .any(|line| line.contains(forbidden) && !line.contains("forbidden"));
                assert!(!found, "{} uses {forbidden}", path.display());
            }
        }
    }

    #[test]
    fn raw_html_comes_only_from_the_sanitiser_the_escaper_or_the_chart() {
        // README HTML is cleaned by ammonia, review text is escaped character by character,
        // charts are drawn from numbers with their labels escaped.
        const ALLOWED: &[&str] = &[
            "html|safe",
            "review.text_html|safe",
            "daily.chart|safe",
            "stats.installations_chart|safe",
        ];
        for (name, text) in templates() {
            for (index, _) in text.match_indices("|safe") {
                let start = text[..index].rfind("{{").unwrap() + 2;
                let expression = text[start..index + 5].trim();
                assert!(
                    ALLOWED.contains(&expression),
                    "{name}: `{expression}` is not known to be safe"
                );
            }
        }
    }
}
