//! Which versions a space runs: the space's trust policy, the catalogue as the caller may see
//! it, and the resolver's lockfile.

use std::collections::{BTreeMap, BTreeSet};

use aerie_core::name::PluginName;
use aerie_db::{InstallationRecord, Space};
use aerie_resolve::{Candidate, Catalog, Lockfile, Request, ResolveError};
use semver::{Version, VersionReq};
use serde_json::json;

use super::{corrupt, parse_plugin, parse_requirement};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Whether `space` installs only certified versions: its own policy or the server's.
pub fn requires_certified(state: &AppState, space: &Space) -> bool {
    state.config.require_certified || space.require_certified
}

/// Why `space` may not run `plugin` `version`, if its policy refuses it.
pub(super) async fn certification_refusal(
    state: &AppState,
    space: &Space,
    plugin: &PluginName,
    version: &str,
) -> ApiResult<Option<String>> {
    if !requires_certified(state, space) {
        return Ok(None);
    }
    let record = state
        .db
        .version(plugin.namespace(), plugin.name(), version)
        .await?;
    if record.is_some_and(|record| state.registry_key.certifies(&record)) {
        return Ok(None);
    }
    Ok(Some(format!(
        "{plugin} {version} is not certified by this registry, and the space `{}` runs only certified versions",
        space.name
    )))
}

/// Why the space's policy refuses `plugin` `version` for not being signed by its publisher,
/// if it does: the version must carry a signature that verifies, over the package's bytes,
/// with a key registered and not revoked on its namespace now.
pub(super) async fn signature_refusal(
    state: &AppState,
    space: &Space,
    plugin: &PluginName,
    version: &str,
) -> ApiResult<Option<String>> {
    if !space.require_signed {
        return Ok(None);
    }
    let refusal = |why: String| {
        Ok(Some(format!(
            "{plugin} {version} {why}, and the space `{}` runs only versions signed by their publisher",
            space.name
        )))
    };
    let Some(record) = state
        .db
        .version(plugin.namespace(), plugin.name(), version)
        .await?
    else {
        return refusal("is not published here".into());
    };
    let Some(signature) = &record.signature else {
        return refusal("is not signed".into());
    };
    let Some(namespace) = state.namespace(plugin.namespace()).await? else {
        return refusal("has no namespace".into());
    };
    let digest = record.digest.parse().map_err(corrupt)?;
    let bytes = state.blob(&digest).await?;
    let parsed_version = semver::Version::parse(version).map_err(corrupt)?;
    match crate::routes::plugins::check_signature(
        state,
        &namespace,
        &bytes,
        plugin,
        &parsed_version,
        signature,
    )
    .await
    {
        Ok(_) => Ok(None),
        Err(err) => refusal(format!(
            "has a signature that does not verify ({})",
            err.message
        )),
    }
}

/// Why the space's trust policy refuses `plugin` `version`, if it does: its code and reason.
pub(super) async fn policy_refusal(
    state: &AppState,
    space: &Space,
    plugin: &PluginName,
    version: &str,
) -> ApiResult<Option<(&'static str, String)>> {
    if let Some(refusal) = certification_refusal(state, space, plugin, version).await? {
        return Ok(Some(("certification_required", refusal)));
    }
    Ok(signature_refusal(state, space, plugin, version)
        .await?
        .map(|refusal| ("signature_required", refusal)))
}

/// A published version as resolution sees it, from its stored manifest.
pub(super) fn candidate(
    state: &AppState,
    record: &aerie_db::VersionRecord,
) -> ApiResult<Candidate> {
    let manifest = crate::views::manifest(record)?;
    Ok(Candidate {
        version: Version::parse(&record.version).map_err(corrupt)?,
        digest: record.digest.clone(),
        yanked: record.yanked,
        certified: state.registry_key.certifies(record),
        api: manifest.plugin.api,
        dependencies: manifest.dependencies,
    })
}

