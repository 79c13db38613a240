//! The publisher's dashboard: the viewer's namespaces with their members, keys and plugins,
//! each plugin's versions with downloads, and yank and deprecate on each version.

use aerie_api_types::{
    AddKeyRequest, DeprecateRequest, KeyView, NamespaceView, PluginView, SetMemberRequest,
};
use aerie_core::manifest::Manifest;
use aerie_core::package::{MANIFEST_FILE, read_archive};
use aerie_server::AppState;
use aerie_server::error::Path;
use aerie_server::error::{ApiError, Json};
use aerie_server::routes::{accounts, namespaces, plugins};
use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use bytes::Bytes;

use crate::plugin::DailyDownloads;
use crate::{Layout, OrPage, PageResult, Viewer, read_fields, render, see_other, thousands};

/// A namespace as the dashboard shows it.
pub struct Shelf {
    pub namespace: NamespaceView,
    pub role: String,
    pub keys: Vec<KeyView>,
    pub plugins: Vec<PublishedPlugin>,
}

/// A plugin on the dashboard: its versions, downloads in all and per day.
pub struct PublishedPlugin {
    pub plugin: PluginView,
    pub downloads: String,
    pub daily: DailyDownloads,
}

#[derive(Template)]
#[template(path = "publisher.html")]
struct PublisherPage {
    layout: Layout,
    shelves: Vec<Shelf>,
}

/// `GET /publish`: every namespace the viewer belongs to, with its plugins and versions.
pub async fn dashboard(viewer: Viewer, State(state): State<AppState>) -> PageResult {
    viewer.require_user()?;
    let me = accounts::me(State(state.clone()), viewer.caller.clone())
        .await
        .or_page(&viewer)?
        .0;
    let mut shelves = Vec::new();
    for membership in me.namespaces {
        let name = membership.namespace;
        let namespace = viewer
            .call(&state, |state, caller| {
                namespaces::get(state, caller, Path(name.clone()))
            })
            .await?;
        let keys = viewer
            .call(&state, |state, caller| {
                namespaces::keys(state, caller, Path(name.clone()))
            })
            .await?;
        let mut listed = Vec::new();
        for plugin in &namespace.plugins {
            let short = plugin.rsplit('/').next().unwrap_or(plugin).to_string();
            let view = viewer
                .call(&state, |state, caller| {
                    plugins::plugin(state, caller, Path((name.clone(), short.clone())))
                })
                .await?;
            let stats = viewer
                .call(&state, |state, caller| {
                    plugins::stats(state, caller, Path((name.clone(), short.clone())))
                })
                .await?;
            listed.push(PublishedPlugin {
                downloads: thousands(view.downloads.max(0) as u64),
                daily: DailyDownloads::from_days(&stats.days),
                plugin: view,
            });
        }
        shelves.push(Shelf {
            namespace,
            role: membership.role,
            keys: keys
                .into_iter()
                .filter(|key| key.revoked_at.is_none())
                .collect(),
            plugins: listed,
        });
    }
    Ok(render(&PublisherPage {
        layout: viewer.layout,
        shelves,
    }))
}

/// `POST /publish/{namespace}/members`: adds a member or changes their role (`owner`,
/// `maintainer`, `member`); an empty role removes them. Its owners only, as the API decides.
pub async fn set_member(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: crate::access::MemberForm = read_fields(&viewer, &body)?;
    let path = Path((namespace, form.username.trim().to_string()));
    let done = if form.role.is_empty() {
        namespaces::remove_member(State(state), viewer.caller.clone(), path).await
    } else {
        namespaces::set_member(
            State(state),
            viewer.caller.clone(),
            path,
            Json(SetMemberRequest { role: form.role }),
        )
        .await
    };
    done.or_page(&viewer)?;
    Ok(see_other("/publish"))
}

#[derive(serde::Deserialize)]
struct KeyForm {
    public_key: String,
}

/// `POST /publish/{namespace}/keys`: registers a publisher key (a minisign public key).
pub async fn add_key(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: KeyForm = read_fields(&viewer, &body)?;
    namespaces::add_key(
        State(state),
        viewer.caller.clone(),
        Path(namespace),
        Json(AddKeyRequest {
            public_key: form.public_key,
        }),
    )
    .await
    .or_page(&viewer)?;
    Ok(see_other("/publish"))
}

/// `POST /publish/{namespace}/keys/{key}/revoke`: revokes a publisher key; versions it
/// signed no longer verify for spaces that require signatures.
pub async fn revoke_key(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(path): Path<(String, String)>,
) -> PageResult {
    viewer.require_user()?;
    namespaces::revoke_key(State(state), viewer.caller.clone(), Path(path))
        .await
        .or_page(&viewer)?;
    Ok(see_other("/publish"))
}

