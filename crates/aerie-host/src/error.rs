//! Why a plugin did not load, and why a call failed.

use std::time::Duration;

/// Why an installation did not load. Each names what went wrong precisely enough to act on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    /// The component is not valid for this host's engine.
    #[error("the component does not compile: {0}")]
    Compile(String),
    /// The component imports an interface the installation was not granted.
    #[error(
        "the component imports `{interface}`, which needs the `{permission}` permission; the installation does not grant it"
    )]
    NotGranted {
        /// The imported interface.
        interface: String,
        /// The manifest field that would grant it.
        permission: String,
    },
    /// The component imports something the host does not provide.
    #[error("the component imports `{0}`, which this host does not provide")]
    UnknownImport(String),
    /// The component's imports could not be linked.
    #[error("the component does not link: {0}")]
    Link(String),
    /// Installations depend on each other in a cycle.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A dependency is not installed in the space.
    #[error("depends on {plugin} {requirement}, which is not installed in this space")]
    MissingDependency {
        /// The dependency.
        plugin: String,
        /// The requirement.
        requirement: String,
    },
    /// A dependency is installed at a version the requirement does not match.
    #[error("depends on {plugin} {requirement}, but {plugin} {found} is installed")]
    DependencyVersion {
        /// The dependency.
        plugin: String,
        /// The requirement.
        requirement: String,
        /// The installed version.
        found: String,
    },
    /// A dependency failed to load.
    #[error("dependency {plugin} failed: {reason}")]
    DependencyFailed {
        /// The dependency.
        plugin: String,
        /// Why it failed.
        reason: String,
    },
    /// The plugin's `init` returned an error, trapped or timed out.
    #[error("init failed: {0}")]
    Init(String),
    /// The plugin's `health` reported a problem, trapped or timed out.
    #[error("health check failed: {0}")]
    Health(String),
    /// The same plugin appears twice in one load.
    #[error("{0} is given more than once")]
    Duplicate(String),
    /// The host is not running the installation.
    #[error("{0} is not running")]
    NotRunning(String),
}

/// Why a call into a plugin did not produce its answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallError {
    /// No such plugin runs in the space.
    #[error("{0} is not running in this space")]
    NotRunning(String),
    /// The plugin does not export what the call needs.
    #[error("{plugin} does not export {export}")]
    NotExported {
        /// The plugin.
        plugin: String,
        /// The missing export.
        export: &'static str,
    },
    /// The circuit breaker is open after repeated failures.
    #[error("{plugin} failed repeatedly and is paused; retry in {} s", retry_after.as_secs())]
    BreakerOpen {
        /// The plugin.
        plugin: String,
        /// When a trial call may go through.
        retry_after: Duration,
    },
    /// The call did not finish within the installation's deadline.
    #[error("{plugin} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The call needed more memory than the installation's limit.
    #[error("{plugin} exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The plugin.
        plugin: String,
        /// The limit.
        limit: u64,
    },
    /// The response body was larger than the installation's limit.
    #[error("{plugin}'s response exceeded {limit} bytes")]
    ResponseTooLarge {
        /// The plugin.
        plugin: String,
        /// The limit.
        limit: u64,
    },
    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error("{plugin} crashed: {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// The trap, as wasmtime describes it.
        message: String,
    },
    /// The plugin has no service by that name.
    #[error("{plugin} provides no service `{service}`")]
    UnknownService {
        /// The plugin.
        plugin: String,
        /// The service asked for.
        service: String,
    },
    /// The plugin's service rejected the request as malformed.
    #[error("{plugin} rejected the request: {message}")]
    BadRequest {
        /// The plugin.
        plugin: String,
        /// Its message.
        message: String,
    },
    /// The plugin answered with an error of its own (a service's error, an HTTP error code).
    #[error("{plugin} failed: {message}")]
    Failed {
        /// The plugin.
        plugin: String,
        /// Its message.
        message: String,
    },
    /// The space has as many calls running as it may: the call waited its whole deadline for
    /// one to end. Not the plugin's fault: it does not count against its breaker.
    #[error("the space of {plugin} has too many calls running; try again shortly")]
    SpaceBusy {
        /// The plugin.
        plugin: String,
    },
    /// The host could not set the call up (instance pool exhausted, resource table full).
    #[error("{plugin} could not be started: {message}")]
    Host {
        /// The plugin.
        plugin: String,
        /// What failed.
        message: String,
    },
}

impl CallError {
    /// A stable code for the error: the `code` of the JSON error envelope and a metric label.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::NotRunning(_) => "plugin_not_running",
            CallError::NotExported { .. } => "plugin_export_missing",
            CallError::BreakerOpen { .. } => "plugin_breaker_open",
            CallError::Timeout { .. } => "plugin_timeout",
            CallError::MemoryLimit { .. } => "plugin_memory_limit",
            CallError::ResponseTooLarge { .. } => "plugin_response_too_large",
            CallError::Trap { .. } => "plugin_trap",
            CallError::UnknownService { .. } => "plugin_unknown_service",
            CallError::BadRequest { .. } => "plugin_bad_request",
            CallError::Failed { .. } => "plugin_failed",
            CallError::Host { .. } => "plugin_unavailable",
            CallError::SpaceBusy { .. } => "space_busy",
        }
    }

    /// Whether the failure counts against the plugin's circuit breaker: it misbehaved, as
    /// opposed to answering with an error of its own.
    pub fn counts_as_failure(&self) -> bool {
        matches!(
            self,
            CallError::Timeout { .. }
                | CallError::MemoryLimit { .. }
                | CallError::ResponseTooLarge { .. }
                | CallError::Trap { .. }
        )
    }
}
