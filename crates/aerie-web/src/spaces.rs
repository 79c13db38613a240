//! Spaces in the browser: the list, a dashboard per space (installations with their state,
//! health and available updates, and the actions on them), and each installation's config,
//! secrets, events and contributed pages. The install flow is [`crate::install`]. Controls
//! are shown to the space's admins and owners; the services refuse everyone else whatever
//! they post.

use std::collections::BTreeMap;

use aerie_api_types::{
    ConfigRequest, CreateSpaceRequest, InstallationEventView, InstallationView, PermissionsView,
    SecretRequest, SpaceView, UpdateRequest,
};
use aerie_server::AppState;
use aerie_server::error::{ApiError, Json};
use aerie_server::error::{Path, Query};
use aerie_server::routes::{plugins, spaces};
use askama::Template;
use axum::extract::{RawQuery, State};
use bytes::Bytes;
use serde_json::Value;

use crate::install::problems_of;
use crate::plugin::Comparison;
use crate::schema_form::{self, Field, Kind};
use crate::{Layout, OrPage, PageResult, Refusal, Viewer, read_fields, render, see_other};

type InstallationPath = Path<(String, String, String)>;

fn can_change(role: &str) -> bool {
    matches!(role, "owner" | "admin")
}

#[derive(Template)]
#[template(path = "spaces.html")]
struct SpacesPage {
    layout: Layout,
    spaces: Vec<SpaceView>,
    error: Option<String>,
    name: String,
}

/// `GET /spaces`: the viewer's spaces, and a form to create one.
pub async fn list(viewer: Viewer, State(state): State<AppState>) -> PageResult {
    viewer.require_user()?;
    spaces_page(viewer, state, None, String::new()).await
}

async fn spaces_page(
    viewer: Viewer,
    state: AppState,
    error: Option<String>,
    name: String,
) -> PageResult {
    let spaces = spaces::list(State(state), viewer.caller.clone())
        .await
        .or_page(&viewer)?
        .0;
    Ok(render(&SpacesPage {
        layout: viewer.layout,
        spaces,
        error,
        name,
    }))
}

#[derive(serde::Deserialize)]
struct NameForm {
    name: String,
}

/// `POST /spaces`: creates a space; the viewer owns it.
pub async fn create(viewer: Viewer, State(state): State<AppState>, body: Bytes) -> PageResult {
    viewer.require_user()?;
    let form: NameForm = read_fields(&viewer, &body)?;
    match spaces::create(
        State(state.clone()),
        viewer.caller.clone(),
        Json(CreateSpaceRequest {
            name: form.name.clone(),
        }),
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!("/spaces/{}", form.name))),
        Err(err) => {
            let page = spaces_page(viewer, state, Some(crate::sentence(&err)), form.name).await?;
            Ok(crate::refused(&err, page))
        }
    }
}

/// An installation as the dashboard lists it.
pub struct Row {
    pub installation: InstallationView,
    pub path: String,
    pub update: Option<String>,
    pub needed_by: Vec<String>,
}

#[derive(Template)]
#[template(path = "space.html")]
struct SpacePage {
    layout: Layout,
    /// How many installations may be updated.
    updates: usize,
    space: SpaceView,
    admin: bool,
    rows: Vec<Row>,
    members: Vec<(String, String)>,
}

/// `GET /spaces/{space}`: the dashboard.
pub async fn dashboard(
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
    let members = viewer
        .call(&state, |state, caller| {
            spaces::members(state, caller, Path(name.clone()))
        })
        .await?
        .into_iter()
        .map(|member| (member.username, member.role))
        .collect();
    let rows = rows(&viewer, &state, &name).await?;
    Ok(render(&SpacePage {
        updates: rows.iter().filter(|row| row.update.is_some()).count(),
        admin: can_change(&space.role),
        layout: viewer.layout,
        space,
        rows,
        members,
    }))
}

