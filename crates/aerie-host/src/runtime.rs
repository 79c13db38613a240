//! The engine every plugin runs on, the on-disk cache of compiled components, and the linkers
//! for each set of grants.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aerie_core::inspect::{Need, Permission, classify_import};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::WasiHttp;

use crate::bindings;
use crate::error::LoadError;
use crate::state::PluginState;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The most bytes the cache keeps: past it, the components used least recently go.
    pub cache_max_bytes: u64,
    /// The largest memory any installation may have: the size of a pool slot.
    pub max_memory: u64,
    /// Component instances alive at once across all installations (calls in flight).
    pub max_instances: u32,
    /// How often deadlines are checked.
    pub epoch_tick: Duration,
    /// What one component may create: instances, memories, tables.
    pub caps: crate::limiter::ComponentCaps,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: None,
            cache_max_bytes: 2 * 1024 * 1024 * 1024,
            max_memory: 1024 * 1024 * 1024,
            max_instances: 1000,
            epoch_tick: Duration::from_millis(10),
            caps: crate::limiter::ComponentCaps::default(),
        }
    }
}

/// Where a compiled component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled now (and written to the cache, if there is one).
    Compiled,
    /// Loaded from the on-disk cache.
    Cache,
}

/// Which guarded interfaces an installation may import. Everything else a plugin may import
/// (WASI CLI, clocks, random, I/O, `wasi:http/types`, `wasi:config`, logging) is always linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Grants {
    /// `wasi:http/outgoing-handler`.
    pub outbound: bool,
    /// `wasi:keyvalue/*`.
    pub keyvalue: bool,
    /// `aerie:plugin/secrets`.
    pub secrets: bool,
    /// `aerie:plugin/services`.
    pub services: bool,
}

impl Grants {
    /// Whether `permission` is granted.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Outbound => self.outbound,
            Permission::KeyValue => self.keyvalue,
            Permission::Secrets => self.secrets,
            Permission::Services => self.services,
        }
    }
}

