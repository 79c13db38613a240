//! Planning a change: from what a space has installed to a new lockfile, with packages
//! fetched, configs checked and permissions consented, as rows and events ready to write.
//! Nothing changes here.

use std::collections::BTreeMap;

use aerie_api_types::PermissionsView;
use aerie_core::config::check_config;
use aerie_core::name::PluginName;
use aerie_db::{Installation, InstallationRecord, InstallationStatus, NewEvent, SpaceChange};
use aerie_resolve::Lockfile;
use semver::VersionReq;
use serde_json::{Value, json};

use super::apply::{Step, package};
use super::corrupt;
use super::resolution::load_order;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub(super) fn config_error(
    plugin: &PluginName,
    problems: Vec<aerie_core::config::ConfigProblem>,
) -> ApiError {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    ApiError::unprocessable(
        "invalid_config",
        format!("the config of {plugin} is not valid: {}", lines.join("; ")),
    )
    .with_details(json!({
        "problems": problems
            .iter()
            .map(|problem| json!({ "field": problem.field, "message": problem.message }))
            .collect::<Vec<_>>()
    }))
}

/// A change to a space, checked and ready: the host steps, the rows, the events.
pub(super) struct Plan {
    pub(super) lockfile: Option<Lockfile>,
    pub(super) steps: Vec<Step>,
    pub(super) removals: Vec<PluginName>,
    pub(super) upserts: Vec<Installation>,
    pub(super) events: Vec<NewEvent>,
    /// `plugin` → `from -> to`, for the answer.
    pub(super) changed: BTreeMap<String, String>,
}