/// The space's installations as the dashboard lists them, each with the update it may take.
async fn rows(viewer: &Viewer, state: &AppState, name: &str) -> Result<Vec<Row>, Refusal> {
    let installations = spaces::installations(
        State(state.clone()),
        viewer.caller.clone(),
        Path(name.to_string()),
    )
    .await
    .or_page(viewer)?
    .0;
    let mut rows = Vec::new();
    for installation in &installations {
        let (namespace, plugin) = installation.plugin.split_once('/').unwrap_or_default();
        // The newest version compatible with the installed one (`^installed`), whatever the
        // installation asked for: an exact pin is offered its compatible updates too.
        let newest = plugins::resolve(
            State(state.clone()),
            viewer.caller.clone(),
            Path((namespace.to_string(), plugin.to_string())),
            Query(plugins::ResolveQuery {
                requirement: Some(format!("^{}", installation.version)),
            }),
        )
        .await
        .ok()
        .map(|json| json.0.version);
        rows.push(Row {
            path: format!("/spaces/{name}/plugins/{}", installation.plugin),
            update: newest.filter(|newest| {
                *newest != installation.version && installation.requirement.is_some()
            }),
            needed_by: installations
                .iter()
                .filter(|other| other.dependencies.contains(&installation.plugin))
                .map(|other| other.plugin.clone())
                .collect(),
            installation: installation.clone(),
        });
    }
    Ok(rows)
}

#[derive(Template)]
#[template(path = "updated.html")]
struct UpdatedPage {
    layout: Layout,
    space: String,
    updated: Vec<(String, String, String)>,
    waiting: Vec<(String, String, String)>,
    failed: Vec<(String, String)>,
}