#[derive(Default, serde::Deserialize)]
struct VersionForm {
    #[serde(default)]
    message: String,
}

/// `POST /publish/{namespace}/{name}/{version}/{action}`: `yank`, `unyank`, `deprecate` (with
/// a message) or `undeprecate`.
pub async fn act(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((namespace, name, version, action)): Path<(String, String, String, String)>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: VersionForm = read_fields(&viewer, &body)?;
    let path = || Path((namespace.clone(), name.clone(), version.clone()));
    let caller = viewer.caller.clone();
    let state = State(state);
    let done = match action.as_str() {
        "yank" => plugins::yank(state, caller, path()).await,
        "unyank" => plugins::unyank(state, caller, path()).await,
        "deprecate" => {
            plugins::deprecate(
                state,
                caller,
                path(),
                Json(DeprecateRequest {
                    message: form.message,
                }),
            )
            .await
        }
        "undeprecate" => plugins::undeprecate(state, caller, path()).await,
        _ => Err(aerie_server::error::ApiError::not_found(
            "no_route",
            "There is no such action on a version.",
        )),
    };
    done.or_page(&viewer)?;
    Ok(see_other("/publish"))
}

#[derive(Template)]
#[template(path = "upload.html")]
struct UploadPage {
    layout: Layout,
    error: Option<String>,
}

/// `GET /publish/upload`: publish a package file from this computer — a package downloaded
/// from another Aerie, say, for a registry with no route to it.
pub async fn upload_form(viewer: Viewer) -> PageResult {
    viewer.require_user()?;
    Ok(render(&UploadPage {
        layout: viewer.layout,
        error: None,
    }))
}

/// `POST /publish/upload`: the package (and its detached signature, if any) go through the
/// publish pipeline exactly as `aerie publish` sends them; the name and version come from the
/// package's own manifest.
pub async fn upload(
    viewer: Viewer,
    State(state): State<AppState>,
    mut form: Multipart,
) -> PageResult {
    viewer.require_user()?;
    let unreadable = |err: MultipartError| {
        ApiError::bad_request(
            "invalid_form",
            format!("The upload could not be read: {err}."),
        )
    };
    let mut package = None;
    let mut signature = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(unreadable)
        .or_page(&viewer)?
    {
        match field.name() {
            Some("package") => {
                package = Some(field.bytes().await.map_err(unreadable).or_page(&viewer)?)
            }
            Some("signature") => {
                signature = Some(field.bytes().await.map_err(unreadable).or_page(&viewer)?)
            }
            _ => {}
        }
    }
    let refused = |viewer: Viewer, err: ApiError| {
        let page = render(&UploadPage {
            error: Some(crate::sentence(&err)),
            layout: viewer.layout,
        });
        Ok(crate::refused(&err, page))
    };
    let Some(package) = package.filter(|package| !package.is_empty()) else {
        return refused(
            viewer,
            ApiError::bad_request(
                "package_missing",
                "choose a package file (.aerie) to upload",
            ),
        );
    };
    let limits = state.config.package_limits();
    let identity = {
        let package = package.clone();
        tokio::task::spawn_blocking(move || -> Result<(String, String), ApiError> {
            let files = read_archive(&package, &limits)?;
            let manifest = files
                .iter()
                .find(|file| file.name == MANIFEST_FILE)
                .and_then(|file| std::str::from_utf8(&file.bytes).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("manifest_missing", "the package has no aerie.toml")
                })?;
            let manifest = Manifest::parse(manifest)
                .map_err(|err| ApiError::unprocessable("invalid_manifest", err.to_string()))?;
            Ok((
                manifest.plugin.name.to_string(),
                manifest.plugin.version.to_string(),
            ))
        })
        .await
        .map_err(ApiError::internal)
        .and_then(|identity| identity)
    };
    let (name, version) = match identity {
        Ok(identity) => identity,
        Err(err) => return refused(viewer, err),
    };
    let (namespace, plugin) = name.split_once('/').unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/gzip"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(package.len()));
    if let Some(signature) = signature.filter(|signature| !signature.is_empty()) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&signature);
        headers.insert(
            plugins::SIGNATURE_HEADER,
            HeaderValue::from_str(&encoded).map_err(|err| viewer.error(ApiError::internal(err)))?,
        );
    }
    let published = plugins::publish(
        State(state),
        viewer.caller.clone(),
        Path((namespace.to_string(), plugin.to_string(), version.clone())),
        headers,
        Body::from(package),
    )
    .await;
    match published {
        Ok(_) => Ok(see_other(&format!("/plugins/{name}/versions"))),
        Err(err) => refused(viewer, err),
    }
}
