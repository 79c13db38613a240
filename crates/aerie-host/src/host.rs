//! The host: the running installations of every space, loading them in dependency order,
//! swapping versions without dropping calls, and routing calls to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use aerie_core::name::PluginName;
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Semaphore, watch};

use crate::breaker::{BreakerPolicy, Clock};
use crate::capabilities::{KeyValue, Secrets};
use crate::error::{CallError, LoadError};
use crate::metrics::HostMetrics;
use crate::outbound::{NetworkPolicy, OutboundClient};
use crate::plugin::{Health, LoadedPlugin, ResponseBody};
use crate::runtime::{CompileSource, Grants, Runtime, RuntimeConfig};
use crate::spec::InstallationSpec;
use crate::state::{PluginContext, ServiceRouter};

/// How the host runs.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The engine's settings.
    pub runtime: RuntimeConfig,
    /// Components compiled at once while loading.
    pub loading_slots: usize,
    /// When an installation's breaker opens and for how long.
    pub breaker: BreakerPolicy,
    /// Where the breakers read the time.
    pub clock: Clock,
    /// What plugins' outbound calls may reach, whatever their manifests declare.
    pub network: NetworkPolicy,
    /// Calls from outside a space running at once in it, across its installations.
    pub space_concurrency: u32,
    /// The longest key and value a plugin may store.
    pub keyvalue: crate::limiter::KeyValueLimits,
    /// How long a replaced or removed version may finish its calls before `shutdown` runs.
    pub drain_grace: Duration,
    /// How often every running installation's `health` runs; `None` for never. The checks
    /// start with the host when it is created inside a Tokio runtime.
    pub health_interval: Option<Duration>,
    /// Where the host counts calls, failures, latency, breaker and health state.
    pub metrics: HostMetrics,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            runtime: RuntimeConfig::default(),
            loading_slots: std::thread::available_parallelism().map_or(2, usize::from),
            breaker: BreakerPolicy::default(),
            clock: Clock::System,
            network: NetworkPolicy::default(),
            space_concurrency: 128,
            keyvalue: crate::limiter::KeyValueLimits::default(),
            drain_grace: Duration::from_secs(30),
            health_interval: Some(Duration::from_secs(30)),
            metrics: HostMetrics::default(),
        }
    }
}

/// How loading one installation went.
#[derive(Debug, Clone)]
pub struct PluginLoad {
    /// The space.
    pub space: String,
    /// The plugin.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// Whether it runs now, or why not.
    pub outcome: Result<(), LoadError>,
    /// Where the compiled component came from, when it got that far.
    pub source: Option<CompileSource>,
    /// Compiling or loading from the cache, and linking.
    pub compile: Duration,
    /// Waiting for dependencies.
    pub waited: Duration,
    /// Running `init`.
    pub init: Duration,
    /// From the start of the load to this plugin running (or failing).
    pub total: Duration,
}

/// How loading a set of installations went.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// One entry per installation, in the order given.
    pub plugins: Vec<PluginLoad>,
    /// The whole load.
    pub total: Duration,
}

impl LoadReport {
    /// The failures, as `(plugin, reason)`.
    pub fn failures(&self) -> Vec<(&str, &LoadError)> {
        self.plugins
            .iter()
            .filter_map(|load| {
                load.outcome
                    .as_ref()
                    .err()
                    .map(|err| (load.plugin.as_str(), err))
            })
            .collect()
    }
}

/// What runs in a space: plugin → loaded version.
type SpaceKey = (String, PluginName);

/// The host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    me: Weak<HostInner>,
    runtime: Arc<Runtime>,
    config: HostConfig,
    kv: Arc<dyn KeyValue>,
    secrets: Arc<dyn Secrets>,
    outbound: OutboundClient,
    /// Each space's slots for calls from outside it.
    space_slots: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    running: RwLock<HashMap<SpaceKey, Arc<LoadedPlugin>>>,
    loading_slots: Arc<Semaphore>,
}

