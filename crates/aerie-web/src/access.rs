//! Who may act, in the browser: a space's members and tokens (its admins and owners change
//! them), and the viewer's own API tokens. A new token's secret is shown once, on a page no
//! cache keeps.

use aerie_api_types::{
    CreateSpaceTokenRequest, CreateTokenRequest, MemberView, SetSpaceMemberRequest, SpaceTokenView,
    SpaceView, TokenView, UpdateSpaceRequest,
};
use aerie_server::AppState;
use aerie_server::error::Path;
use aerie_server::error::{ApiError, Json};
use aerie_server::routes::{accounts, spaces};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use bytes::Bytes;

use crate::{Layout, OrPage, PageResult, Viewer, read_fields, render, see_other};

/// The roles a space member or token may hold, strongest first.
const ROLES: &[&str] = &["owner", "admin", "member", "viewer"];

/// The scopes an API token may carry, with what each allows.
const SCOPES: &[(&str, &str)] = &[
    ("publish", "publish versions"),
    ("yank", "yank and deprecate versions"),
    ("owner", "manage your namespaces' keys and policies"),
    ("read-private", "read private namespaces"),
    ("download", "download from private namespaces"),
    ("spaces", "act in your spaces"),
    ("admin", "administer the server (administrators)"),
];

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    layout: Layout,
    space: SpaceView,
    admin: bool,
    members: Vec<MemberView>,
    tokens: Vec<SpaceTokenView>,
    roles: &'static [&'static str],
}

