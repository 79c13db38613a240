//! The changes a space's owners make: install, update, roll back, uninstall, configure,
//! enable and disable, delete; each resolved, planned and applied in that order.

use std::collections::BTreeMap;

use aerie_core::name::PluginName;
use aerie_db::{InstallationStatus, Space};
use semver::{Version, VersionReq};
use serde_json::{Value, json};

use super::apply::{ApplyError, apply, begin, host, load_failed, package, running_spec};
use super::follow::{commit, forget};
use super::plan::{event, plan, status_change};
use super::resolution::{candidate, lockfile_of, requested_of, resolve};
use super::{corrupt, host_space, parse_plugin, parse_requirement};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, SPACE_CHANGED};
use crate::state::AppState;

pub(super) fn not_installed(plugin: &PluginName, space: &Space) -> ApiError {
    ApiError::not_found(
        "installation_not_found",
        format!("{plugin} is not installed in the space `{}`", space.name),
    )
}

/// The installations that depend on `plugin`, by the lockfile.
pub(super) fn dependents(space: &Space, plugin: &PluginName) -> ApiResult<Vec<String>> {
    Ok(lockfile_of(space)?
        .map(|lockfile| {
            lockfile
                .plugins
                .iter()
                .filter(|(_, locked)| locked.dependencies.contains(plugin))
                .map(|(name, _)| name.to_string())
                .collect()
        })
        .unwrap_or_default())
}

/// How many times a change is planned again when another replica changed the space first.
const REPLANS: usize = 3;

/// Runs `change` again when it was refused because another replica changed the space after
/// it was planned, at most [`REPLANS`] more times: each attempt reads the space again, so it
/// is planned from what the other replica wrote (and refused if that makes it wrong).
async fn replanned<T, Attempt: Future<Output = ApiResult<T>>>(
    mut change: impl FnMut() -> Attempt,
) -> ApiResult<T> {
    let mut replans = 0;
    loop {
        match change().await {
            Err(err) if err.code == SPACE_CHANGED && replans < REPLANS => {
                replans += 1;
                tracing::info!(
                    replans,
                    "the space changed elsewhere while a change was planned; planning it again"
                );
            }
            answer => return answer,
        }
    }
}

/// Installs `request.plugin` (and whatever it needs) in the space.
pub async fn install(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    request: aerie_api_types::InstallRequest,
) -> ApiResult<BTreeMap<String, String>> {
    replanned(|| install_planned(state, caller, space, request.clone())).await
}

/// One attempt at [`install`], planned from the space as stored now.
async fn install_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    request: aerie_api_types::InstallRequest,
) -> ApiResult<BTreeMap<String, String>> {
    let plugin = parse_plugin(&request.plugin)?;
    let requirement = parse_requirement(request.requirement.as_deref().unwrap_or("*"))?;
    let (_lock, space, installed) = begin(state, space).await?;
    if let Some(existing) = installed.get(&plugin)
        && existing.installation.requirement.is_some()
    {
        return Err(ApiError::conflict(
            "already_installed",
            format!(
                "{plugin} {} is already installed in `{}`; update it to change its version",
                existing.installation.version, space.name
            ),
        ));
    }
    let mut requested = requested_of(&installed)?;
    requested.insert(plugin.clone(), requirement.clone());
    let previous = lockfile_of(&space)?;
    let lockfile = resolve(state, caller, &space, &requested, previous.as_ref()).await?;
    let configs: BTreeMap<PluginName, Value> = request
        .config
        .map(|config| (plugin.clone(), config))
        .into_iter()
        .collect();
    let plan = plan(
        state,
        &installed,
        previous.as_ref(),
        lockfile,
        &requested,
        &configs,
        request.accept.as_ref(),
    )
    .await?;
    let details = json!({ "plugin": plugin.as_str(), "requirement": requirement.to_string() });
    apply(
        state,
        &caller.actor(),
        &space,
        plan,
        "installation.install",
        details,
        false,
    )
    .await
    .map_err(|err| err.into_api("install_failed"))
}

