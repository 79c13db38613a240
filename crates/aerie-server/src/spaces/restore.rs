//! Bringing every space's plugins back after a start.

use std::collections::HashMap;

use aerie_db::{Actor, InstallationRecord, InstallationStatus, Space};
use serde_json::json;

use super::apply::{host, running_spec};
use super::parse_plugin;
use super::plan::{event, status_change};
use super::resolution::policy_refusal;
use crate::error::ApiResult;
use crate::state::AppState;

/// Loads every space's installations after a start; those that do not load are marked
/// failed with the reason, and those that failed before and load now are active again.
pub async fn restore_all(state: &AppState) -> ApiResult<()> {
    let mut specs = Vec::new();
    let mut rows: HashMap<String, (Space, InstallationRecord)> = HashMap::new();
    for space in state.db.all_spaces().await? {
        for record in state.db.installations(space.id).await? {
            if record.installation.status == InstallationStatus::Disabled {
                continue;
            }
            let plugin = parse_plugin(&record.installation.plugin)?;
            if let Some((_, refusal)) =
                policy_refusal(state, &space, &plugin, &record.installation.version).await?
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
                    state
                        .db
                        .commit_space(&Actor::system(), &space, &change)
                        .await?;
                }
                continue;
            }
            match running_spec(state, &space, &record.installation).await {
                Ok(spec) => {
                    rows.insert(spec.id.clone(), (space.clone(), record));
                    specs.push(spec);
                }
                Err(err) => {
                    tracing::error!(space = %space.name, plugin = %record.installation.plugin, error = %err.message, "cannot restore an installation")
                }
            }
        }
    }
    if specs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = specs.iter().map(|spec| spec.id.clone()).collect();
    let report = host(state)?.load(specs).await;
    for (id, load) in ids.iter().zip(&report.plugins) {
        let (space, record) = &rows[id];
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
        let plugin = parse_plugin(&installation.plugin)?;
        let change = status_change(
            installation,
            status,
            reason,
            event(&plugin, kind, None, None),
            json!({ "plugin": plugin.as_str() }),
        );
        state
            .db
            .commit_space(&Actor::system(), space, &change)
            .await?;
    }
    tracing::info!(
        installations = report.plugins.len(),
        failed = report.failures().len(),
        ms = report.total.as_millis() as u64,
        "restored the spaces' plugins"
    );
    Ok(())
}
