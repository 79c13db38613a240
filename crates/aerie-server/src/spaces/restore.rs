//! Bringing every space's plugins back after a start.

use std::collections::HashMap;

use aerie_db::{Actor, InstallationRecord, InstallationStatus, Space};
use aerie_host::InstallationSpec;
use serde_json::json;

use super::apply::{host, running_spec};
use super::follow::{commit, mark_running};
use super::parse_plugin;
use super::plan::{event, status_change};
use super::resolution::policy_refusal;
use crate::error::ApiResult;
use crate::state::AppState;

/// Loads every space's installations after a start; those that do not load are marked
/// failed with the reason, and those that failed before and load now are active again. An
/// installation or a space that cannot be read is logged and left to the follower, which tries
/// it again; everything else is restored all the same. Fails only when the spaces cannot be
/// listed.
pub async fn restore_all(state: &AppState) -> ApiResult<()> {
    let mut specs = Vec::new();
    let mut rows: HashMap<String, (i64, InstallationRecord)> = HashMap::new();
    let mut spaces: HashMap<i64, Space> = HashMap::new();
    for space in state.db.all_spaces().await? {
        match space_specs(state, &space).await {
            Ok((space, loads, complete)) => {
                for (spec, record) in loads {
                    rows.insert(spec.id.clone(), (space.id, record));
                    specs.push(spec);
                }
                // A space not read whole is left to the follower, which tries it again.
                if complete {
                    spaces.insert(space.id, space);
                }
            }
            Err(err) => {
                tracing::error!(space = %space.name, error = %err.message, "cannot restore a space's plugins; the follower tries again");
            }
        }
    }
    let ids: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();
    let report = match specs.is_empty() {
        true => None,
        false => Some(host(state)?.load(specs).await),
    };
    for (id, load) in ids
        .iter()
        .zip(report.iter().flat_map(|report| &report.plugins))
    {
        let (space_id, record) = &rows[id];
        let installation = &record.installation;
        let (status, reason, kind) = match &load.outcome {
            Ok(()) if installation.status == InstallationStatus::Failed => {
                (InstallationStatus::Active, None, "restored")
            }
            Ok(()) => continue,
            Err(err) => (
                InstallationStatus::Failed,
                Some(format!("did not start: {err}")),
                "failed",
            ),
        };
        if installation.status == status && installation.status_reason == reason {
            continue;
        }
        let Some(space) = spaces.get_mut(space_id) else {
            continue;
        };
        let plugin = parse_plugin(&installation.plugin)?;
        let change = status_change(
            installation,
            status,
            reason,
            event(&plugin, kind, None, None),
            json!({ "plugin": plugin.as_str() }),
        );
        match commit(state, &Actor::system(), space, &change).await {
            Ok(revision) => space.revision = revision,
            Err(err) => {
                // Another replica changed the space meanwhile: the follower catches up.
                tracing::warn!(space = %space.name, %plugin, error = %err.message, "could not record how a plugin started");
                spaces.remove(space_id);
            }
        }
    }
    for space in spaces.values() {
        mark_running(state, space);
    }
    if let Some(report) = report {
        tracing::info!(
            installations = report.plugins.len(),
            failed = report.failures().len(),
            ms = report.total.as_millis() as u64,
            "restored the spaces' plugins"
        );
    }
    Ok(())
}

/// What to load of `space`: its installations that its policy still allows (those it no
/// longer allows are marked failed, with the reason), with the space as it is then and whether
/// every installation could be read (one that could not is logged and left out).
async fn space_specs(
    state: &AppState,
    space: &Space,
) -> ApiResult<(Space, Vec<(InstallationSpec, InstallationRecord)>, bool)> {
    let mut space = space.clone();
    let mut loads = Vec::new();
    let mut complete = true;
    for record in state.db.installations(space.id).await? {
        if record.installation.status == InstallationStatus::Disabled {
            continue;
        }
        match installation_spec(state, &mut space, &record).await {
            Ok(Some(spec)) => loads.push((spec, record)),
            Ok(None) => {}
            Err(err) => {
                complete = false;
                tracing::error!(space = %space.name, plugin = %record.installation.plugin, error = %err.message, "cannot restore an installation");
            }
        }
    }
    Ok((space, loads, complete))
}

/// What to load for one installation, or `None` when the space's policy no longer allows it
/// (it is then marked failed, and `space`'s revision follows).
async fn installation_spec(
    state: &AppState,
    space: &mut Space,
    record: &InstallationRecord,
) -> ApiResult<Option<InstallationSpec>> {
    let plugin = parse_plugin(&record.installation.plugin)?;
    if let Some((_, refusal)) =
        policy_refusal(state, space, &plugin, &record.installation.version).await?
    {
        // The policy was set, or the certification withdrawn, after it was installed.
        tracing::warn!(space = %space.name, plugin = %plugin, "{refusal}");
        if record.installation.status_reason.as_deref() != Some(refusal.as_str()) {
            let change = status_change(
                &record.installation,
                InstallationStatus::Failed,
                Some(refusal),
                event(&plugin, "failed", None, None),
                json!({ "plugin": plugin.as_str() }),
            );
            space.revision = commit(state, &Actor::system(), space, &change).await?;
        }
        return Ok(None);
    }
    Ok(Some(
        running_spec(state, space, &record.installation).await?,
    ))
}