/// Every published version of the requested plugins and everything they may depend on, as
/// far as `caller` may see: a plugin in a namespace hidden from the caller has no versions.
pub(super) async fn gather(
    state: &AppState,
    caller: &Caller,
    requested: &BTreeMap<PluginName, VersionReq>,
) -> ApiResult<Catalog> {
    let mut catalog = Catalog::default();
    let mut pending: BTreeSet<PluginName> = requested.keys().cloned().collect();
    while let Some(plugin) = pending.pop_first() {
        if catalog.contains(&plugin) {
            continue;
        }
        let visible = match state.namespace(plugin.namespace()).await? {
            Some(namespace) => caller.can_see(state, &namespace, Scope::Download).await?,
            None => false,
        };
        let records = if visible {
            state.db.versions(plugin.namespace(), plugin.name()).await?
        } else {
            Vec::new()
        };
        catalog.add_plugin(plugin.clone());
        for record in &records {
            catalog.add(plugin.clone(), candidate(state, record)?);
        }
        pending.extend(catalog.missing_dependencies());
    }
    Ok(catalog)
}

/// The space's installations by plugin.
pub(super) async fn installed(
    state: &AppState,
    space: &Space,
) -> ApiResult<BTreeMap<PluginName, InstallationRecord>> {
    state
        .db
        .installations(space.id)
        .await?
        .into_iter()
        .map(|record| Ok((parse_plugin(&record.installation.plugin)?, record)))
        .collect()
}

/// What the space asks for: the installations with a requirement.
pub(super) fn requested_of(
    installed: &BTreeMap<PluginName, InstallationRecord>,
) -> ApiResult<BTreeMap<PluginName, VersionReq>> {
    installed
        .iter()
        .filter_map(|(plugin, record)| {
            let requirement = record.installation.requirement.as_deref()?;
            Some(parse_requirement(requirement).map(|requirement| (plugin.clone(), requirement)))
        })
        .collect()
}

pub(super) fn lockfile_of(space: &Space) -> ApiResult<Option<Lockfile>> {
    if space.lockfile.is_empty() {
        return Ok(None);
    }
    Lockfile::parse(&space.lockfile).map(Some).map_err(corrupt)
}

/// Resolves `requested` for the space, keeping the locked versions of `locked` that still
/// fit, and only certified versions when the space requires them.
#[tracing::instrument(name = "space.resolve", skip_all, fields(space = %space.name))]
pub(super) async fn resolve(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    requested: &BTreeMap<PluginName, VersionReq>,
    locked: Option<&Lockfile>,
) -> ApiResult<Lockfile> {
    let catalog = gather(state, caller, requested).await?;
    let host_api = aerie_core::PLUGIN_API_VERSION;
    aerie_resolve::resolve(
        &catalog,
        &Request {
            requested,
            locked,
            host_api: &host_api,
            require_certified: requires_certified(state, space),
        },
    )
    .map_err(|err| match err {
        ResolveError::NoSolution { explanation } => ApiError::conflict(
            "resolution_failed",
            format!("the plugins cannot be resolved: {explanation}"),
        )
        .with_details(json!({ "explanation": explanation.lines().collect::<Vec<_>>() })),
        other => ApiError::internal(other),
    })
}

/// Plugins in an order where each comes after everything it depends on.
pub(super) fn load_order(lockfile: &Lockfile) -> Vec<PluginName> {
    fn visit(
        plugin: &PluginName,
        lockfile: &Lockfile,
        seen: &mut BTreeSet<PluginName>,
        order: &mut Vec<PluginName>,
    ) {
        if !seen.insert(plugin.clone()) {
            return;
        }
        if let Some(locked) = lockfile.plugins.get(plugin) {
            for dependency in &locked.dependencies {
                visit(dependency, lockfile, seen, order);
            }
        }
        order.push(plugin.clone());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for plugin in lockfile.plugins.keys() {
        visit(plugin, lockfile, &mut seen, &mut order);
    }
    order
}