/// Updates `plugin` to the newest version its requirement (or a new one) allows; if the new
/// version does not start, the old one keeps serving and the installation records why.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    request: aerie_api_types::UpdateRequest,
) -> ApiResult<BTreeMap<String, String>> {
    replanned(|| update_planned(state, caller, space, plugin, request.clone())).await
}

/// One attempt at [`update`], planned from the space as stored now.
async fn update_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    request: aerie_api_types::UpdateRequest,
) -> ApiResult<BTreeMap<String, String>> {
    let (_lock, space, installed) = begin(state, space).await?;
    let existing = installed
        .get(plugin)
        .ok_or_else(|| not_installed(plugin, &space))?
        .clone();
    let mut requested = requested_of(&installed)?;
    // A dependency stays one unless it is given a requirement of its own; then the newest
    // version its dependents allow is taken.
    let requirement = request
        .requirement
        .as_deref()
        .or(existing.installation.requirement.as_deref())
        .map(parse_requirement)
        .transpose()?;
    if let Some(requirement) = &requirement {
        requested.insert(plugin.clone(), requirement.clone());
    }
    let previous = lockfile_of(&space)?.unwrap_or_default();
    let mut locked = previous.clone();
    locked.plugins.remove(plugin);
    let lockfile = resolve(state, caller, &space, &requested, Some(&locked)).await?;
    let plan = plan(
        state,
        &installed,
        Some(&previous),
        lockfile,
        &requested,
        &BTreeMap::new(),
        request.accept.as_ref(),
    )
    .await?;
    let details = json!({
        "plugin": plugin.as_str(),
        "requirement": requirement.as_ref().map(ToString::to_string),
    });
    match apply(
        state,
        &caller.actor(),
        &space,
        plan,
        "installation.update",
        details,
        false,
    )
    .await
    {
        Ok(changed) => Ok(changed),
        Err(ApplyError::Api(err)) => Err(err),
        Err(ApplyError::Start(failed, err)) => {
            let reason = format!("an update did not take: {failed} did not start: {err}");
            let change = status_change(
                &existing.installation,
                existing.installation.status,
                Some(reason),
                event(
                    plugin,
                    "update_failed",
                    Some(&existing.installation.version),
                    None,
                ),
                json!({ "plugin": plugin.as_str(), "failed": failed.as_str() }),
            );
            commit(state, &caller.actor(), &space, &change).await?;
            Err(load_failed("update_failed", &failed, &err))
        }
    }
}

/// Returns `plugin` to the version before its last update.
pub async fn rollback(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
) -> ApiResult<BTreeMap<String, String>> {
    replanned(|| rollback_planned(state, caller, space, plugin)).await
}

