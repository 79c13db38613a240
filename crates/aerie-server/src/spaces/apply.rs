//! Applying a planned change: the host first, each new version beside the old one, then the
//! rows in one transaction; a failure anywhere puts the host back as it was.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tracing::Instrument as _;

use aerie_core::config::config_pairs;
use aerie_core::digest::Digest;
use aerie_core::name::PluginName;
use aerie_core::package::{Package, read_package};
use aerie_db::{
    Actor, Installation, InstallationRecord, InstallationStatus, Space, SpaceChange,
    installation_scope,
};
use aerie_host::{Host, InstallationSpec, LoadError};
use aerie_resolve::Lockfile;
use axum::http::StatusCode;
use serde_json::Value;

use super::plan::Plan;
use super::resolution::{installed, policy_refusal};
use super::{corrupt, host_space, limits_for};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One lock per space, so that changes to a space run one at a time.
#[derive(Default)]
pub struct SpaceLocks(Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>);

impl SpaceLocks {
    pub(super) async fn lock(&self, space_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|err| err.into_inner());
            Arc::clone(locks.entry(space_id).or_default())
        };
        lock.lock_owned().await
    }
}

/// A package from blob storage, read as any package is (it was checked at publish).
pub(super) async fn package(state: &AppState, digest: &str) -> ApiResult<Package> {
    let parsed: Digest = digest.parse().map_err(corrupt)?;
    let bytes = state.blob(&parsed).await?;
    // Read with the limits it was published under, off the async threads: it is
    // decompressed, hashed and its component validated.
    let limits = state.config.package_limits();
    let package = tokio::task::spawn_blocking(move || read_package(&bytes, &limits))
        .await
        .map_err(ApiError::internal)?
        .map_err(corrupt)?;
    if package.digest != parsed {
        return Err(corrupt(format!("the blob {digest} has another digest")));
    }
    Ok(package)
}

pub(super) fn spec_of(
    tenants: &crate::limits::PluginLimitsConfig,
    space_id: i64,
    package: &Package,
    config: &Value,
    previous_version: Option<String>,
) -> InstallationSpec {
    let plugin = package.manifest.plugin.name.as_str();
    InstallationSpec {
        id: installation_scope(space_id, plugin),
        space: host_space(space_id),
        manifest: Arc::new(package.manifest.clone()),
        digest: package.digest.to_string(),
        component: bytes::Bytes::copy_from_slice(package.component_bytes()),
        config: config_pairs(config),
        allowed_outbound: None,
        limits: limits_for(&package.manifest, tenants),
        previous_version,
    }
}

pub(super) fn load_failed(code: &'static str, plugin: &PluginName, err: &LoadError) -> ApiError {
    ApiError::unprocessable(code, format!("{plugin} did not start: {err}"))
}

/// The host, created on first use.
pub(super) fn host(state: &AppState) -> ApiResult<Host> {
    state.plugins.get().cloned().map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "host_unavailable",
            err.to_string(),
        )
    })
}

/// One plugin's part in a change: what runs after it, and what ran before.
pub(super) struct Step {
    pub(super) plugin: PluginName,
    pub(super) package: Package,
    pub(super) config: Value,
    /// The installation before the change, if there was one.
    pub(super) before: Option<InstallationRecord>,
}

/// Switches the host to `steps`, in order, each beside its old version; on a failure puts
/// back what it switched and names the plugin that failed.
#[tracing::instrument(name = "space.switch", skip_all, fields(space = %space.name, steps = steps.len()))]
pub(super) async fn switch(
    state: &AppState,
    space: &Space,
    steps: &[Step],
) -> Result<(), (PluginName, LoadError)> {
    // A change that starts nothing (an uninstall) needs no host, even one that cannot start.
    let Some(first) = steps.first() else {
        return Ok(());
    };
    let host =
        host(state).map_err(|err| (first.plugin.clone(), LoadError::NotRunning(err.message)))?;
    for (done, step) in steps.iter().enumerate() {
        let previous = step
            .before
            .as_ref()
            .map(|before| before.installation.version.clone());
        let spec = spec_of(
            &state.config.plugin_limits,
            space.id,
            &step.package,
            &step.config,
            previous,
        );
        if let Err(err) = host.swap(spec).await {
            restore(state, space, &host, &steps[..done]).await;
            return Err((step.plugin.clone(), err));
        }
    }
    Ok(())
}

