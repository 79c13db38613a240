//! Runs plugins: WebAssembly components on one wasmtime engine, each installation in its own
//! sandbox with only the capabilities it was granted.
//!
//! - [`Runtime`]: the engine (pooling allocator, epoch interruption), the on-disk cache of
//!   compiled components, keyed so that a new engine never loads stale code, and one linker
//!   per set of [`Grants`].
//! - [`Host`]: the running installations. [`Host::load`] loads a set concurrently in
//!   dependency order; [`Host::swap`] replaces a version without dropping calls; calls go
//!   through [`Host::handle_http`] and [`Host::call_service`], each in a fresh store under
//!   the installation's [`Limits`] and behind its circuit [`breaker`].
//! - [`KeyValue`] and [`Secrets`]: what the embedder provides. This crate knows nothing of
//!   databases or web frameworks.
//! - [`HostMetrics`]: calls by outcome, latency, breaker and health state, for the embedder
//!   to register in its Prometheus registry.

mod bindings;
pub mod breaker;
mod capabilities;
mod error;
mod host;
mod limiter;
mod metrics;
pub mod outbound;
mod plugin;
mod runtime;
mod spec;
mod state;
mod telemetry;

pub use capabilities::{KeyPage, KeyValue, MemoryKeyValue, Secrets, StaticSecrets, StoreError};
pub use error::{CallError, LoadError};
pub use host::{Host, HostConfig, LoadReport, PluginLoad, RunningPlugin, Serving};
pub use limiter::{ComponentCaps, KeyValueLimits};
pub use metrics::{CallKind, HostMetrics, InstallationSeries};
pub use outbound::NetworkPolicy;
pub use plugin::{Health, ResponseBody};
pub use runtime::{CompileSource, Grants, Runtime, RuntimeConfig};
pub use spec::{InstallationSpec, Limits};
/// The error type of request bodies handed to [`Host::handle_http`].
pub use wasmtime_wasi_http::Error as HttpError;
