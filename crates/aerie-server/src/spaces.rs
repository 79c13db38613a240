//! Spaces at work: resolving a space's plugins, driving the host through installs, updates,
//! rollbacks and uninstalls, sealing secrets, and bringing every space back after a restart.
//!
//! Every change follows one order: resolve and check everything first (nothing changes yet);
//! then change the host, new versions beside the old ones, each passing `init` and `health`
//! before it serves (a failure puts back what was changed and the old versions never stop);
//! then write the change, its events and audit row in one transaction. Changes to one space
//! queue behind each other.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aerie_api_types::{InstallationView, PermissionsView};
use aerie_core::config::{check_config, config_pairs};
use aerie_core::digest::Digest;
use aerie_core::manifest::Manifest;
use aerie_core::name::PluginName;
use aerie_core::package::{Package, PackageLimits, read_package};
use aerie_core::sealed::WrappedKey;
use aerie_db::{
    Actor, Database, Installation, InstallationRecord, InstallationStatus, NewEvent, Space,
    SpaceChange, installation_scope,
};
use aerie_host::{Host, InstallationSpec, Limits, LoadError, Secrets, StoreError};
use aerie_resolve::{Candidate, Catalog, Lockfile, Request, ResolveError};
use async_trait::async_trait;
use axum::http::StatusCode;
use semver::{Version, VersionReq};
use serde_json::{Value, json};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};
use crate::keys::MasterKeys;
use crate::state::AppState;

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

/// One lock per space, so that changes to a space run one at a time.
#[derive(Default)]
pub struct SpaceLocks(Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>);

impl SpaceLocks {
    async fn lock(&self, space_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|err| err.into_inner());
            Arc::clone(locks.entry(space_id).or_default())
        };
        lock.lock_owned().await
    }
}

/// Installation secrets for the host: read from the database and opened with the space's
/// data key when a plugin asks.
pub struct SpaceSecrets {
    /// The metadata store.
    pub db: Database,
    /// The master keys.
    pub keys: MasterKeys,
}

/// Where a secret's sealed value belongs: the place its seal is bound to.
fn secret_place(scope: &str, name: &str) -> String {
    format!("{scope}/secret/{name}")
}

#[async_trait]
impl Secrets for SpaceSecrets {
    async fn get(&self, scope: &str, name: &str) -> Result<Option<String>, StoreError> {
        // Local spaces (`aerie run`) have no secret store.
        let Some((space_id, plugin)) = scope
            .strip_prefix("space:")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(id, plugin)| Some((id.parse::<i64>().ok()?, plugin)))
        else {
            return Ok(None);
        };
        let fail = |err: &dyn std::fmt::Display| StoreError(format!("secrets unavailable: {err}"));
        let Some(space) = self.db.space_by_id(space_id).await.map_err(|e| fail(&e))? else {
            return Ok(None);
        };
        let Some(installation) = self
            .db
            .installation(space_id, plugin)
            .await
            .map_err(|e| fail(&e))?
        else {
            return Ok(None);
        };
        let secrets = self
            .db
            .installation_secrets(installation.id)
            .await
            .map_err(|e| fail(&e))?;
        let Some((_, sealed)) = secrets.iter().find(|(stored, _)| stored == name) else {
            return Ok(None);
        };
        let key = self
            .keys
            .unwrap(&wrapped_key(&space), DATA_KEY_OWNER)
            .map_err(|e| fail(&e))?;
        let value = key
            .open(sealed, &secret_place(scope, name))
            .map_err(|e| fail(&e))?;
        String::from_utf8(value.to_vec())
            .map(Some)
            .map_err(|_| StoreError("the secret is not text".into()))
    }
}

fn wrapped_key(space: &Space) -> WrappedKey {
    WrappedKey {
        master_key_id: space.master_key_id.clone(),
        sealed: space.wrapped_key.clone(),
    }
}

/// What every space's data key is bound to when wrapped. (Each secret is bound to its own
/// place — space id, plugin, name — so a sealed value moved anywhere else does not open.)
const DATA_KEY_OWNER: &str = "space";

/// Creates a space owned by `owner_id`, with a new data key.
pub async fn new_space(
    state: &AppState,
    actor: &Actor,
    name: &str,
    owner_id: i64,
) -> ApiResult<Space> {
    let _wrapping = state.keys.wrapping().await;
    let (_, wrapped) = state.keys.keyring().new_data_key(DATA_KEY_OWNER);
    Ok(state
        .db
        .create_space(
            actor,
            name,
            owner_id,
            &wrapped.master_key_id,
            &wrapped.sealed,
        )
        .await?)
}