/// One attempt at [`rollback`], planned from the space as stored now.
async fn rollback_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
) -> ApiResult<BTreeMap<String, String>> {
    let (_lock, space, installed) = begin(state, space).await?;
    let existing = installed
        .get(plugin)
        .ok_or_else(|| not_installed(plugin, &space))?;
    let (Some(previous), Some(previous_digest)) = (
        existing.installation.previous_version.clone(),
        existing.installation.previous_digest.clone(),
    ) else {
        return Err(ApiError::conflict(
            "nothing_to_roll_back",
            format!("{plugin} has not been updated, so there is no version to return to"),
        ));
    };
    let package = package(state, &previous_digest).await?;
    let previous_lockfile = lockfile_of(&space)?.unwrap_or_default();
    let mut lockfile = previous_lockfile.clone();
    // The old version's dependencies must be met by what the space runs...
    for (dependency, requirement) in &package.manifest.dependencies {
        let found = lockfile
            .plugins
            .get(dependency)
            .map(|locked| &locked.version);
        if !found.is_some_and(|version| requirement.matches(version)) {
            return Err(ApiError::conflict(
                "rollback_conflict",
                format!(
                    "{plugin} {previous} depends on {dependency} {requirement}, but the space has {}",
                    found.map_or("none".to_string(), ToString::to_string)
                ),
            ));
        }
    }
    // ...and it must meet what its dependents require of it.
    let previous_version = Version::parse(&previous).map_err(corrupt)?;
    for (dependent, locked) in &lockfile.plugins {
        if !locked.dependencies.contains(plugin) {
            continue;
        }
        let record = state
            .version(
                dependent.namespace(),
                dependent.name(),
                &locked.version.to_string(),
            )
            .await?
            .ok_or_else(|| corrupt(format!("{dependent} {} is not published", locked.version)))?;
        if let Some(requirement) = candidate(state, &record)?.dependencies.get(plugin)
            && !requirement.matches(&previous_version)
        {
            return Err(ApiError::conflict(
                "rollback_conflict",
                format!(
                    "{dependent} {} requires {plugin} {requirement}, which {previous} does not meet",
                    locked.version
                ),
            ));
        }
    }
    if let Some(locked) = lockfile.plugins.get_mut(plugin) {
        locked.version = previous_version.clone();
        locked.digest = previous_digest.clone();
        locked.dependencies = package.manifest.dependencies.keys().cloned().collect();
    }
    let requested = requested_of(&installed)?;
    let plan = plan(
        state,
        &installed,
        Some(&previous_lockfile),
        lockfile,
        &requested,
        &BTreeMap::new(),
        None,
    )
    .await?;
    let details = json!({ "plugin": plugin.as_str(), "to": previous });
    let mut plan = plan;
    for row in &mut plan.upserts {
        if row.plugin == plugin.as_str() {
            // Rolling back again returns to the version rolled back from.
            row.previous_version = Some(existing.installation.version.clone());
            row.previous_digest = Some(existing.installation.digest.clone());
            // A requirement the old version does not meet (the update raised it) would take the
            // space forward again at its next change, unasked: the rollback holds the old
            // version exactly until the next update.
            let met = row.requirement.as_deref().is_none_or(|requirement| {
                VersionReq::parse(requirement)
                    .is_ok_and(|requirement| requirement.matches(&previous_version))
            });
            if !met {
                row.requirement = Some(format!("={previous}"));
            }
        }
    }
    for event in &mut plan.events {
        if event.plugin == plugin.as_str() && event.kind == "updated" {
            event.kind = "rolled_back".into();
        }
    }
    apply(
        state,
        &caller.actor(),
        &space,
        plan,
        "installation.rollback",
        details,
        false,
    )
    .await
    .map_err(|err| err.into_api("rollback_failed"))
}

/// Uninstalls `plugin` and the dependencies nothing else needs; their key-value data goes
/// too unless `keep_data`.
pub async fn uninstall(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    keep_data: bool,
) -> ApiResult<BTreeMap<String, String>> {
    replanned(|| uninstall_planned(state, caller, space, plugin, keep_data)).await
}

/// One attempt at [`uninstall`], planned from the space as stored now.
async fn uninstall_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    keep_data: bool,
) -> ApiResult<BTreeMap<String, String>> {
    let (_lock, space, installed) = begin(state, space).await?;
    let existing = installed
        .get(plugin)
        .ok_or_else(|| not_installed(plugin, &space))?;
    let needed_by = dependents(&space, plugin)?;
    if !needed_by.is_empty() {
        return Err(ApiError::conflict(
            "required_by",
            format!(
                "{plugin} is needed by {}; uninstall that first",
                needed_by.join(", ")
            ),
        ));
    }
    if existing.installation.requirement.is_none() {
        return Err(ApiError::conflict(
            "installed_as_dependency",
            format!(
                "{plugin} was installed as a dependency and goes with the plugins that need it"
            ),
        ));
    }
    let mut requested = requested_of(&installed)?;
    requested.remove(plugin);
    let previous = lockfile_of(&space)?;
    let lockfile = resolve(state, caller, &space, &requested, previous.as_ref()).await?;
    let plan = plan(
        state,
        &installed,
        previous.as_ref(),
        lockfile,
        &requested,
        &BTreeMap::new(),
        None,
    )
    .await?;
    let details = json!({ "plugin": plugin.as_str(), "keep_data": keep_data });
    apply(
        state,
        &caller.actor(),
        &space,
        plan,
        "installation.uninstall",
        details,
        !keep_data,
    )
    .await
    .map_err(|err| err.into_api("uninstall_failed"))
}

