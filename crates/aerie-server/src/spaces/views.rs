//! A space's installations as the API shows them: stored rows joined with what the host runs.

use std::collections::HashMap;

use aerie_api_types::InstallationView;
use aerie_db::Space;

use super::resolution::lockfile_of;
use super::{corrupt, host_space, parse_plugin};
use crate::error::ApiResult;
use crate::state::AppState;

/// The installations of a space as the API shows them.
pub async fn installation_views(
    state: &AppState,
    space: &Space,
) -> ApiResult<Vec<InstallationView>> {
    let running: HashMap<String, aerie_host::RunningPlugin> = state
        .plugins
        .running()
        .map(|host| host.running())
        .unwrap_or_default()
        .into_iter()
        .filter(|running| running.space == host_space(space.id))
        .map(|running| (running.plugin.to_string(), running))
        .collect();
    let lockfile = lockfile_of(space)?.unwrap_or_default();
    let mut views = Vec::new();
    for record in state.db.installations(space.id).await? {
        let installation = &record.installation;
        let plugin = parse_plugin(&installation.plugin)?;
        let health = match running.get(&installation.plugin) {
            Some(running) => match &running.health {
                aerie_host::Health::Healthy => "healthy".to_string(),
                aerie_host::Health::Unhealthy { reason, .. } => format!("unhealthy: {reason}"),
            },
            None => "not running".to_string(),
        };
        let breaker = match running
            .get(&installation.plugin)
            .map(|running| running.breaker)
        {
            Some(aerie_host::breaker::BreakerState::Closed { .. }) => "closed",
            Some(aerie_host::breaker::BreakerState::Open { .. }) => "open",
            Some(aerie_host::breaker::BreakerState::Trial) => "trial",
            None => "not running",
        };
        let declared_secrets = match state
            .version(plugin.namespace(), plugin.name(), &installation.version)
            .await?
        {
            Some(version) => crate::views::manifest(&version)?.permissions.secrets,
            None => Vec::new(),
        };
        let secrets = state
            .db
            .installation_secrets(record.id)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        views.push(InstallationView {
            plugin: installation.plugin.clone(),
            version: installation.version.clone(),
            requirement: installation.requirement.clone(),
            status: installation.status.as_str().to_string(),
            status_reason: installation.status_reason.clone(),
            previous_version: installation.previous_version.clone(),
            serving: running
                .get(&installation.plugin)
                .map(|running| running.version.to_string()),
            health,
            breaker: breaker.to_string(),
            config: serde_json::from_str(&installation.config).map_err(corrupt)?,
            secrets,
            declared_secrets,
            permissions: serde_json::from_str(&installation.granted).map_err(corrupt)?,
            dependencies: lockfile
                .plugins
                .get(&plugin)
                .map(|locked| {
                    locked
                        .dependencies
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            endpoint: format!(
                "{}/{}/",
                state.plugin_origin.url(&space.name),
                installation.plugin
            ),
            created_at: crate::views::time(record.created_at),
            updated_at: crate::views::time(record.updated_at),
        });
    }
    Ok(views)
}
