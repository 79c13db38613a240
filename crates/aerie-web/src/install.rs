//! The install flow: a version of the plugin, a config form generated from its JSON Schema
//! (errors shown by field), write-only secrets, and consent to what it may do — the plugin's
//! own permissions at first, and a dependency's too when the server asks for them.

use std::collections::BTreeMap;

use aerie_api_types::{InstallRequest, PermissionsView, SecretRequest};
use aerie_server::AppState;
use aerie_server::error::{ApiError, Json};
use aerie_server::error::{Path, Query};
use aerie_server::routes::{pages, plugins, spaces};
use askama::Template;
use axum::extract::{RawQuery, State};
use bytes::Bytes;
use serde_json::Value;

use crate::schema_form::{self, Field, Kind};
use crate::{Layout, OrPage, PageResult, Viewer, read_fields, render, see_other};

#[derive(Template)]
#[template(path = "install.html")]
struct InstallPage {
    layout: Layout,
    space: String,
    plugin: String,
    versions: Vec<(String, bool)>,
    pin: bool,
    fields: Vec<Field>,
    secrets: Vec<String>,
    permissions: BTreeMap<String, PermissionsView>,
    accept: String,
    error: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct InstallQuery {
    #[serde(default)]
    space: String,
    #[serde(default)]
    plugin: String,
    #[serde(default)]
    version: Option<String>,
}

/// What an install is of: the space, the plugin and the version chosen, with what the form
/// needs of that version (the permissions it asks for, its config schema and its secrets).
struct Chosen {
    space: String,
    plugin: String,
    pin: bool,
    version: String,
    versions: Vec<String>,
    permissions: PermissionsView,
    schema: Option<Value>,
    secrets: Vec<String>,
    /// What the chosen version needs of other plugins.
    dependencies: Vec<(String, String)>,
}

async fn chosen(
    viewer: &Viewer,
    state: &AppState,
    space: &str,
    plugin: &str,
    version: Option<&str>,
    pin: bool,
) -> Result<Chosen, crate::Refusal> {
    let (namespace, name) = plugin.split_once('/').ok_or_else(|| {
        viewer.error(ApiError::bad_request(
            "invalid_plugin",
            "Name a plugin as `namespace/name`.",
        ))
    })?;
    let page = pages::plugin_page(state, &viewer.caller, namespace, name)
        .await
        .or_page(viewer)?;
    let versions: Vec<String> = page
        .versions
        .iter()
        .filter(|version| !version.yanked)
        .map(|version| version.version.clone())
        .collect();
    let version = version.unwrap_or(&page.version).to_string();
    if !versions.contains(&version) {
        return Err(viewer.error(ApiError::not_found(
            "version_not_found",
            format!("{plugin} has no installable version {version}."),
        )));
    }
    let (manifest, permissions) =
        crate::plugin::version_facts(viewer, state, namespace, name, &version).await?;
    let dependencies = requirements(&manifest);
    Ok(Chosen {
        space: space.to_string(),
        plugin: plugin.to_string(),
        pin,
        permissions,
        schema: manifest.config,
        secrets: manifest.permissions.secrets,
        dependencies,
        version,
        versions,
    })
}

/// A manifest's dependencies as names and requirements.
fn requirements(manifest: &aerie_core::manifest::Manifest) -> Vec<(String, String)> {
    manifest
        .dependencies
        .iter()
        .map(|(name, requirement)| (name.to_string(), requirement.to_string()))
        .collect()
}

/// Most plugins the consent step looks at: the plugin and what it would bring in.
const MAX_CONSENTED: usize = 50;

/// What the install asks consent for before anything is posted: the chosen version's own
/// permissions and those of every plugin it would bring in (each dependency's newest version
/// its requirement allows, as a resolution picks), where they ask for anything. The server
/// checks the consent given against its own plan; one it did not foresee is asked for then.
async fn consent_needed(
    viewer: &Viewer,
    state: &AppState,
    chosen: &Chosen,
) -> Result<BTreeMap<String, PermissionsView>, crate::Refusal> {
    let mut consent = BTreeMap::from([(chosen.plugin.clone(), chosen.permissions.clone())]);
    let mut seen = std::collections::BTreeSet::from([chosen.plugin.clone()]);
    let mut pending = chosen.dependencies.clone();
    while let Some((name, requirement)) = pending.pop() {
        if !seen.insert(name.clone()) || seen.len() > MAX_CONSENTED {
            continue;
        }
        let Some((namespace, short)) = name.split_once('/') else {
            continue;
        };
        let path = Path((namespace.to_string(), short.to_string()));
        let query = Query(plugins::ResolveQuery {
            requirement: Some(requirement),
        });
        // A dependency that does not resolve is the install's own error to report.
        let Ok(version) =
            plugins::resolve(State(state.clone()), viewer.caller.clone(), path, query)
                .await
                .map(|json| json.0.version)
        else {
            continue;
        };
        let (manifest, permissions) =
            crate::plugin::version_facts(viewer, state, namespace, short, &version).await?;
        if permissions != PermissionsView::default() {
            consent.insert(name, permissions);
        }
        pending.extend(requirements(&manifest));
    }
    Ok(consent)
}

fn install_page(
    layout: Layout,
    chosen: &Chosen,
    config: &Value,
    errors: &BTreeMap<String, String>,
    consent: BTreeMap<String, PermissionsView>,
    error: Option<String>,
) -> Result<InstallPage, ApiError> {
    Ok(InstallPage {
        versions: chosen
            .versions
            .iter()
            .map(|version| (version.clone(), *version == chosen.version))
            .collect(),
        fields: schema_form::fields(chosen.schema.as_ref(), config, errors),
        secrets: chosen.secrets.clone(),
        accept: serde_json::to_string(&consent).map_err(ApiError::internal)?,
        permissions: consent,
        layout,
        space: chosen.space.clone(),
        plugin: chosen.plugin.clone(),
        pin: chosen.pin,
        error,
    })
}

/// `GET /install?space=&plugin=&version=`: the install form.
pub async fn install_form(
    viewer: Viewer,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> PageResult {
    viewer.require_user()?;
    let query: InstallQuery = read_fields(&viewer, query.unwrap_or_default().as_bytes())?;
    spaces::get(
        State(state.clone()),
        viewer.caller.clone(),
        Path(query.space.clone()),
    )
    .await
    .or_page(&viewer)?;
    let chosen = chosen(
        &viewer,
        &state,
        &query.space,
        &query.plugin,
        query.version.as_deref(),
        false,
    )
    .await?;
    let consent = consent_needed(&viewer, &state, &chosen).await?;
    let page = install_page(
        viewer.layout.clone(),
        &chosen,
        &Value::Null,
        &BTreeMap::new(),
        consent,
        None,
    )
    .or_page(&viewer)?;
    Ok(render(&page))
}

/// The value of the form field `name`, if it was posted.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `POST /install`: installs with the config and consent given, then sets the secrets
/// given; a refusal shows the form again with why, by field where it can.
pub async fn install(viewer: Viewer, State(state): State<AppState>, body: Bytes) -> PageResult {
    viewer.require_user()?;
    // The form as pairs: config fields are named by the schema.
    let pairs: Vec<(String, String)> = read_fields(&viewer, &body)?;
    let space = field(&pairs, "space").unwrap_or_default().to_string();
    let plugin = field(&pairs, "plugin").unwrap_or_default().to_string();
    let pin = field(&pairs, "pin").is_some();
    let chosen = chosen(
        &viewer,
        &state,
        &space,
        &plugin,
        field(&pairs, "version"),
        pin,
    )
    .await?;
    let accept: BTreeMap<String, PermissionsView> = match field(&pairs, "consent") {
        Some(_) => {
            serde_json::from_str(field(&pairs, "accept").unwrap_or("{}")).map_err(|err| {
                viewer.error(ApiError::bad_request(
                    "invalid_form",
                    format!("The consent could not be read: {err}."),
                ))
            })?
        }
        None => BTreeMap::new(),
    };
    let shown = if accept.is_empty() {
        consent_needed(&viewer, &state, &chosen).await?
    } else {
        accept.clone()
    };
    let again = |config: &Value,
                 errors: BTreeMap<String, String>,
                 consent,
                 error: ApiError|
     -> PageResult {
        let page = install_page(
            viewer.layout.clone(),
            &chosen,
            config,
            &errors,
            consent,
            Some(crate::sentence(&error)),
        )
        .or_page(&viewer)?;
        Ok(crate::refused(&error, render(&page)))
    };
    let config = match schema_form::config_from(chosen.schema.as_ref(), &pairs) {
        Ok(config) => config,
        Err(problems) => {
            let config = Value::Object(
                pairs
                    .iter()
                    .filter_map(|(name, value)| {
                        Some((
                            name.strip_prefix("config.")?.to_string(),
                            Value::String(value.clone()),
                        ))
                    })
                    .collect(),
            );
            return again(
                &config,
                problems,
                shown,
                ApiError::unprocessable("invalid_config", "some fields are not valid"),
            );
        }
    };
    if field(&pairs, "consent").is_none() {
        return again(
            &config,
            BTreeMap::new(),
            shown,
            ApiError::unprocessable(
                "permissions_not_accepted",
                "allow what it may do to install it",
            ),
        );
    }
    // The version chosen is the version installed: a caret requirement when it is the newest
    // (later compatible versions are offered as updates), exact when pinned or older.
    let newest = chosen.versions.first() == Some(&chosen.version);
    let requirement = if pin || !newest {
        format!("={}", chosen.version)
    } else {
        format!("^{}", chosen.version)
    };
    let installed = spaces::install(
        State(state.clone()),
        viewer.caller.clone(),
        Path(space.clone()),
        Json(InstallRequest {
            plugin: plugin.clone(),
            requirement: Some(requirement),
            config: Some(config.clone()),
            accept: Some(accept),
        }),
    )
    .await;
    if let Err(err) = installed {
        let errors = problems_of(&err);
        let consent = match (err.code, &err.details) {
            // More to consent to (a dependency's permissions): shown, to be allowed.
            ("permissions_not_accepted", Some(details)) => {
                serde_json::from_value(details["permissions"].clone()).unwrap_or(shown)
            }
            _ => shown,
        };
        return again(&config, errors, consent, err);
    }
    let (namespace, name) = plugin.split_once('/').unwrap_or_default();
    for secret in &chosen.secrets {
        let Some(value) =
            field(&pairs, &format!("secret.{secret}")).filter(|value| !value.is_empty())
        else {
            continue;
        };
        spaces::set_secret(
            State(state.clone()),
            viewer.caller.clone(),
            Path((
                space.clone(),
                namespace.to_string(),
                name.to_string(),
                secret.clone(),
            )),
            Json(SecretRequest {
                value: value.to_string(),
            }),
        )
        .await
        .or_page(&viewer)?;
    }
    Ok(see_other(&format!("/spaces/{space}/plugins/{plugin}")))
}

/// The server's problems with config fields, by field.
pub(crate) fn problems_of(err: &ApiError) -> BTreeMap<String, String> {
    err.details
        .as_ref()
        .and_then(|details| details["problems"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|problem| {
            Some((
                problem["field"].as_str()?.to_string(),
                problem["message"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_problems_are_read_by_field() {
        let err =
            ApiError::unprocessable("invalid_config", "bad").with_details(serde_json::json!({
                "problems": [{ "field": "config.greeting", "message": "too long" }]
            }));
        assert_eq!(problems_of(&err)["config.greeting"], "too long");
    }
}