/// A running installation, as the embedder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningPlugin {
    /// The space.
    pub space: String,
    /// The plugin.
    pub plugin: PluginName,
    /// The version serving.
    pub version: semver::Version,
    /// The package digest.
    pub digest: String,
    /// The configuration it was loaded with, as `wasi:config/store` serves it: with the
    /// digest, what an embedder compares with what it stored to find what to reload.
    pub config: BTreeMap<String, String>,
    /// Whether it serves HTTP.
    pub serves_http: bool,
    /// How its last health check went.
    pub health: Health,
    /// Where its circuit breaker stands: open while it refuses calls after failures.
    pub breaker: crate::breaker::BreakerState,
}

impl Host {
    /// A host with no installations.
    pub fn new(
        config: HostConfig,
        kv: Arc<dyn KeyValue>,
        secrets: Arc<dyn Secrets>,
    ) -> Result<Host, LoadError> {
        let runtime = Arc::new(Runtime::new(&config.runtime)?);
        let outbound =
            OutboundClient::new(Arc::new(config.network.clone())).map_err(LoadError::Link)?;
        let inner = Arc::new_cyclic(|me| HostInner {
            me: me.clone(),
            runtime,
            outbound,
            space_slots: std::sync::Mutex::default(),
            loading_slots: Arc::new(Semaphore::new(config.loading_slots.max(1))),
            config,
            kv,
            secrets,
            running: RwLock::default(),
        });
        inner.start_health_checks();
        Ok(Host { inner })
    }

    /// Loads `specs` concurrently: components compile (or come from the cache) in the
    /// loading slots; each installation's `init` runs as soon as all its dependencies run;
    /// a failure fails its dependents and nothing else. Installations already running with
    /// the same space and plugin are replaced.
    pub async fn load(&self, specs: Vec<InstallationSpec>) -> LoadReport {
        self.inner.load(specs).await
    }

    /// Replaces (or adds) one installation without downtime: the new version loads, runs
    /// `init` and `health` while the old one serves; then calls switch at once, and the old
    /// version finishes its calls before `shutdown`. On any failure the old one keeps serving.
    pub async fn swap(&self, spec: InstallationSpec) -> Result<PluginLoad, LoadError> {
        self.inner.swap(spec).await
    }

    /// Stops serving an installation; calls in flight finish first.
    pub async fn unload(&self, space: &str, plugin: &PluginName) -> Result<(), LoadError> {
        let removed = self
            .inner
            .write()
            .remove(&(space.to_string(), plugin.clone()))
            .ok_or_else(|| LoadError::NotRunning(format!("{space}/{plugin}")))?;
        removed.forget_metrics();
        self.inner.retire(removed).await;
        Ok(())
    }

    /// The version of `plugin` serving in `space` now: one lookup for a caller that needs
    /// both its manifest and a call. It keeps serving the caller even if a swap replaces it.
    pub fn serving(&self, space: &str, plugin: &PluginName) -> Result<Serving, CallError> {
        self.inner.get(space, plugin).map(Serving)
    }