fn parse_plugin(text: &str) -> ApiResult<PluginName> {
    text.parse()
        .map_err(|err| ApiError::bad_request("invalid_plugin_name", format!("{err}")))
}

fn parse_requirement(text: &str) -> ApiResult<VersionReq> {
    VersionReq::parse(text).map_err(|err| {
        ApiError::bad_request(
            "invalid_requirement",
            format!("{text:?} is not a version requirement: {err}"),
        )
    })
}

fn corrupt(what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("stored data is corrupt: {what}"))
}

/// Whether `space` installs only certified versions: its own policy or the server's.
pub fn requires_certified(state: &AppState, space: &Space) -> bool {
    state.config.require_certified || space.require_certified
}

/// Why `space` may not run `plugin` `version`, if its policy refuses it.
async fn certification_refusal(
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
async fn signature_refusal(
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
async fn policy_refusal(
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
fn candidate(state: &AppState, record: &aerie_db::VersionRecord) -> ApiResult<Candidate> {
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
async fn gather(
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
async fn installed(
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
fn requested_of(
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

fn lockfile_of(space: &Space) -> ApiResult<Option<Lockfile>> {
    if space.lockfile.is_empty() {
        return Ok(None);
    }
    Lockfile::parse(&space.lockfile).map(Some).map_err(corrupt)
}

/// Resolves `requested` for the space, keeping the locked versions of `locked` that still
/// fit, and only certified versions when the space requires them.
async fn resolve(
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
fn load_order(lockfile: &Lockfile) -> Vec<PluginName> {
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

/// A package from blob storage, read as any package is (it was checked at publish).
async fn package(state: &AppState, digest: &str) -> ApiResult<Package> {
    let parsed: Digest = digest.parse().map_err(corrupt)?;
    let bytes = state.blob(&parsed).await?;
    let package = read_package(&bytes, &PackageLimits::default()).map_err(corrupt)?;
    if package.digest != parsed {
        return Err(corrupt(format!("the blob {digest} has another digest")));
    }
    Ok(package)
}

fn spec_of(
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

fn config_error(plugin: &PluginName, problems: Vec<aerie_core::config::ConfigProblem>) -> ApiError {
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

fn load_failed(code: &'static str, plugin: &PluginName, err: &LoadError) -> ApiError {
    ApiError::unprocessable(code, format!("{plugin} did not start: {err}"))
}

/// The host, created on first use.
fn host(state: &AppState) -> ApiResult<Host> {
    state.plugins.get().cloned().map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "host_unavailable",
            err.to_string(),
        )
    })
}

/// One plugin's part in a change: what runs after it, and what ran before.
struct Step {
    plugin: PluginName,
    package: Package,
    config: Value,
    /// The installation before the change, if there was one.
    before: Option<InstallationRecord>,
}

/// Switches the host to `steps`, in order, each beside its old version; on a failure puts
/// back what it switched and names the plugin that failed.
async fn switch(
    state: &AppState,
    space: &Space,
    steps: &[Step],
) -> Result<(), (PluginName, LoadError)> {
    let host =
        host(state).map_err(|err| (steps[0].plugin.clone(), LoadError::NotRunning(err.message)))?;
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
async fn running_spec(
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

/// A change to a space, checked and ready: the host steps, the rows, the events.
struct Plan {
    lockfile: Option<Lockfile>,
    steps: Vec<Step>,
    removals: Vec<PluginName>,
    upserts: Vec<Installation>,
    events: Vec<NewEvent>,
    /// `plugin` → `from -> to`, for the answer.
    changed: BTreeMap<String, String>,
}

fn event(plugin: &PluginName, kind: &str, from: Option<&str>, to: Option<&str>) -> NewEvent {
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
fn status_change(
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
async fn plan(
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

/// Why applying a plan failed.
enum ApplyError {
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
    fn into_api(self, code: &'static str) -> ApiError {
        match self {
            ApplyError::Start(plugin, err) => load_failed(code, &plugin, &err),
            ApplyError::Api(err) => err,
        }
    }
}

/// Applies `plan`: the host first, then the rows in one transaction.
async fn apply(
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
    if let Err(err) = state.db.commit_space(actor, space, &change).await {
        // The host runs the new versions but the database says otherwise: put the host
        // back so the next start agrees with what runs now.
        if let Ok(host) = host(state) {
            restore(state, space, &host, &plan.steps).await;
        }
        return Err(ApplyError::Api(err.into()));
    }
    Ok(plan.changed)
}

/// A change's start: the space's lock (held until the change is written), the space as
/// stored now (a change queued behind another sees its result), and its installations.
async fn begin(
    state: &AppState,
    space: &Space,
) -> ApiResult<(
    tokio::sync::OwnedMutexGuard<()>,
    Space,
    BTreeMap<PluginName, InstallationRecord>,
)> {
    let lock = state.space_locks.lock(space.id).await;
    let space = current(state, space).await?;
    let installed = installed(state, &space).await?;
    Ok((lock, space, installed))
}

/// The space as stored now.
async fn current(state: &AppState, space: &Space) -> ApiResult<Space> {
    state.db.space_by_id(space.id).await?.ok_or_else(|| {
        ApiError::not_found(
            "space_not_found",
            format!("there is no space `{}`", space.name),
        )
    })
}

fn not_installed(plugin: &PluginName, space: &Space) -> ApiError {
    ApiError::not_found(
        "installation_not_found",
        format!("{plugin} is not installed in the space `{}`", space.name),
    )
}

/// The installations that depend on `plugin`, by the lockfile.
fn dependents(space: &Space, plugin: &PluginName) -> ApiResult<Vec<String>> {
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

/// Installs `request.plugin` (and whatever it needs) in the space.
pub async fn install(
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
            state
                .db
                .commit_space(&caller.actor(), &space, &change)
                .await?;
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
    state
        .db
        .commit_space(&caller.actor(), &space, &change)
        .await?;
    Ok(())
}

/// The largest secret value accepted.
const MAX_SECRET_LEN: usize = 64 * 1024;

/// Sets (`Some`) or removes (`None`) one of an installation's secrets. Plugins read secrets
/// when they ask, so the change takes effect at once.
pub async fn set_secret(
    state: &AppState,
    caller: &Caller,
    space: &Space,
    plugin: &PluginName,
    name: &str,
    value: Option<&str>,
) -> ApiResult<()> {
    let installation = state
        .db
        .installation(space.id, plugin.as_str())
        .await?
        .ok_or_else(|| not_installed(plugin, space))?;
    let package = package(state, &installation.installation.digest).await?;
    let declared = &package.manifest.permissions.secrets;
    if value.is_some() && !declared.iter().any(|declared| declared == name) {
        return Err(ApiError::unprocessable(
            "secret_not_declared",
            format!(
                "{plugin} does not read a secret named `{name}`; it reads {}",
                if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                }
            ),
        ));
    }
    let sealed = match value {
        Some(value) => {
            if value.is_empty() || value.len() > MAX_SECRET_LEN {
                return Err(ApiError::unprocessable(
                    "invalid_secret",
                    "a secret's value must be 1 byte to 64 KiB",
                ));
            }
            let key = state
                .keys
                .unwrap(&wrapped_key(space), DATA_KEY_OWNER)
                .map_err(ApiError::internal)?;
            let scope = installation_scope(space.id, plugin.as_str());
            Some(key.seal(value.as_bytes(), &secret_place(&scope, name)))
        }
        None => None,
    };
    state
        .db
        .set_installation_secret(
            &caller.actor(),
            space,
            &installation,
            name,
            sealed.as_deref(),
        )
        .await
        .map_err(|err| match err {
            aerie_db::DbError::NotFound(_) => ApiError::not_found(
                "secret_not_found",
                format!("{plugin} has no secret `{name}` set"),
            ),
            other => other.into(),
        })
}

/// Re-wraps every space's data key with a new master key (or, with keys from the
/// environment, with the first one there), then retires the old keys.
pub async fn rotate_master_key(
    state: &AppState,
    actor: &Actor,
) -> ApiResult<aerie_api_types::RotationView> {
    let _rotating = state.keys.rotating().await;
    let keyring = state
        .keys
        .begin_rotation()
        .map_err(|err| ApiError::conflict("rotation_failed", err.to_string()))?;
    let mut rewrapped = Vec::new();
    for space in state.db.all_spaces().await? {
        let key = state
            .keys
            .unwrap(&wrapped_key(&space), DATA_KEY_OWNER)
            .map_err(|err| {
                ApiError::internal(format!("the data key of `{}`: {err}", space.name))
            })?;
        let wrapped = keyring.wrap(&key, DATA_KEY_OWNER);
        rewrapped.push((space.id, wrapped.master_key_id, wrapped.sealed));
    }
    let primary = keyring.primary().id().to_string();
    state
        .db
        .rewrap_space_keys(actor, &rewrapped, &primary)
        .await?;
    let retired = state
        .keys
        .finish_rotation()
        .map_err(|err| ApiError::internal(err.to_string()))?;
    Ok(aerie_api_types::RotationView {
        master_key_id: primary,
        rewrapped: rewrapped.len(),
        retired,
    })
}

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
    Ok(())
}
