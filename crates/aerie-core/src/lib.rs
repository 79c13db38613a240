//! Aerie's shared vocabulary: what a plugin package is and how to tell a good one from a bad one.
//!
//! - [`name`]: plugin names (`namespace/name`) and the identifiers inside manifests;
//! - [`manifest`]: `aerie.toml`, parsed and validated with errors that name the field;
//! - [`config`]: an installation's configuration, checked against the manifest's schema;
//! - [`package`]: the package archive (gzip tar), written deterministically and read as
//!   hostile input, never touching the disk;
//! - [`inspect`]: the component's imports and exports, and the permission each import needs;
//! - [`signature`]: minisign keys and detached signatures over packages;
//! - [`digest`]: `sha256:` content digests, the identity of a package;
//! - [`shown`]: which of a plugin's versions the catalogue shows;
//! - [`sealed`]: envelope encryption of installation secrets under rotatable master keys.
//!
//! This crate is pure: bytes in, values out. It does no I/O of its own, knows nothing of
//! databases, HTTP or the WebAssembly runtime, and every function that reads untrusted bytes
//! returns an error for bad input instead of panicking.

pub mod certification;
pub mod config;
pub mod digest;
pub mod inspect;
pub mod manifest;
pub mod name;
pub mod package;
pub mod range;
pub mod sealed;
pub mod shown;
pub mod signature;

#[cfg(test)]
mod test_support;

/// The version of the `aerie:plugin` WIT package this build of Aerie implements.
pub const PLUGIN_API_VERSION: semver::Version = semver::Version::new(0, 1, 0);
