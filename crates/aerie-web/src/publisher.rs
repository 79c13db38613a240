//! The publisher's dashboard: the viewer's namespaces with their members, keys and plugins,
//! each plugin's versions with downloads, and yank and deprecate on each version.

use aerie_api_types::{DeprecateRequest, KeyView, NamespaceView, PluginView};
use aerie_server::AppState;
use aerie_server::error::Json;
use aerie_server::routes::{accounts, namespaces, plugins};
use askama::Template;
use axum::extract::{Path, State};
use bytes::Bytes;

use crate::{Layout, OrPage, PageResult, Viewer, read_fields, render, see_other, thousands};

/// A namespace as the dashboard shows it.
pub struct Shelf {
    pub namespace: NamespaceView,
    pub role: String,
    pub keys: Vec<KeyView>,
    pub plugins: Vec<(PluginView, String)>,
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
        let namespace = namespaces::get(
            State(state.clone()),
            viewer.caller.clone(),
            Path(name.clone()),
        )
        .await
        .or_page(&viewer)?
        .0;
        let keys = namespaces::keys(
            State(state.clone()),
            viewer.caller.clone(),
            Path(name.clone()),
        )
        .await
        .or_page(&viewer)?
        .0;
        let mut listed = Vec::new();
        for plugin in &namespace.plugins {
            let short = plugin.rsplit('/').next().unwrap_or(plugin).to_string();
            let view = plugins::plugin(
                State(state.clone()),
                viewer.caller.clone(),
                Path((name.clone(), short)),
            )
            .await
            .or_page(&viewer)?
            .0;
            let downloads = thousands(view.downloads.max(0) as u64);
            listed.push((view, downloads));
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
