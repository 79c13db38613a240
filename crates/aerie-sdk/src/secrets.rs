//! The installation's secrets (`aerie:plugin/secrets`).
//!
//! A plugin reads only the names it declares under `permissions.secrets` in its manifest.
//! Values are set by the space's administrators and never leave the host except to the plugin.

use std::fmt;

use crate::bindings::imports::aerie::plugin::secrets;

/// Why a secret could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretError {
    /// The manifest does not declare this name under `permissions.secrets`.
    NotDeclared(String),
    /// The installation has no value for this name yet.
    NotSet(String),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotDeclared(name) => write!(
                f,
                "secret `{name}` is not declared under permissions.secrets in aerie.toml"
            ),
            SecretError::NotSet(name) => write!(f, "secret `{name}` has not been set"),
        }
    }
}

impl std::error::Error for SecretError {}

/// The value of the secret `name`.
pub fn get(name: &str) -> Result<String, SecretError> {
    secrets::get(name).map_err(|err| match err {
        secrets::Error::NotDeclared => SecretError::NotDeclared(name.to_string()),
        secrets::Error::NotSet => SecretError::NotSet(name.to_string()),
    })
}
