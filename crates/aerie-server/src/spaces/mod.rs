//! Spaces at work: resolving a space's plugins, driving the host through installs, updates,
//! rollbacks and uninstalls, sealing secrets, and bringing every space back after a restart.
//!
//! Every change follows one order: resolve and check everything first (nothing changes yet,
//! [`resolution`] and [`plan`]); then change the host, new versions beside the old ones, each
//! passing `init` and `health` before it serves (a failure puts back what was changed and the
//! old versions never stop); then write the change, its events and audit row in one
//! transaction ([`apply`]). Changes to one space queue behind each other. [`changes`] holds the
//! operations built from those steps, [`secrets`] the space's data key and what it seals,
//! [`restore`] the start that brings every space back, [`follow`] the changes other replicas
//! make, [`views`] what the API shows.

mod apply;
mod changes;
mod follow;
mod plan;
mod resolution;
mod restore;
mod secrets;
mod views;

use aerie_core::manifest::Manifest;
use aerie_core::name::PluginName;
use aerie_host::Limits;
use semver::VersionReq;

use crate::error::{ApiError, ApiResult};

pub use apply::SpaceLocks;
pub use changes::{delete_space, install, rollback, set_config, set_enabled, uninstall, update};
pub use follow::{RECONCILE_EVERY, RunningRevisions, follow, replica_view};
pub use resolution::requires_certified;
pub use restore::restore_all;
pub use secrets::{SpaceSecrets, new_space, rotate_master_key, set_secret};
pub use views::installation_views;

/// The host's name for a space: by id, so a rename moves nothing, and with a `:` no space
/// name has, so it never meets a local space (`aerie run`'s `default`).
pub fn host_space(space_id: i64) -> String {
    format!("space:{space_id}")
}

/// The limits an installation runs under: what its manifest asks for within the operator's
/// ceiling, else the operator's defaults.
pub fn limits_for(manifest: &Manifest, tenants: &crate::limits::PluginLimitsConfig) -> Limits {
    Limits::for_manifest(manifest, tenants.defaults(), tenants.ceiling())
}

pub(super) fn parse_plugin(text: &str) -> ApiResult<PluginName> {
    text.parse()
        .map_err(|err| ApiError::bad_request("invalid_plugin_name", format!("{err}")))
}

pub(super) fn parse_requirement(text: &str) -> ApiResult<VersionReq> {
    VersionReq::parse(text).map_err(|err| {
        ApiError::bad_request(
            "invalid_requirement",
            format!("{text:?} is not a version requirement: {err}"),
        )
    })
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("stored data is corrupt: {what}"))
}