pub(super) fn event(
    plugin: &PluginName,
    kind: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> NewEvent {
    NewEvent {
        plugin: plugin.to_string(),
        kind: kind.to_string(),
        from_version: from.map(str::to_string),
        to_version: to.map(str::to_string),
        message: None,
    }
}

/// A change of one installation's status and reason (the reason also becomes the event's
/// message), with its event and audit action `installation.KIND`.
pub(super) fn status_change(
    installation: &Installation,
    status: InstallationStatus,
    reason: Option<String>,
    event: NewEvent,
    details: Value,
) -> SpaceChange {
    SpaceChange {
        upserts: vec![Installation {
            status,
            status_reason: reason.clone(),
            ..installation.clone()
        }],
        action: format!("installation.{}", event.kind),
        events: vec![NewEvent {
            message: reason,
            ..event
        }],
        details,
        ..SpaceChange::default()
    }
}

/// What it takes to go from `installed` to `lockfile`: packages fetched, configs checked,
/// permissions consented, rows and events written out. Changes nothing.
#[tracing::instrument(name = "space.plan", skip_all)]
pub(super) async fn plan(
    state: &AppState,
    installed: &BTreeMap<PluginName, InstallationRecord>,
    previous: Option<&Lockfile>,
    lockfile: Lockfile,
    requested: &BTreeMap<PluginName, VersionReq>,
    configs: &BTreeMap<PluginName, Value>,
    accept: Option<&BTreeMap<String, PermissionsView>>,
) -> ApiResult<Plan> {
    let mut plan = Plan {
        lockfile: None,
        steps: Vec::new(),
        removals: Vec::new(),
        upserts: Vec::new(),
        events: Vec::new(),
        changed: BTreeMap::new(),
    };
    let allowed = state.config.plugin_limits.installations_per_space;
    if lockfile.plugins.len() > allowed && lockfile.plugins.len() > installed.len() {
        return Err(ApiError::unprocessable(
            "space_installation_limit",
            format!(
                "the space would hold {} plugins (dependencies included); a space may hold {allowed}",
                lockfile.plugins.len()
            ),
        ));
    }
    let mut unconsented = BTreeMap::new();
    for plugin in load_order(&lockfile) {
        let locked = &lockfile.plugins[&plugin];
        let before = installed.get(&plugin);
        let version = locked.version.to_string();
        let same_version = before.is_some_and(|before| before.installation.digest == locked.digest);
        let new_config = configs.get(&plugin);
        let requirement = requested.get(&plugin).map(ToString::to_string);
        if same_version && new_config.is_none() {
            let before = before.expect("same_version implies installed");
            if before.installation.requirement != requirement {
                plan.upserts.push(Installation {
                    requirement,
                    ..before.installation.clone()
                });
            }
            continue;
        }
        let package = package(state, &locked.digest).await?;
        let needed = crate::consent::permissions_of(&package.manifest, &state.config.plugin_limits);
        let granted: Option<PermissionsView> =
            before.and_then(|before| serde_json::from_str(&before.installation.granted).ok());
        // The same version asks for nothing new: a config change needs no consent again, even
        // for an installation consented to before consent covered routes and resources.
        let consented = same_version
            || granted.is_some_and(|granted| crate::consent::covers(&granted, &needed))
            || accept
                .and_then(|accept| accept.get(plugin.as_str()))
                .is_some_and(|accepted| crate::consent::covers(accepted, &needed));
        if !consented && needed != PermissionsView::default() {
            unconsented.insert(plugin.to_string(), needed.clone());
        }
        let config = match (new_config, before) {
            (Some(config), _) => config.clone(),
            (None, Some(before)) => {
                serde_json::from_str(&before.installation.config).map_err(corrupt)?
            }
            (None, None) => json!({}),
        };
        let config = check_config(package.manifest.config.as_ref(), config)
            .map_err(|problems| config_error(&plugin, problems))?;
        let (previous_version, previous_digest) = match before {
            Some(before) if !same_version => (
                Some(before.installation.version.clone()),
                Some(before.installation.digest.clone()),
            ),
            Some(before) => (
                before.installation.previous_version.clone(),
                before.installation.previous_digest.clone(),
            ),
            None => (None, None),
        };
        let disabled =
            before.is_some_and(|before| before.installation.status == InstallationStatus::Disabled);
        plan.upserts.push(Installation {
            plugin: plugin.to_string(),
            requirement,
            version: version.clone(),
            digest: locked.digest.clone(),
            previous_version,
            previous_digest,
            status: if disabled {
                InstallationStatus::Disabled
            } else {
                InstallationStatus::Active
            },
            status_reason: None,
            config: config.to_string(),
            granted: serde_json::to_string(&needed).map_err(ApiError::internal)?,
        });
        let from = before.map(|before| before.installation.version.as_str());
        if !same_version {
            let kind = if before.is_some() {
                "updated"
            } else {
                "installed"
            };
            plan.events.push(event(&plugin, kind, from, Some(&version)));
            plan.changed.insert(
                plugin.to_string(),
                format!("{} -> {version}", from.unwrap_or("none")),
            );
        } else {
            plan.events
                .push(event(&plugin, "config_changed", None, None));
        }
        if !disabled {
            plan.steps.push(Step {
                plugin,
                package,
                config,
                before: before.cloned(),
            });
        }
    }
    if !unconsented.is_empty() {
        let sentences: Vec<String> = unconsented
            .iter()
            .map(|(plugin, permissions)| {
                format!("{plugin} may {}", permissions.sentences.join("; "))
            })
            .collect();
        return Err(ApiError::conflict(
            "permissions_not_accepted",
            format!(
                "accept these permissions to go on: {}",
                sentences.join(". ")
            ),
        )
        .with_details(json!({ "permissions": unconsented })));
    }
    // Dependents go before what they depend on: the old lockfile's load order, reversed,
    // then anything installed that it did not list.
    let gone = |plugin: &PluginName| {
        installed.contains_key(plugin) && !lockfile.plugins.contains_key(plugin)
    };
    let mut removals: Vec<PluginName> = previous
        .map(load_order)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .filter(|plugin| gone(plugin))
        .collect();
    for plugin in installed.keys() {
        if gone(plugin) && !removals.contains(plugin) {
            removals.push(plugin.clone());
        }
    }
    for plugin in &removals {
        let from = installed[plugin].installation.version.as_str();
        plan.events
            .push(event(plugin, "uninstalled", Some(from), None));
        plan.changed
            .insert(plugin.to_string(), format!("{from} -> none"));
    }
    plan.removals = removals;
    plan.lockfile = Some(lockfile);
    Ok(plan)
}