    /// Serves an HTTP request with `plugin` in `space`.
    pub async fn handle_http<B>(
        &self,
        space: &str,
        plugin: &PluginName,
        request: http::Request<B>,
    ) -> Result<http::Response<ResponseBody>, CallError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.serving(space, plugin)?.handle_http(request).await
    }

    /// Calls `service` of `plugin` in `space`, as the embedder (not another plugin).
    pub async fn call_service(
        &self,
        space: &str,
        plugin: &PluginName,
        service: &str,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.inner
            .get(space, plugin)?
            .call_service(service, request, 0)
            .await
    }

    /// Runs `health` on a running installation now (the periodic checks run it too).
    pub async fn check_health(&self, space: &str, plugin: &PluginName) -> Result<(), LoadError> {
        let loaded = self
            .inner
            .get(space, plugin)
            .map_err(|err| LoadError::NotRunning(err.to_string()))?;
        loaded.check_health().await
    }

    /// What runs, sorted by space and plugin.
    pub fn running(&self) -> Vec<RunningPlugin> {
        let mut running: Vec<RunningPlugin> = self
            .inner
            .read()
            .iter()
            .map(|((space, plugin), loaded)| RunningPlugin {
                space: space.clone(),
                plugin: plugin.clone(),
                version: loaded.version.clone(),
                digest: loaded.digest.clone(),
                config: loaded.context.config.clone(),
                serves_http: loaded.serves_http(),
                health: loaded.health(),
                breaker: loaded.breaker_state(),
            })
            .collect();
        running.sort_by(|a, b| (&a.space, &a.plugin).cmp(&(&b.space, &b.plugin)));
        running
    }

    /// Stops every installation, running each one's `shutdown`.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<LoadedPlugin>> = self.inner.write().drain().map(|(_, v)| v).collect();
        for loaded in &all {
            loaded.forget_metrics();
        }
        futures::future::join_all(all.into_iter().map(|loaded| self.inner.retire(loaded))).await;
    }
}

/// One version serving in a space, as [`Host::serving`] found it.
pub struct Serving(Arc<LoadedPlugin>);

impl Serving {
    /// Its manifest.
    pub fn manifest(&self) -> &aerie_core::manifest::Manifest {
        &self.0.context.manifest
    }

    /// Serves an HTTP request with it.
    pub async fn handle_http<B>(
        &self,
        request: http::Request<B>,
    ) -> Result<http::Response<ResponseBody>, CallError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.0.handle_http(request).await
    }
}

/// Where one installation of a load stands, for its dependents.
type Readiness = Option<Result<semver::Version, String>>;

