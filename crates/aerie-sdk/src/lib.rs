//! Write Aerie plugins in Rust.
//!
//! A plugin is a WebAssembly component built for the `wasm32-wasip2` target. It implements one
//! or more of three traits, each matching an export of the plugin ABI, and names them in one
//! [`export!`] call:
//!
//! - [`Http`]: the plugin's HTTP endpoints (`wasi:http/incoming-handler`);
//! - [`Service`]: named request/response calls from other plugins (`aerie:plugin/service`);
//! - [`Lifecycle`]: `init` after every start and update, `health`, `shutdown`
//!   (`aerie:plugin/lifecycle`).
//!
//! Inside those, the modules below reach the host: [`config`] (typed installation config),
//! [`kv`] (durable key-value state), [`secrets`], [`log`], [`services`] (call other plugins)
//! and [`http::send`] (outbound HTTP).
//!
//! ```no_run
//! use aerie_sdk::http::{Request, Response};
//!
//! struct Hello;
//!
//! impl aerie_sdk::Http for Hello {
//!     fn handle(request: Request) -> aerie_sdk::http::Result<Response> {
//!         Ok(Response::text(200, format!("Hello from {}", request.path())))
//!     }
//! }
//!
//! aerie_sdk::export!(Hello: http);
//! ```
//!
//! Every capability the plugin uses must be granted in its `aerie.toml`: the registry reads the
//! component's imports at publish and refuses one the manifest's permissions do not cover.

pub mod config;
pub mod http;
pub mod kv;
pub mod lifecycle;
pub mod log;
pub mod secrets;
pub mod service;
pub mod services;

mod bindings;

pub use http::Http;
pub use lifecycle::Lifecycle;
pub use service::Service;

/// Implementation details used by [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::*;
}

/// Exports a plugin type's implementations of [`Http`], [`Service`] and [`Lifecycle`].
///
/// Name the type, a colon, then the exports it implements, in any order:
/// `http`, `service`, `lifecycle`.
///
/// ```no_run
/// use aerie_sdk::service::ServiceError;
///
/// struct Greeter;
///
/// impl aerie_sdk::Service for Greeter {
///     fn handle(name: &str, request: &[u8]) -> Result<Vec<u8>, ServiceError> {
///         match name {
///             "echo" => Ok(request.to_vec()),
///             _ => Err(ServiceError::UnknownService),
///         }
///     }
/// }
///
/// // Every hook has a default.
/// impl aerie_sdk::Lifecycle for Greeter {}
///
/// aerie_sdk::export!(Greeter: service, lifecycle);
/// ```
///
/// An export that does not exist is a compile error:
///
/// ```compile_fail
/// struct Plugin;
/// aerie_sdk::export!(Plugin: grpc);
/// ```
///
/// Call it once per plugin crate. The component exports exactly what is named, so the
/// manifest's `[provides]` section must match: `http` needs `provides.routes`, `service`
/// needs `provides.services`.
#[macro_export]
macro_rules! export {
    ($plugin:ident : $($export:ident),+ $(,)?) => {
        $( $crate::export!(@one $plugin $export); )+
    };
    (@one $plugin:ident http) => {
        $crate::__private::http_endpoint::export_http_endpoint!(
            $plugin with_types_in $crate::__private::http_endpoint
        );
    };
    (@one $plugin:ident service) => {
        $crate::__private::service_export::export_service!(
            $plugin with_types_in $crate::__private::service_export
        );
    };
    (@one $plugin:ident lifecycle) => {
        $crate::__private::lifecycle_export::export_lifecycle!(
            $plugin with_types_in $crate::__private::lifecycle_export
        );
    };
    (@one $plugin:ident $other:ident) => {
        compile_error!(concat!(
            "unknown export `", stringify!($other), "`: expected `http`, `service` or `lifecycle`"
        ));
    };
}