/// `POST /spaces/{space}/update-all`: every installation to the newest compatible version
/// that needs no new consent; those that ask for more are listed, to be updated one by one
/// with their consent page.
pub async fn update_all(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> PageResult {
    viewer.require_user()?;
    let rows = rows(&viewer, &state, &name).await?;
    let (mut updated, mut waiting, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        let Some(update) = row.update else { continue };
        let plugin = row.installation.plugin;
        let (namespace, short) = plugin.split_once('/').unwrap_or_default();
        let done = spaces::update(
            State(state.clone()),
            viewer.caller.clone(),
            Path((name.clone(), namespace.to_string(), short.to_string())),
            Json(UpdateRequest {
                requirement: Some(format!("^{update}")),
                accept: None,
            }),
        )
        .await;
        let from = row.installation.version;
        match done {
            Ok(_) => updated.push((plugin, from, update)),
            Err(err) if err.code == "permissions_not_accepted" => {
                waiting.push((plugin, from, update))
            }
            // Refused for this caller at all (a viewer): the page says so, as any other page.
            Err(err) if err.status == axum::http::StatusCode::FORBIDDEN => {
                return Err(viewer.error(err));
            }
            Err(err) => failed.push((plugin, crate::sentence(&err))),
        }
    }
    Ok(render(&UpdatedPage {
        layout: viewer.layout,
        space: name,
        updated,
        waiting,
        failed,
    }))
}

#[derive(Template)]
#[template(path = "installation.html")]
struct InstallationPage {
    layout: Layout,
    frames: Vec<Frame>,
    space: String,
    admin: bool,
    installation: InstallationView,
    fields: Vec<Field>,
    events: Vec<InstallationEventView>,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// A page the plugin contributes, framed.
pub struct Frame {
    pub title: String,
    pub src: String,
}

#[derive(Default, serde::Deserialize)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /spaces/{space}/plugins/{namespace}/{name}`: an installation's state, config,
/// secrets and events.
pub async fn installation(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(path): InstallationPath,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let done: Done = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    let notice = match done.done.as_deref() {
        Some("config") => Some("The config is saved and in use."),
        Some("secret") => Some("The secret is saved."),
        Some("installed") => Some("Installed."),
        _ => None,
    };
    installation_page(viewer, state, path, None, BTreeMap::new(), None, notice).await
}

async fn installation_page(
    viewer: Viewer,
    state: AppState,
    path: (String, String, String),
    config: Option<Value>,
    errors: BTreeMap<String, String>,
    error: Option<String>,
    notice: Option<&'static str>,
) -> PageResult {
    let space = viewer
        .call(&state, |state, caller| {
            spaces::get(state, caller, Path(path.0.clone()))
        })
        .await?;
    let installation = viewer
        .call(&state, |state, caller| {
            spaces::installation(state, caller, Path(path.clone()))
        })
        .await?;
    let events = viewer
        .call(&state, |state, caller| {
            spaces::events(state, caller, Path(path.clone()))
        })
        .await?;
    let manifest = installed_manifest(&viewer, &state, &path, &installation.version).await?;
    let schema = manifest
        .as_ref()
        .and_then(|manifest| manifest.config.clone());
    // Contributed pages come from the space's plugin origin, the endpoint's, and only there.
    let endpoint = installation.endpoint.trim_end_matches('/');
    let frames: Vec<Frame> = manifest
        .iter()
        .flat_map(|manifest| &manifest.provides.pages)
        .map(|page| Frame {
            title: page.title.clone(),
            src: format!("{endpoint}{}", page.path),
        })
        .collect();
    let framing = url_origin(&installation.endpoint)
        .filter(|_| !frames.is_empty())
        .and_then(|origin| crate::policy_framing(&origin));
    let config = config.unwrap_or_else(|| installation.config.clone());
    let mut response = render(&InstallationPage {
        frames,
        fields: schema_form::fields(schema.as_ref(), &config, &errors),
        admin: can_change(&space.role),
        space: space.name,
        installation,
        events,
        error,
        notice,
        layout: viewer.layout,
    });
    if let Some(policy) = framing {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// The manifest of the version an installation at `path` runs, if that version's record is
/// there.
async fn installed_manifest(
    viewer: &Viewer,
    state: &AppState,
    path: &(String, String, String),
    version: &str,
) -> Result<Option<aerie_core::manifest::Manifest>, Refusal> {
    match state
        .version(&path.1, &path.2, version)
        .await
        .or_page(viewer)?
    {
        Some(record) => Ok(Some(
            aerie_server::views::manifest(&record).or_page(viewer)?,
        )),
        None => Ok(None),
    }
}

/// The origin of `url`: its scheme, host and port.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// `POST …/config`: saves the config (the plugin restarts with it).
pub async fn set_config(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(path): InstallationPath,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let pairs: Vec<(String, String)> = read_fields(&viewer, &body)?;
    let installation = viewer
        .call(&state, |state, caller| {
            spaces::installation(state, caller, Path(path.clone()))
        })
        .await?;
    let schema = installed_manifest(&viewer, &state, &path, &installation.version)
        .await?
        .and_then(|manifest| manifest.config);
    let config = match schema_form::config_from(schema.as_ref(), &pairs) {
        Ok(config) => config,
        Err(problems) => {
            return refused_installation(
                viewer,
                state,
                path,
                None,
                problems,
                ApiError::unprocessable("invalid_config", "some fields are not valid"),
            )
            .await;
        }
    };
    match spaces::set_config(
        State(state.clone()),
        viewer.caller.clone(),
        Path(path.clone()),
        Json(ConfigRequest {
            config: config.clone(),
        }),
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/spaces/{}/plugins/{}/{}?done=config",
            path.0, path.1, path.2
        ))),
        Err(err) => {
            let problems = problems_of(&err);
            refused_installation(viewer, state, path, Some(config), problems, err).await
        }
    }
}

async fn refused_installation(
    viewer: Viewer,
    state: AppState,
    path: (String, String, String),
    config: Option<Value>,
    problems: BTreeMap<String, String>,
    err: ApiError,
) -> PageResult {
    let page = installation_page(
        viewer,
        state,
        path,
        config,
        problems,
        Some(crate::sentence(&err)),
        None,
    )
    .await?;
    Ok(crate::refused(&err, page))
}

#[derive(serde::Deserialize)]
struct SecretForm {
    name: String,
    #[serde(default)]
    value: String,
}

/// `POST …/secrets`: sets a secret (its value is never shown again), or removes it when
/// the value is empty.
pub async fn set_secret(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(path): InstallationPath,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: SecretForm = read_fields(&viewer, &body)?;
    let target = Path((
        path.0.clone(),
        path.1.clone(),
        path.2.clone(),
        form.name.clone(),
    ));
    let done = if form.value.is_empty() {
        spaces::remove_secret(State(state), viewer.caller.clone(), target).await
    } else {
        spaces::set_secret(
            State(state),
            viewer.caller.clone(),
            target,
            Json(SecretRequest { value: form.value }),
        )
        .await
    };
    done.or_page(&viewer)?;
    Ok(see_other(&format!(
        "/spaces/{}/plugins/{}/{}?done=secret",
        path.0, path.1, path.2
    )))
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    layout: Layout,
    /// What changes from the installed version to the new one.
    comparison: Option<Comparison>,
    action: String,
    requirement: String,
    title: String,
    permissions: BTreeMap<String, PermissionsView>,
    accept: String,
}

/// What an update of the installation at `path` to the newest version `requirement` (or
/// its own) allows changes, for its consent page.
async fn update_changes(
    viewer: &Viewer,
    state: &AppState,
    path: (String, String, String),
    requirement: Option<&str>,
) -> Result<Option<Comparison>, crate::Refusal> {
    let installation = spaces::installation(
        State(state.clone()),
        viewer.caller.clone(),
        Path(path.clone()),
    )
    .await
    .or_page(viewer)?
    .0;
    let (_, namespace, name) = path;
    let Ok(target) = plugins::resolve(
        State(state.clone()),
        viewer.caller.clone(),
        Path((namespace.clone(), name.clone())),
        Query(plugins::ResolveQuery {
            requirement: requirement
                .map(str::to_string)
                .or(installation.requirement.clone()),
        }),
    )
    .await
    else {
        return Ok(None);
    };
    let to = target.0.version;
    let before =
        crate::plugin::version_facts(viewer, state, &namespace, &name, &installation.version)
            .await?;
    let after = crate::plugin::version_facts(viewer, state, &namespace, &name, &to).await?;
    Ok(Some(Comparison {
        changes: crate::changes::between((&before.0, &before.1), (&after.0, &after.1)),
        from: installation.version,
        to,
        from_choices: Vec::new(),
        to_choices: Vec::new(),
    }))
}

#[derive(Default, serde::Deserialize)]
struct ActionForm {
    #[serde(default)]
    accept: Option<String>,
    /// An update's new requirement.
    #[serde(default)]
    requirement: Option<String>,
    #[serde(default)]
    keep_data: Option<String>,
}

/// `POST …/{action}`: update, roll back, disable, enable or uninstall; an update that asks
/// for more than was allowed shows what, to be allowed first.
pub async fn act(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((space, namespace, name, action)): Path<(String, String, String, String)>,
    body: Bytes,
) -> PageResult {
    viewer.require_user()?;
    let form: ActionForm = read_fields(&viewer, &body)?;
    let path = || Path((space.clone(), namespace.clone(), name.clone()));
    let caller = || viewer.caller.clone();
    let state = || State(state.clone());
    let done = match action.as_str() {
        "update" => {
            let accept = form
                .accept
                .as_deref()
                .map(serde_json::from_str::<BTreeMap<String, PermissionsView>>)
                .transpose()
                .map_err(|err| {
                    viewer.error(ApiError::bad_request(
                        "invalid_form",
                        format!("The consent could not be read: {err}."),
                    ))
                })?;
            let requirement = form
                .requirement
                .clone()
                .filter(|requirement| !requirement.is_empty());
            match spaces::update(
                state(),
                caller(),
                path(),
                Json(UpdateRequest {
                    requirement: requirement.clone(),
                    accept,
                }),
            )
            .await
            {
                Err(err) if err.code == "permissions_not_accepted" => {
                    let permissions: BTreeMap<String, PermissionsView> = err
                        .details
                        .as_ref()
                        .and_then(|details| {
                            serde_json::from_value(details["permissions"].clone()).ok()
                        })
                        .unwrap_or_default();
                    let comparison =
                        update_changes(&viewer, &state().0, path().0, requirement.as_deref())
                            .await?;
                    let page = ConsentPage {
                        comparison,
                        action: format!("/spaces/{space}/plugins/{namespace}/{name}/update"),
                        title: format!("Update {namespace}/{name}"),
                        requirement: requirement.unwrap_or_default(),
                        accept: serde_json::to_string(&permissions)
                            .map_err(|err| viewer.error(ApiError::internal(err)))?,
                        permissions,
                        layout: viewer.layout.clone(),
                    };
                    let mut response = render(&page);
                    *response.status_mut() = axum::http::StatusCode::CONFLICT;
                    return Ok(response);
                }
                done => done.map(|_| ()),
            }
        }
        "rollback" => spaces::rollback(state(), caller(), path())
            .await
            .map(|_| ()),
        "disable" => spaces::disable(state(), caller(), path()).await.map(|_| ()),
        "enable" => spaces::enable(state(), caller(), path()).await.map(|_| ()),
        "uninstall" => spaces::uninstall(
            state(),
            caller(),
            path(),
            Query(spaces::UninstallQuery {
                keep_data: form.keep_data.is_some(),
            }),
        )
        .await
        .map(|_| ()),
        _ => Err(ApiError::not_found(
            "no_route",
            "There is no such action on an installation.",
        )),
    };
    done.or_page(&viewer)?;
    Ok(see_other(&format!("/spaces/{space}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_and_owners_get_controls() {
        assert!(can_change("owner") && can_change("admin"));
        assert!(!can_change("member") && !can_change("viewer"));
    }
}
