//! Calls to services other plugins export (`aerie:plugin/services`).
//!
//! The callee must be listed under `permissions.services` and `[dependencies]` in the
//! manifest, so the host starts it first and lets the call through.
//!
//! ```no_run
//! #[derive(serde::Serialize)]
//! struct Greet<'a> { name: &'a str }
//! #[derive(serde::Deserialize)]
//! struct Greeting { message: String }
//!
//! let greeting: Greeting =
//!     aerie_sdk::services::call_json("acme/greeter", "greet", &Greet { name: "Ada" }).unwrap();
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::imports::aerie::plugin::services::{self, CallError as WitCallError};

/// Why a service call did not return the callee's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError {
    /// The manifest does not list the plugin under `permissions.services`.
    NotPermitted,
    /// The plugin is not installed in this space or not running.
    Unavailable(String),
    /// The callee has no service by that name.
    UnknownService,
    /// The callee rejected the request as malformed.
    BadRequest(String),
    /// The callee failed.
    Failed(String),
    /// The callee's answer is not the JSON the caller expected.
    Decode(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotPermitted => {
                f.write_str("calling this plugin is not permitted by permissions.services")
            }
            CallError::Unavailable(why) => write!(f, "the plugin is unavailable: {why}"),
            CallError::UnknownService => f.write_str("the plugin has no service by that name"),
            CallError::BadRequest(why) => write!(f, "the plugin rejected the request: {why}"),
            CallError::Failed(why) => write!(f, "the plugin failed: {why}"),
            CallError::Decode(why) => write!(f, "the plugin's answer is not valid JSON: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Calls `service` of `plugin` (`namespace/name`) with raw bytes.
pub fn call(plugin: &str, service: &str, request: &[u8]) -> Result<Vec<u8>, CallError> {
    services::call(plugin, service, request).map_err(|err| match err {
        WitCallError::NotPermitted => CallError::NotPermitted,
        WitCallError::Unavailable(why) => CallError::Unavailable(why),
        WitCallError::UnknownService => CallError::UnknownService,
        WitCallError::BadRequest(why) => CallError::BadRequest(why),
        WitCallError::Failed(why) => CallError::Failed(why),
    })
}

/// Calls `service` of `plugin` with `request` encoded as JSON and decodes the JSON answer.
pub fn call_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
    plugin: &str,
    service: &str,
    request: &Req,
) -> Result<Resp, CallError> {
    let bytes = serde_json::to_vec(request).expect("a Serialize value renders as JSON");
    let answer = call(plugin, service, &bytes)?;
    serde_json::from_slice(&answer).map_err(|err| CallError::Decode(err.to_string()))
}