/// `GET /spaces/{space}/access`: the space's members and tokens.
pub async fn space(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> PageResult {
    viewer.require_user()?;
    let space = viewer
        .call(&state, |state, caller| {
            spaces::get(state, caller, Path(name.clone()))
        })
        .await?;
    let admin = matches!(space.role.as_str(), "owner" | "admin");
    let members = viewer
        .call(&state, |state, caller| {
            spaces::members(state, caller, Path(name.clone()))
        })
        .await?;
    // Tokens are for the space's admins to see.
    let tokens = if admin {
        spaces::tokens(State(state), viewer.caller.clone(), Path(name))
            .await
            .or_page(&viewer)?
            .0
    } else {
        Vec::new()
    };
    Ok(render(&AccessPage {
        layout: viewer.layout,
        space,
        admin,
        members,
        tokens,
        roles: ROLES,
    }))
}

/// A member's user name and new role (empty to remove them), for a space or a namespace.
#[derive(serde::Deserialize)]
pub(crate) struct MemberForm {
    pub username: String,
    #[serde(default)]
    pub role: String,
}

/// `POST /spaces/{space}/members`: adds a member or changes their role; an empty role
/// removes them.
pub async fn set_member(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: MemberForm = read_fields(&viewer, &body)?;
    let path = Path((name.clone(), form.username.trim().to_string()));
    let done = if form.role.is_empty() {
        spaces::remove_member(State(state), viewer.caller.clone(), path).await
    } else {
        spaces::set_member(
            State(state),
            viewer.caller.clone(),
            path,
            Json(SetSpaceMemberRequest { role: form.role }),
        )
        .await
    };
    done.or_page(&viewer)?;
    Ok(see_other(&format!("/spaces/{name}/access")))
}

#[derive(Default, serde::Deserialize)]
struct PolicyForm {
    #[serde(default)]
    require_certified: Option<String>,
    #[serde(default)]
    require_signed: Option<String>,
}

/// `POST /spaces/{space}/policy`: what the space may install — only certified versions, only
/// versions signed by their publisher (its owners).
pub async fn set_policy(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: PolicyForm = read_fields(&viewer, &body)?;
    let request = UpdateSpaceRequest {
        name: None,
        require_certified: Some(form.require_certified.is_some()),
        require_signed: Some(form.require_signed.is_some()),
    };
    viewer
        .call(&state, |state, caller| {
            spaces::change(state, caller, Path(name.clone()), Json(request))
        })
        .await?;
    Ok(see_other(&format!("/spaces/{name}/access")))
}

#[derive(serde::Deserialize)]
struct SpaceTokenForm {
    name: String,
    role: String,
    #[serde(default)]
    days: String,
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    layout: Layout,
    name: String,
    token: String,
    back: String,
}

/// The page that shows a new token's secret, once: no cache keeps it.
fn token_page(
    layout: Layout,
    name: String,
    token: String,
    back: String,
) -> axum::response::Response {
    let mut response = render(&TokenPage {
        layout,
        name,
        token,
        back,
    });
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn days(viewer: &Viewer, days: &str) -> Result<Option<u32>, crate::Refusal> {
    match days.trim() {
        "" => Ok(None),
        days => days.parse().map(Some).map_err(|_| {
            viewer.error(ApiError::bad_request(
                "invalid_expiry",
                "Days until it expires is a whole number.",
            ))
        }),
    }
}

/// `POST /spaces/{space}/tokens`: creates a space token and shows its secret once.
pub async fn create_space_token(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: SpaceTokenForm = read_fields(&viewer, &body)?;
    let expires_in_days = days(&viewer, &form.days)?;
    let created = spaces::create_token(
        State(state),
        viewer.caller.clone(),
        Path(name.clone()),
        Json(CreateSpaceTokenRequest {
            name: form.name,
            role: form.role,
            expires_in_days,
        }),
    )
    .await
    .or_page(&viewer)?
    .1
    .0;
    Ok(token_page(
        viewer.layout,
        created.info.name,
        created.token,
        format!("/spaces/{name}/access"),
    ))
}

/// `POST /spaces/{space}/tokens/{id}/revoke`.
pub async fn revoke_space_token(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> PageResult {
    viewer.require_user()?;
    let id = viewer.id(&id, "A token's id")?;
    spaces::revoke_token(
        State(state),
        viewer.caller.clone(),
        Path((name.clone(), id)),
    )
    .await
    .or_page(&viewer)?;
    Ok(see_other(&format!("/spaces/{name}/access")))
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    tokens: Vec<TokenView>,
    scopes: &'static [(&'static str, &'static str)],
}

/// `GET /account/tokens`: the viewer's API tokens, and a form for a new one.
pub async fn tokens(viewer: Viewer, State(state): State<AppState>) -> PageResult {
    viewer.require_user()?;
    let tokens = accounts::list_tokens(State(state), viewer.caller.clone())
        .await
        .or_page(&viewer)?
        .0;
    Ok(render(&TokensPage {
        layout: viewer.layout,
        tokens,
        scopes: SCOPES,
    }))
}

/// `POST /account/tokens`: creates an API token (name, scopes, expiry) and shows it once.
pub async fn create_token(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let pairs: Vec<(String, String)> = read_fields(&viewer, &body)?;
    let field = |name: &str| crate::install::field(&pairs, name).unwrap_or("");
    let scopes = pairs
        .iter()
        .filter(|(key, _)| key == "scope")
        .map(|(_, value)| value.clone())
        .collect();
    let expires_in_days = days(&viewer, field("days"))?;
    let request = CreateTokenRequest {
        name: field("name").to_string(),
        scopes,
        namespaces: None,
        expires_in_days,
    };
    let created = accounts::create_token(
        State(state),
        aerie_server::auth::ClientAddress(viewer.caller.ip),
        headers,
        Json(request),
    )
    .await
    .or_page(&viewer)?;
    let created = created.1.0;
    Ok(token_page(
        viewer.layout,
        created.info.name,
        created.token,
        "/account/tokens".into(),
    ))
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn revoke_token(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> PageResult {
    viewer.require_user()?;
    let id = viewer.id(&id, "A token's id")?;
    accounts::revoke_token(State(state), viewer.caller.clone(), Path(id))
        .await
        .or_page(&viewer)?;
    Ok(see_other("/account/tokens"))
}
