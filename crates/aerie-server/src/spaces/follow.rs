//! Following what other replicas do to spaces. Every change to what a space runs raises the
//! space's revision in the change's own transaction ([`aerie_db::Database::commit_space`]);
//! each replica keeps the revision it runs of each space and brings a space whose stored
//! revision differs up to date: what the host runs is compared with the stored installations
//! (digest and config), the rest loaded, swapped or unloaded with the host's usual swap, so a
//! peer's change is served here without a restart and without a gap.
//!
//! A replica hears of a change at once through PostgreSQL notifications (sent when the change
//! commits) and compares every space every [`RECONCILE_EVERY`] whatever it heard, since
//! notifications sent while its listener was away are not replayed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use aerie_core::name::PluginName;
use aerie_db::{Actor, InstallationStatus, Space, SpaceChange, SpaceListener, SpaceNotice};
use tokio::sync::watch;

use super::apply::{host, running_spec};
use super::host_space;
use super::resolution::{installed, load_order, lockfile_of};
use crate::error::ApiResult;
use crate::state::AppState;

/// How often every space's stored revision is compared with the one running here.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// The revision of each space this replica runs: what its host runs is what the database
/// held at that revision.
#[derive(Default)]
pub struct RunningRevisions(Mutex<HashMap<i64, i64>>);

impl RunningRevisions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        self.0.lock().unwrap_or_else(|err| err.into_inner())
    }

    /// The revision of the space running here, if it was loaded.
    pub fn get(&self, space_id: i64) -> Option<i64> {
        self.map().get(&space_id).copied()
    }

    fn set(&self, space_id: i64, revision: i64) {
        self.map().insert(space_id, revision);
    }

    fn forget(&self, space_id: i64) {
        self.map().remove(&space_id);
    }

    /// The spaces whose stored revision (`stored`, by id) is not the one running here, and
    /// those running here that are no longer stored.
    fn behind(&self, stored: &[(i64, i64)]) -> Vec<i64> {
        let running = self.map();
        let mut behind: Vec<i64> = stored
            .iter()
            .filter(|(id, revision)| running.get(id) != Some(revision))
            .map(|(id, _)| *id)
            .collect();
        let stored: std::collections::HashSet<i64> = stored.iter().map(|(id, _)| *id).collect();
        behind.extend(running.keys().filter(|id| !stored.contains(id)));
        behind
    }
}

/// Writes a change to a space and records that this replica runs its new revision: the host
/// already runs what the change writes. When the change is not written, what runs here may
/// differ from what is stored (the host was changed for it, or another replica changed the
/// space), so the space is caught up with before the error is answered.
pub(super) async fn commit(
    state: &AppState,
    actor: &Actor,
    space: &Space,
    change: &SpaceChange,
) -> ApiResult<i64> {
    match state.db.commit_space(actor, space, change).await {
        Ok(revision) => {
            state.space_revisions.set(space.id, revision);
            Ok(revision)
        }
        Err(err) => {
            state.space_revisions.forget(space.id);
            let caught_up = async {
                if let Some(stored) = state.db.space_by_id(space.id).await? {
                    catch_up(state, &stored).await?;
                }
                ApiResult::Ok(())
            };
            if let Err(caught) = caught_up.await {
                tracing::warn!(space = %space.name, error = %caught.message, "could not catch up after a change that was not written");
            }
            Err(err.into())
        }
    }
}

/// Forgets the space: it was deleted here.
pub(super) fn forget(state: &AppState, space_id: i64) {
    state.space_revisions.forget(space_id);
}

/// Records that this replica runs `space` as stored at its revision.
pub(super) fn mark_running(state: &AppState, space: &Space) {
    state.space_revisions.set(space.id, space.revision);
}

/// Brings the host up to `space` as stored, unless it runs that revision already. The caller
/// holds the space's lock. A plugin that does not load here is logged and left out; the
/// revision is recorded all the same, so a broken version is not retried every few seconds
/// (the next change or restart tries again).
pub(super) async fn catch_up(state: &AppState, space: &Space) -> ApiResult<()> {
    if state.space_revisions.get(space.id) == Some(space.revision) {
        return Ok(());
    }
    let host = host(state)?;
    let host_space = host_space(space.id);
    let mut running: HashMap<PluginName, aerie_host::RunningPlugin> = host
        .running()
        .into_iter()
        .filter(|running| running.space == host_space)
        .map(|running| (running.plugin.clone(), running))
        .collect();
    let stored = installed(state, space).await?;
    let wanted: BTreeMap<&PluginName, _> = stored
        .iter()
        .filter(|(_, record)| record.installation.status != InstallationStatus::Disabled)
        .collect();
    // What no longer runs goes first: it may depend on what is swapped next.
    let mut order = lockfile_of(space)?
        .map(|lockfile| load_order(&lockfile))
        .unwrap_or_default();
    order.extend(
        stored
            .keys()
            .filter(|plugin| !order.contains(plugin))
            .cloned()
            .collect::<Vec<_>>(),
    );
    for plugin in order
        .iter()
        .rev()
        .chain(running.keys().filter(|plugin| !order.contains(plugin)))
    {
        if running.contains_key(plugin)
            && !wanted.contains_key(plugin)
            && let Err(err) = host.unload(&host_space, plugin).await
        {
            tracing::warn!(space = %space.name, %plugin, error = %err, "could not stop a plugin another replica removed");
        }
    }
    running.retain(|plugin, _| wanted.contains_key(plugin));
    let mut swapped = 0;
    for plugin in &order {
        let Some(record) = wanted.get(plugin) else {
            continue;
        };
        let spec = match running_spec(state, space, &record.installation).await {
            Ok(spec) => spec,
            Err(err) => {
                tracing::error!(space = %space.name, %plugin, error = %err.message, "cannot load an installation");
                continue;
            }
        };
        let same = running
            .get(plugin)
            .is_some_and(|running| running.digest == spec.digest && running.config == spec.config);
        if same {
            continue;
        }
        swapped += 1;
        if let Err(err) = host.swap(spec).await {
            tracing::error!(space = %space.name, %plugin, version = %record.installation.version, error = %err, "a plugin another replica installed does not start here");
        }
    }
    let lag = (aerie_db::now_millis() - space.changed_at).max(0) as u64;
    state.metrics.space_caught_up(Duration::from_millis(lag));
    tracing::info!(space = %space.name, revision = space.revision, swapped, lag_ms = lag, "caught up with a space changed elsewhere");
    mark_running(state, space);
    Ok(())
}