impl HostInner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SpaceKey, Arc<LoadedPlugin>>> {
        self.running.read().unwrap_or_else(|err| err.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<SpaceKey, Arc<LoadedPlugin>>> {
        self.running.write().unwrap_or_else(|err| err.into_inner())
    }

    fn get(&self, space: &str, plugin: &PluginName) -> Result<Arc<LoadedPlugin>, CallError> {
        self.read()
            .get(&(space.to_string(), plugin.clone()))
            .cloned()
            .ok_or_else(|| CallError::NotRunning(plugin.to_string()))
    }

    /// Compiles (or loads from the cache) and links one installation, in a loading slot.
    async fn prepare(
        &self,
        spec: &InstallationSpec,
    ) -> Result<(Arc<LoadedPlugin>, CompileSource), LoadError> {
        let _slot = self
            .loading_slots
            .acquire()
            .await
            .map_err(|err| LoadError::Compile(err.to_string()))?;
        let (component, source) = self
            .runtime
            .component(&spec.digest, spec.component.clone())
            .await?;
        let outbound = spec.outbound_hosts();
        let permissions = &spec.manifest.permissions;
        let grants = Grants {
            outbound: !outbound.is_empty(),
            keyvalue: permissions.keyvalue,
            secrets: !permissions.secrets.is_empty(),
            services: !permissions.services.is_empty(),
        };
        let linker = self.runtime.linker_for(&component, grants)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|err| LoadError::Link(format!("{err:#}")))?;
        let space_slots = Arc::clone(
            self.space_slots
                .lock()
                .unwrap_or_else(|err| err.into_inner())
                .entry(spec.space.clone())
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(self.config.space_concurrency.max(1) as usize))
                }),
        );
        let router: Weak<dyn ServiceRouter> = self.me.clone();
        let context = Arc::new(PluginContext {
            id: spec.id.clone(),
            space: spec.space.clone(),
            label: format!("{}@{}", spec.plugin(), spec.version()),
            manifest: Arc::clone(&spec.manifest),
            config: spec.config.clone(),
            outbound_client: (!outbound.is_empty()).then(|| self.outbound.clone()),
            outbound: outbound.into(),
            limits: spec.limits,
            caps: self.config.runtime.caps,
            keyvalue: self.config.keyvalue,
            space_slots,
            kv: Arc::clone(&self.kv),
            secrets: Arc::clone(&self.secrets),
            router,
        });
        let loaded = LoadedPlugin::new(
            Arc::clone(&self.runtime),
            context,
            pre,
            spec.digest.clone(),
            self.config.breaker,
            self.config.clock.clone(),
            self.config.metrics.clone(),
        );
        Ok((Arc::new(loaded), source))
    }

    async fn load(&self, specs: Vec<InstallationSpec>) -> LoadReport {
        let started = Instant::now();
        let keys: Vec<SpaceKey> = specs
            .iter()
            .map(|spec| (spec.space.clone(), spec.plugin().clone()))
            .collect();
        let mut problems: Vec<Option<LoadError>> = vec![None; specs.len()];
        let mut index: HashMap<&SpaceKey, usize> = HashMap::new();
        for (position, key) in keys.iter().enumerate() {
            if index.insert(key, position).is_some() {
                problems[position] = Some(LoadError::Duplicate(key.1.to_string()));
            }
        }
        for (position, cycle) in find_cycles(&specs, &index) {
            problems[position].get_or_insert(LoadError::Cycle(cycle));
        }
        let channels: Vec<(watch::Sender<Readiness>, watch::Receiver<Readiness>)> =
            specs.iter().map(|_| watch::channel(None)).collect();
        let receivers: HashMap<&SpaceKey, watch::Receiver<Readiness>> = index
            .iter()
            .map(|(key, &position)| (*key, channels[position].1.clone()))
            .collect();

        let loads =
            specs
                .iter()
                .zip(problems)
                .zip(&channels)
                .map(|((spec, problem), (ready, _))| {
                    let receivers = &receivers;
                    async move {
                        let load = match problem {
                            Some(err) => failed_load(spec, err, started),
                            None => self.load_one(spec, receivers, started).await,
                        };
                        let readiness = match &load.outcome {
                            Ok(()) => Ok(spec.version().clone()),
                            Err(err) => Err(err.to_string()),
                        };
                        ready.send_replace(Some(readiness));
                        load
                    }
                });
        let plugins = futures::future::join_all(loads).await;
        for load in &plugins {
            self.count_load(load);
            match &load.outcome {
                Ok(()) => tracing::info!(
                    space = %load.space, plugin = %load.plugin, version = %load.version,
                    source = ?load.source, compile_ms = load.compile.as_millis() as u64,
                    init_ms = load.init.as_millis() as u64, "plugin loaded"
                ),
                Err(err) => tracing::warn!(
                    space = %load.space, plugin = %load.plugin, version = %load.version,
                    error = %err, "plugin failed to load"
                ),
            }
        }
        LoadReport {
            plugins,
            total: started.elapsed(),
        }
    }

    async fn load_one(
        &self,
        spec: &InstallationSpec,
        receivers: &HashMap<&SpaceKey, watch::Receiver<Readiness>>,
        started: Instant,
    ) -> PluginLoad {
        let mut load = new_load(spec, started);
        let compile_started = Instant::now();
        let prepared = self.prepare(spec).await;
        load.compile = compile_started.elapsed();
        let loaded = match prepared {
            Ok((loaded, source)) => {
                load.source = Some(source);
                loaded
            }
            Err(err) => return finish(load, Err(err), started),
        };
        let wait_started = Instant::now();
        let ready = self.dependencies_ready(spec, receivers).await;
        load.waited = wait_started.elapsed();
        if let Err(err) = ready {
            return finish(load, Err(err), started);
        }
        let init_started = Instant::now();
        let init = loaded.init(spec.previous_version.as_deref()).await;
        load.init = init_started.elapsed();
        if init.is_ok() {
            let key = (spec.space.clone(), spec.plugin().clone());
            let replaced = self.write().insert(key, loaded);
            if let Some(old) = replaced {
                self.retire_later(old);
            }
        }
        finish(load, init, started)
    }

    /// Waits for each dependency: one in the same load is awaited (an event, not a poll);
    /// otherwise it must already run in the space.
    async fn dependencies_ready(
        &self,
        spec: &InstallationSpec,
        receivers: &HashMap<&SpaceKey, watch::Receiver<Readiness>>,
    ) -> Result<(), LoadError> {
        for (dependency, requirement) in &spec.manifest.dependencies {
            let key = (spec.space.clone(), dependency.clone());
            let version = match receivers.get(&key) {
                Some(receiver) => {
                    let mut receiver = receiver.clone();
                    let readiness = receiver
                        .wait_for(Option::is_some)
                        .await
                        .map(|ready| ready.clone())
                        .ok()
                        .flatten();
                    match readiness {
                        Some(Ok(version)) => version,
                        Some(Err(reason)) => {
                            return Err(LoadError::DependencyFailed {
                                plugin: dependency.to_string(),
                                reason,
                            });
                        }
                        None => {
                            return Err(LoadError::DependencyFailed {
                                plugin: dependency.to_string(),
                                reason: "its load was abandoned".into(),
                            });
                        }
                    }
                }
                None => self.running_version(&key, requirement)?,
            };
            check_requirement(dependency, requirement, &version)?;
        }
        Ok(())
    }

    fn running_version(
        &self,
        key: &SpaceKey,
        requirement: &semver::VersionReq,
    ) -> Result<semver::Version, LoadError> {
        self.read()
            .get(key)
            .map(|loaded| loaded.version.clone())
            .ok_or_else(|| LoadError::MissingDependency {
                plugin: key.1.to_string(),
                requirement: requirement.to_string(),
            })
    }

    async fn swap(&self, spec: InstallationSpec) -> Result<PluginLoad, LoadError> {
        let started = Instant::now();
        let key = (spec.space.clone(), spec.plugin().clone());
        let mut load = new_load(&spec, started);
        let compile_started = Instant::now();
        let (loaded, source) = self.prepare(&spec).await?;
        load.compile = compile_started.elapsed();
        load.source = Some(source);
        for (dependency, requirement) in &spec.manifest.dependencies {
            let dependency_key = (spec.space.clone(), dependency.clone());
            let version = self.running_version(&dependency_key, requirement)?;
            check_requirement(dependency, requirement, &version)?;
        }
        let previous = spec
            .previous_version
            .clone()
            .or_else(|| self.read().get(&key).map(|old| old.version.to_string()));
        let init_started = Instant::now();
        loaded.init(previous.as_deref()).await?;
        loaded.check_health().await?;
        load.init = init_started.elapsed();
        // The switch: one insert under the lock. Calls that already hold the old version
        // finish on it.
        let old = self.write().insert(key, loaded);
        if let Some(old) = old {
            self.retire_later(old);
        }
        let load = finish(load, Ok(()), started);
        self.count_load(&load);
        Ok(load)
    }

    fn count_load(&self, load: &PluginLoad) {
        let outcome = match (&load.outcome, load.source) {
            (Ok(()), Some(CompileSource::Cache)) => "cached",
            (Ok(()), _) => "compiled",
            (Err(_), _) => "failed",
        };
        self.config.metrics.load(outcome, load.total);
    }

    /// Runs every running installation's `health` every `health_interval`, a few at a time.
    fn start_health_checks(&self) {
        let Some(interval) = self.config.health_interval else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.me.clone();
        let concurrency = self.config.loading_slots.max(1);
        runtime.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; every installation has just passed `init`.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                // Holds the host only to list what runs, so that dropping it ends the loop.
                let Some(host) = me.upgrade() else { break };
                let running: Vec<Arc<LoadedPlugin>> = host.read().values().cloned().collect();
                drop(host);
                futures::StreamExt::for_each_concurrent(
                    futures::stream::iter(running),
                    concurrency,
                    async |loaded| {
                        let _ = loaded.check_health().await;
                    },
                )
                .await;
            }
        });
    }

    /// Lets a replaced version finish its calls, then runs its `shutdown`.
    async fn retire(&self, old: Arc<LoadedPlugin>) {
        old.drain(self.config.drain_grace).await;
        old.shutdown().await;
    }

    fn retire_later(&self, old: Arc<LoadedPlugin>) {
        let me = self.me.clone();
        tokio::spawn(async move {
            if let Some(host) = me.upgrade() {
                host.retire(old).await;
            }
        });
    }
}