/// Puts the host back as it was before `steps` (best effort: the old versions ran before).
async fn restore(state: &AppState, space: &Space, host: &Host, steps: &[Step]) {
    for step in steps.iter().rev() {
        let outcome = match &step.before {
            Some(before) if before.installation.status == InstallationStatus::Active => {
                match running_spec(state, space, &before.installation).await {
                    Ok(spec) => host.swap(spec).await.map(|_| ()),
                    Err(err) => Err(LoadError::NotRunning(err.message)),
                }
            }
            _ => host.unload(&host_space(space.id), &step.plugin).await,
        };
        if let Err(err) = outcome {
            tracing::error!(space = %space.name, plugin = %step.plugin, error = %err, "could not put back the version that ran before");
        }
    }
}

/// The spec of an installation as stored.
pub(super) async fn running_spec(
    state: &AppState,
    space: &Space,
    installation: &Installation,
) -> ApiResult<InstallationSpec> {
    let package = package(state, &installation.digest).await?;
    let config: Value = serde_json::from_str(&installation.config).map_err(corrupt)?;
    Ok(spec_of(
        &state.config.plugin_limits,
        space.id,
        &package,
        &config,
        None,
    ))
}

/// Why applying a plan failed.
pub(super) enum ApplyError {
    /// A plugin did not start; everything was put back.
    Start(PluginName, LoadError),
    /// Anything else.
    Api(ApiError),
}

impl From<ApiError> for ApplyError {
    fn from(err: ApiError) -> ApplyError {
        ApplyError::Api(err)
    }
}

impl ApplyError {
    /// The answer to the client, with `code` for a plugin that did not start.
    pub(super) fn into_api(self, code: &'static str) -> ApiError {
        match self {
            ApplyError::Start(plugin, err) => load_failed(code, &plugin, &err),
            ApplyError::Api(err) => err,
        }
    }
}

/// Applies `plan`: the host first, then the rows in one transaction.
#[tracing::instrument(name = "space.apply", skip_all, fields(space = %space.name, action))]
pub(super) async fn apply(
    state: &AppState,
    actor: &Actor,
    space: &Space,
    plan: Plan,
    action: &str,
    details: Value,
    delete_state: bool,
) -> Result<BTreeMap<String, String>, ApplyError> {
    // A policy refuses a new version before anything changes.
    for step in &plan.steps {
        let new_version = step
            .before
            .as_ref()
            .is_none_or(|before| before.installation.digest != step.package.digest.to_string());
        let version = step.package.manifest.plugin.version.to_string();
        if new_version
            && let Some((code, refusal)) =
                policy_refusal(state, space, &step.plugin, &version).await?
        {
            return Err(ApplyError::Api(ApiError::conflict(code, refusal)));
        }
    }
    switch(state, space, &plan.steps)
        .await
        .map_err(|(plugin, err)| ApplyError::Start(plugin, err))?;
    if !plan.removals.is_empty() {
        let host = host(state)?;
        for plugin in &plan.removals {
            // A disabled installation does not run; there is nothing to stop.
            let _ = host.unload(&host_space(space.id), plugin).await;
        }
    }
    let change = SpaceChange {
        lockfile: plan.lockfile.as_ref().map(Lockfile::to_toml),
        upserts: plan.upserts,
        removals: plan.removals.iter().map(ToString::to_string).collect(),
        delete_state: if delete_state {
            plan.removals.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        },
        events: plan.events,
        action: action.to_string(),
        details,
    };
    if let Err(err) = super::follow::commit(state, actor, space, &change)
        .instrument(tracing::info_span!("space.commit"))
        .await
    {
        // Not written: the host was caught up with what is stored (the old versions, or a
        // newer change from another replica).
        return Err(ApplyError::Api(err));
    }
    Ok(plan.changed)
}

/// A change's start: the space's lock (held until the change is written), the space as
/// stored now (a change queued behind another sees its result), and its installations.
pub(super) async fn begin(
    state: &AppState,
    space: &Space,
) -> ApiResult<(
    tokio::sync::OwnedMutexGuard<()>,
    Space,
    BTreeMap<PluginName, InstallationRecord>,
)> {
    let lock = state.space_locks.lock(space.id).await;
    let space = current(state, space).await?;
    // A change is planned from the stored state, so the host must run it first: another
    // replica's change this one has not caught up with yet would otherwise go unserved.
    super::follow::catch_up(state, &space).await?;
    let installed = installed(state, &space).await?;
    Ok((lock, space, installed))
}

/// The space as stored now.
pub(super) async fn current(state: &AppState, space: &Space) -> ApiResult<Space> {
    state.db.space_by_id(space.id).await?.ok_or_else(|| {
        ApiError::not_found(
            "space_not_found",
            format!("there is no space `{}`", space.name),
        )
    })
}
