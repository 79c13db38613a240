//! The lockfile: the exact version and package digest of every plugin a space runs.
//!
//! Stored by the server per space and exportable as TOML:
//!
//! ```toml
//! version = 1
//!
//! [[plugin]]
//! name = "examples/greeter"
//! version = "1.0.0"
//! digest = "sha256:..."
//! dependencies = []
//! ```

use std::collections::{BTreeMap, BTreeSet};

use aerie_core::digest::Digest;
use aerie_core::name::PluginName;
use semver::Version;
use serde::{Deserialize, Serialize};

/// The lockfile format this crate writes and reads.
const FORMAT: u32 = 1;

/// The largest lockfile read: far more than any space's plugins need.
const MAX_SIZE: usize = 1024 * 1024;

/// One plugin's pinned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPlugin {
    /// The version.
    pub version: Version,
    /// Its package digest (`sha256:...`): what is loaded is exactly what was resolved.
    pub digest: String,
    /// The plugins it depends on (each also in the lockfile).
    pub dependencies: BTreeSet<PluginName>,
}

/// Every plugin of a space at its resolved version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lockfile {
    /// By plugin name.
    pub plugins: BTreeMap<PluginName, LockedPlugin>,
}

/// Why a lockfile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockfileError {
    /// Over the size limit.
    #[error("the lockfile is {0} bytes; the limit is 1 MiB")]
    TooLarge(usize),
    /// Not valid TOML of the expected shape.
    #[error("the lockfile is malformed: {0}")]
    Malformed(String),
    /// A format this version of Aerie does not read.
    #[error("lockfile format {0} is not supported; this version of Aerie reads format 1")]
    UnsupportedFormat(u32),
    /// The same plugin twice.
    #[error("{0} is locked twice")]
    Duplicate(PluginName),
    /// A digest that is not `sha256:` and 64 hex digits.
    #[error("{plugin}: {message}")]
    BadDigest {
        /// The plugin.
        plugin: PluginName,
        /// What is wrong.
        message: String,
    },
    /// A dependency that is not locked itself.
    #[error("{plugin} depends on {dependency}, which the lockfile does not lock")]
    MissingDependency {
        /// The plugin.
        plugin: PluginName,
        /// Its dependency.
        dependency: PluginName,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockfileText {
    version: u32,
    #[serde(default)]
    plugin: Vec<PluginText>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginText {
    name: PluginName,
    version: Version,
    digest: String,
    #[serde(default)]
    dependencies: BTreeSet<PluginName>,
}

impl Lockfile {
    /// A lockfile of `plugins`.
    pub fn new(plugins: BTreeMap<PluginName, LockedPlugin>) -> Lockfile {
        Lockfile { plugins }
    }

    /// The TOML text, plugins sorted by name.
    pub fn to_toml(&self) -> String {
        let text = LockfileText {
            version: FORMAT,
            plugin: self
                .plugins
                .iter()
                .map(|(name, locked)| PluginText {
                    name: name.clone(),
                    version: locked.version.clone(),
                    digest: locked.digest.clone(),
                    dependencies: locked.dependencies.clone(),
                })
                .collect(),
        };
        let body = toml::to_string(&text).expect("a lockfile serialises");
        format!(
            "# The plugins of an Aerie space at their resolved versions. Generated; do not edit.\n{body}"
        )
    }

    /// Reads a lockfile, checking everything: its size, shape, format, digests, and that every
    /// dependency is locked too.
    pub fn parse(text: &str) -> Result<Lockfile, LockfileError> {
        if text.len() > MAX_SIZE {
            return Err(LockfileError::TooLarge(text.len()));
        }
        let parsed: LockfileText = toml::from_str(text)
            .map_err(|err| LockfileError::Malformed(err.message().to_string()))?;
        if parsed.version != FORMAT {
            return Err(LockfileError::UnsupportedFormat(parsed.version));
        }
        let mut plugins = BTreeMap::new();
        for plugin in parsed.plugin {
            if let Err(err) = plugin.digest.parse::<Digest>() {
                return Err(LockfileError::BadDigest {
                    plugin: plugin.name,
                    message: err.to_string(),
                });
            }
            let name = plugin.name.clone();
            let locked = LockedPlugin {
                version: plugin.version,
                digest: plugin.digest,
                dependencies: plugin.dependencies,
            };
            if plugins.insert(name.clone(), locked).is_some() {
                return Err(LockfileError::Duplicate(name));
            }
        }
        for (plugin, locked) in &plugins {
            if let Some(dependency) = locked
                .dependencies
                .iter()
                .find(|dependency| !plugins.contains_key(*dependency))
            {
                return Err(LockfileError::MissingDependency {
                    plugin: plugin.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
        Ok(Lockfile { plugins })
    }
}
