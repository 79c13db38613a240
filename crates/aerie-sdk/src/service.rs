//! The plugin's own services (`aerie:plugin/service`), called by other plugins.
//!
//! ```no_run
//! use aerie_sdk::service::{self, ServiceError};
//!
//! struct Greeter;
//!
//! #[derive(serde::Deserialize)]
//! struct Greet { name: String }
//!
//! impl aerie_sdk::Service for Greeter {
//!     fn handle(name: &str, request: &[u8]) -> Result<Vec<u8>, ServiceError> {
//!         match name {
//!             "greet" => service::json(request, |greet: Greet| Ok(format!("Hello, {}!", greet.name))),
//!             _ => Err(ServiceError::UnknownService),
//!         }
//!     }
//! }
//!
//! aerie_sdk::export!(Greeter: service);
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::service_export::exports::aerie::plugin::service::{
    Error as WitServiceError, Guest,
};

/// The services a plugin provides. Export it with `aerie_sdk::export!(Plugin: service)`.
///
/// The names must be listed under `provides.services` in the manifest; the host refuses calls
/// to any other name before they reach the plugin.
pub trait Service {
    /// Serves one call of the service `name`.
    fn handle(name: &str, request: &[u8]) -> Result<Vec<u8>, ServiceError>;
}

/// Why a service call failed, as the caller will see it.
#[derive(Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// No service by that name.
    UnknownService,
    /// The request could not be understood.
    BadRequest(String),
    /// The request could not be served.
    Failed(String),
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::UnknownService => f.write_str("unknown service"),
            ServiceError::BadRequest(why) => write!(f, "bad request: {why}"),
            ServiceError::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Decodes `request` as JSON, runs `serve`, and encodes its answer as JSON.
pub fn json<Req: DeserializeOwned, Resp: Serialize>(
    request: &[u8],
    serve: impl FnOnce(Req) -> Result<Resp, ServiceError>,
) -> Result<Vec<u8>, ServiceError> {
    let request = serde_json::from_slice(request)
        .map_err(|err| ServiceError::BadRequest(format!("invalid JSON request: {err}")))?;
    let answer = serve(request)?;
    Ok(serde_json::to_vec(&answer).expect("a Serialize value renders as JSON"))
}

impl<T: Service> Guest for T {
    fn handle(service: String, request: Vec<u8>) -> Result<Vec<u8>, WitServiceError> {
        T::handle(&service, &request).map_err(|err| match err {
            ServiceError::UnknownService => WitServiceError::UnknownService,
            ServiceError::BadRequest(why) => WitServiceError::BadRequest(why),
            ServiceError::Failed(why) => WitServiceError::Failed(why),
        })
    }
}