#[async_trait]
impl ServiceRouter for HostInner {
    async fn call_service(
        &self,
        space: &str,
        plugin: &PluginName,
        service: &str,
        request: Vec<u8>,
        depth: u32,
    ) -> Result<Vec<u8>, CallError> {
        self.get(space, plugin)?
            .call_service(service, request, depth)
            .await
    }
}

fn check_requirement(
    dependency: &PluginName,
    requirement: &semver::VersionReq,
    version: &semver::Version,
) -> Result<(), LoadError> {
    if requirement.matches(version) {
        Ok(())
    } else {
        Err(LoadError::DependencyVersion {
            plugin: dependency.to_string(),
            requirement: requirement.to_string(),
            found: version.to_string(),
        })
    }
}

/// The record of a load of `spec` that has just begun.
fn new_load(spec: &InstallationSpec, started: Instant) -> PluginLoad {
    PluginLoad {
        space: spec.space.clone(),
        plugin: spec.plugin().to_string(),
        version: spec.version().to_string(),
        outcome: Ok(()),
        source: None,
        compile: Duration::ZERO,
        waited: Duration::ZERO,
        init: Duration::ZERO,
        total: started.elapsed(),
    }
}

fn failed_load(spec: &InstallationSpec, err: LoadError, started: Instant) -> PluginLoad {
    finish(new_load(spec, started), Err(err), started)
}