/// Most spaces [`replica_view`] lists as behind.
const MAX_LISTED_BEHIND: usize = 100;

/// Where this replica stands with the spaces, for the operator.
pub async fn replica_view(state: &AppState) -> ApiResult<aerie_api_types::ReplicaView> {
    let stored = state.db.space_revisions().await?;
    let behind = state.space_revisions.behind(&stored);
    let mut listed = Vec::new();
    for space_id in behind.iter().take(MAX_LISTED_BEHIND) {
        // A space deleted since it was listed is no longer behind.
        if let Some(space) = state.db.space_by_id(*space_id).await? {
            listed.push(aerie_api_types::SpaceRevisionView {
                space: space.name,
                stored_revision: space.revision,
                running_revision: state.space_revisions.get(*space_id),
                lag_ms: (aerie_db::now_millis() - space.changed_at).max(0),
            });
        }
    }
    let current = stored
        .iter()
        .filter(|(id, revision)| state.space_revisions.get(*id) == Some(*revision))
        .count();
    Ok(aerie_api_types::ReplicaView {
        spaces: stored.len(),
        current,
        behind: listed,
    })
}

/// Catches up with the space `space_id` as stored now, taking its lock; a space deleted
/// elsewhere stops here.
async fn follow_space(state: &AppState, space_id: i64) -> ApiResult<()> {
    let _lock = state.space_locks.lock(space_id).await;
    match state.db.space_by_id(space_id).await? {
        Some(space) => catch_up(state, &space).await,
        None => {
            if state.space_revisions.get(space_id).is_some()
                && let Some(host) = state.plugins.running()
            {
                let host_space = host_space(space_id);
                for running in host
                    .running()
                    .into_iter()
                    .filter(|running| running.space == host_space)
                {
                    let _ = host.unload(&host_space, &running.plugin).await;
                }
            }
            state.space_revisions.forget(space_id);
            Ok(())
        }
    }
}

/// Compares every space's stored revision with the one running here and catches up with
/// those that differ.
async fn follow_all(state: &AppState) -> ApiResult<()> {
    let stored = state.db.space_revisions().await?;
    let mut still_behind = 0;
    for space_id in state.space_revisions.behind(&stored) {
        if let Err(err) = follow_space(state, space_id).await {
            still_behind += 1;
            tracing::warn!(space_id, error = %err.message, "could not catch up with a space");
        }
    }
    state.metrics.spaces_behind(still_behind);
    Ok(())
}

/// Follows the spaces other replicas change until `stop`: at once on a notice, and every
/// [`RECONCILE_EVERY`] for all of them. Starts once the spaces were restored.
pub async fn follow(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut restored = state.restored.subscribe();
    while !*restored.borrow_and_update() {
        let going = tokio::select! {
            changed = restored.changed() => changed.is_ok(),
            changed = stop.changed() => changed.is_ok() && !*stop.borrow(),
        };
        if !going {
            return;
        }
    }
    let mut listener: Option<SpaceListener> = None;
    let mut every = tokio::time::interval(RECONCILE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if listener.is_none() {
            match state.db.space_listener().await {
                Ok(connected) => listener = connected,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for space changes; comparing every space periodically")
                }
            }
        }
        let notice = async {
            match listener.as_mut() {
                Some(listener) => listener.next().await,
                None => std::future::pending().await,
            }
        };
        // What woke the follower, decided before any work so no guard lives across it.
        let woken = tokio::select! {
            changed = stop.changed() => match changed {
                Ok(()) if !*stop.borrow() => continue,
                _ => return,
            },
            _ = every.tick() => Ok(SpaceNotice::Lost),
            notice = notice => notice,
        };
        let outcome = match woken {
            Ok(SpaceNotice::Changed(space_id)) => follow_space(&state, space_id).await,
            Ok(SpaceNotice::Lost) => follow_all(&state).await,
            Err(err) => {
                tracing::warn!(error = %err, "the space listener failed; comparing every space");
                listener = None;
                follow_all(&state).await
            }
        };
        if let Err(err) = outcome {
            tracing::warn!(error = %err.message, "following space changes failed; trying again");
        }
    }
}