/// Replaces an installation's config; a running installation restarts with it (the old
/// config keeps serving if the plugin does not start with the new one).
pub async fn set_config(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    config: Value,
) -> ApiResult<()> {
    replanned(|| set_config_planned(state, caller, space, plugin, config.clone())).await
}

/// One attempt at [`set_config`], planned from the space as stored now.
async fn set_config_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    config: Value,
) -> ApiResult<()> {
    let (_lock, space, installed) = begin(state, space).await?;
    if !installed.contains_key(plugin) {
        return Err(not_installed(plugin, &space));
    }
    let lockfile = lockfile_of(&space)?.unwrap_or_default();
    let requested = requested_of(&installed)?;
    let configs = BTreeMap::from([(plugin.clone(), config)]);
    let plan = plan(
        state,
        &installed,
        Some(&lockfile),
        lockfile.clone(),
        &requested,
        &configs,
        None,
    )
    .await?;
    let details = json!({ "plugin": plugin.as_str() });
    apply(
        state,
        &caller.actor(),
        &space,
        plan,
        "installation.config",
        details,
        false,
    )
    .await
    .map(|_| ())
    .map_err(|err| err.into_api("config_rejected"))
}

/// Switches an installation off (`enabled == false`) or on again.
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    enabled: bool,
) -> ApiResult<()> {
    replanned(|| set_enabled_planned(state, caller, space, plugin, enabled)).await
}

/// One attempt at [`set_enabled`], planned from the space as stored now.
async fn set_enabled_planned(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    enabled: bool,
) -> ApiResult<()> {
    let (_lock, space, installed) = begin(state, space).await?;
    let existing = installed
        .get(plugin)
        .ok_or_else(|| not_installed(plugin, &space))?;
    let is_enabled = existing.installation.status != InstallationStatus::Disabled;
    if is_enabled == enabled {
        return Ok(());
    }
    let host = host(state)?;
    if enabled {
        let spec = running_spec(state, &space, &existing.installation).await?;
        host.swap(spec)
            .await
            .map_err(|err| load_failed("enable_failed", plugin, &err))?;
    } else {
        let needed_by = dependents(&space, plugin)?;
        let running_dependents: Vec<&String> = needed_by
            .iter()
            .filter(|dependent| {
                installed.iter().any(|(name, record)| {
                    name.as_str() == dependent.as_str()
                        && record.installation.status != InstallationStatus::Disabled
                })
            })
            .collect();
        if !running_dependents.is_empty() {
            return Err(ApiError::conflict(
                "required_by",
                format!(
                    "{plugin} is needed by {}; disable that first",
                    running_dependents
                        .iter()
                        .map(|name| name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let _ = host.unload(&host_space(space.id), plugin).await;
    }
    let (status, kind) = if enabled {
        (InstallationStatus::Active, "enabled")
    } else {
        (InstallationStatus::Disabled, "disabled")
    };
    let change = status_change(
        &existing.installation,
        status,
        None,
        event(plugin, kind, None, None),
        json!({ "plugin": plugin.as_str() }),
    );
    commit(state, &caller.actor(), &space, &change).await?;
    Ok(())
}

/// Deletes a space: its plugins stop, then everything it holds goes.
pub async fn delete_space(state: &AppState, caller: &Caller, space: &Space) -> ApiResult<()> {
    let _lock = state.space_locks.lock(space.id).await;
    if let Some(host) = state.plugins.running() {
        for record in state.db.installations(space.id).await? {
            if let Ok(plugin) = parse_plugin(&record.installation.plugin) {
                let _ = host.unload(&host_space(space.id), &plugin).await;
            }
        }
    }
    state.db.delete_space(&caller.actor(), space).await?;
    forget(state, space.id);
    Ok(())
}
