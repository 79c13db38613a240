//! Lifecycle hooks (`aerie:plugin/lifecycle`): `init`, `health` and `shutdown`.
//!
//! ```no_run
//! struct Counter;
//!
//! impl aerie_sdk::Lifecycle for Counter {
//!     fn init(previous_version: Option<&str>) -> Result<(), String> {
//!         if previous_version.is_none() {
//!             aerie_sdk::log::info("first start", &[]);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! aerie_sdk::export!(Counter: lifecycle);
//! ```

use crate::bindings::lifecycle_export::exports::aerie::plugin::lifecycle::Guest;

/// Hooks around a plugin's life in an installation. Export it with
/// `aerie_sdk::export!(Plugin: lifecycle)`. Every method has a default that succeeds.
pub trait Lifecycle {
    /// Runs on every start and after every update, before any request reaches this version.
    /// `previous_version` is the version that ran before (`None` on first install): migrate
    /// key-value state here. An error keeps this version from serving.
    fn init(previous_version: Option<&str>) -> Result<(), String> {
        let _ = previous_version;
        Ok(())
    }

    /// Whether this instance can serve; the error text is shown to administrators.
    fn health() -> Result<(), String> {
        Ok(())
    }

    /// Runs once before the host stops serving this version. Best effort.
    fn shutdown() {}
}

impl<T: Lifecycle> Guest for T {
    fn init(previous_version: Option<String>) -> Result<(), String> {
        <T as Lifecycle>::init(previous_version.as_deref())
    }

    fn health() -> Result<(), String> {
        <T as Lifecycle>::health()
    }

    fn shutdown() {
        <T as Lifecycle>::shutdown()
    }
}