fn finish(mut load: PluginLoad, outcome: Result<(), LoadError>, started: Instant) -> PluginLoad {
    load.outcome = outcome;
    load.total = started.elapsed();
    load
}

/// The installations that are part of a dependency cycle within the load, each with the
/// cycle it is on (`a -> b -> a`).
fn find_cycles(
    specs: &[InstallationSpec],
    index: &HashMap<&SpaceKey, usize>,
) -> BTreeMap<usize, Vec<String>> {
    let edges: Vec<Vec<usize>> = specs
        .iter()
        .map(|spec| {
            spec.manifest
                .dependencies
                .keys()
                .filter_map(|dependency| {
                    index
                        .get(&(spec.space.clone(), dependency.clone()))
                        .copied()
                })
                .collect()
        })
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        node: usize,
        edges: &[Vec<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        cycles: &mut Vec<Vec<usize>>,
    ) {
        marks[node] = Mark::OnPath;
        path.push(node);
        for &next in &edges[node] {
            match marks[next] {
                Mark::New => visit(next, edges, marks, path, cycles),
                Mark::OnPath => {
                    let start = path.iter().position(|&n| n == next).unwrap_or(0);
                    cycles.push(path[start..].to_vec());
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
    }
    let mut marks = vec![Mark::New; specs.len()];
    let mut cycles = Vec::new();
    for node in 0..specs.len() {
        if marks[node] == Mark::New {
            visit(node, &edges, &mut marks, &mut Vec::new(), &mut cycles);
        }
    }
    let mut on_cycle = BTreeMap::new();
    for cycle in cycles {
        let mut names: Vec<String> = cycle
            .iter()
            .map(|&n| specs[n].plugin().to_string())
            .collect();
        names.push(names[0].clone());
        for &n in &cycle {
            on_cycle.entry(n).or_insert_with(|| names.clone());
        }
    }
    on_cycle
}