/// The engine and what is shared across installations.
pub struct Runtime {
    engine: Engine,
    /// `cache_dir/<engine key>`: a new wasmtime or engine setting starts a fresh directory.
    cache_dir: Option<PathBuf>,
    /// The most bytes kept there.
    cache_max_bytes: u64,
    linkers: Mutex<HashMap<Grants, Arc<Linker<PluginState>>>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// An engine with the pooling allocator and epoch interruption, and a thread advancing
    /// the epoch every `epoch_tick`.
    pub fn new(config: &RuntimeConfig) -> Result<Runtime, LoadError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            // A component built by wit-component has a few core instances besides the main one.
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .total_stacks(config.max_instances)
            .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX))
            // One component cannot take a share of the shared pool beyond these, whatever
            // its memory budget.
            .max_core_instances_per_component(cap(config.caps.instances))
            .max_memories_per_component(cap(config.caps.memories))
            .max_tables_per_component(cap(config.caps.tables));
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        let cache_dir = config
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(engine_key(&engine)));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = Arc::clone(&ticker_stop);
            let tick = config.epoch_tick;
            std::thread::Builder::new()
                .name("aerie-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|err| LoadError::Compile(format!("starting the epoch thread: {err}")))?;
        }
        Ok(Runtime {
            engine,
            cache_dir,
            cache_max_bytes: config.cache_max_bytes,
            linkers: Mutex::default(),
            ticker_stop,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled component with package digest `digest`: from the cache when it holds
    /// it, else compiled and cached, all on a blocking thread (the cache is files). The cache
    /// only saves time: a cache that cannot be written is logged and the load goes on.
    pub async fn component(
        &self,
        digest: &str,
        wasm: bytes::Bytes,
    ) -> Result<(Component, CompileSource), LoadError> {
        let engine = self.engine.clone();
        let cached = self.cache_dir.as_ref().map(|dir| cache_path(dir, digest));
        let max_bytes = self.cache_max_bytes;
        tokio::task::spawn_blocking(move || {
            if let Some(path) = cached.as_ref().filter(|path| path.is_file()) {
                match load_cached(&engine, path) {
                    Ok(component) => {
                        // Its use is its age: the cache keeps what was used last.
                        let _ = std::fs::File::options()
                            .append(true)
                            .open(path)
                            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
                        return Ok((component, CompileSource::Cache));
                    }
                    Err(err) => {
                        // A truncated or foreign file: compile again and replace it.
                        tracing::warn!(path = %path.display(), error = %err, "ignoring a cached component");
                    }
                }
            }
            let component = Component::new(&engine, &wasm)
                .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
            if let Some(path) = cached {
                if let Err(err) = store_cached(&component, &path) {
                    tracing::warn!(path = %path.display(), error = %err, "could not cache a compiled component; it is compiled again at its next load");
                }
                evict(&path, max_bytes);
            }
            Ok((component, CompileSource::Compiled))
        })
        .await
        .map_err(|err| LoadError::Compile(err.to_string()))?
    }

    /// Checks that `component` imports only what `grants` allow, naming the first import
    /// that is not, and returns the linker for those grants.
    pub(crate) fn linker_for(
        &self,
        component: &Component,
        grants: Grants,
    ) -> Result<Arc<Linker<PluginState>>, LoadError> {
        for (name, _) in component.component_type().imports(&self.engine) {
            match classify_import(name) {
                Ok(Need::Nothing) => {}
                Ok(Need::Permission(permission)) if grants.allows(permission) => {}
                Ok(Need::Permission(permission)) => {
                    return Err(LoadError::NotGranted {
                        interface: name.to_string(),
                        permission: permission.manifest_field().to_string(),
                    });
                }
                Err(_) => return Err(LoadError::UnknownImport(name.to_string())),
            }
        }
        let mut linkers = self.linkers.lock().unwrap_or_else(|err| err.into_inner());
        if let Some(linker) = linkers.get(&grants) {
            return Ok(Arc::clone(linker));
        }
        let linker = Arc::new(
            build_linker(&self.engine, grants)
                .map_err(|err| LoadError::Link(format!("{err:#}")))?,
        );
        linkers.insert(grants, Arc::clone(&linker));
        Ok(linker)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A linker with the always-available interfaces and those `grants` allow.
fn build_linker(engine: &Engine, grants: Grants) -> wasmtime::Result<Linker<PluginState>> {
    use bindings::aerie::plugin::{logging, secrets, services};
    use bindings::wasi::config::store as config;
    use bindings::wasi::keyvalue::{atomics, batch, store};
    use wasmtime_wasi_http::WasiHttpView as _;
    use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types};

    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    types::add_to_linker::<_, WasiHttp>(&mut linker, &options.into(), PluginState::http)?;
    config::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    logging::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    if grants.outbound {
        outgoing_handler::add_to_linker::<_, WasiHttp>(&mut linker, PluginState::http)?;
    }
    if grants.keyvalue {
        store::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
        atomics::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
        batch::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    }
    if grants.secrets {
        secrets::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    }
    if grants.services {
        services::add_to_linker::<_, HasSelf<PluginState>>(&mut linker, |state| state)?;
    }
    Ok(linker)
}

fn cap(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// A key that changes whenever compiled code from this engine would not load in another:
/// a different wasmtime, target or setting.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("wasmtime-{:016x}", hasher.finish())
}

fn cache_path(dir: &Path, digest: &str) -> PathBuf {
    let file = digest.replace(':', "-");
    dir.join(format!("{file}.cwasm"))
}

#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file is one this host wrote with `Component::serialize` into its own cache
    // directory, under a key covering the engine's compatibility, and it was renamed into
    // place only once complete. wasmtime checks the header and version; anyone able to
    // replace files in the cache directory can already replace the host binary.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store_cached(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    let dir = path.parent().expect("cache paths have a directory");
    std::fs::create_dir_all(dir)?;
    // Written beside the final name and renamed: readers never see a partial file.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, &bytes)?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Removes the cached components used least recently until those in `kept`'s directory
/// take at most `max_bytes`, never `kept` itself (just written).
fn evict(kept: &Path, max_bytes: u64) {
    let Some(dir) = kept.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "cwasm"))
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), entry.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
    files.sort();
    for (_, size, path) in files {
        if total <= max_bytes {
            break;
        }
        if path == kept {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => total = total.saturating_sub(size),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "could not evict a cached component")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Runtime, RuntimeConfig};

    #[test]
    fn the_engine_runs_exactly_the_features_the_registry_accepts_at_publish() {
        let runtime = Runtime::new(&RuntimeConfig {
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(
            runtime.engine().get_wasm_features(),
            aerie_core::inspect::HOST_FEATURES,
        );
    }
}
