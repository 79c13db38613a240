//! What the embedder hands the host for one installation, and the limits it runs under.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aerie_core::manifest::{Manifest, OutboundHost};
use aerie_core::name::PluginName;
use bytes::Bytes;

/// Everything the host needs to run one installation of a plugin.
#[derive(Clone)]
pub struct InstallationSpec {
    /// The installation's stable id: the scope of its key-value state and secrets. It stays
    /// the same across versions.
    pub id: String,
    /// The space the installation belongs to. Plugins call services only within their space.
    pub space: String,
    /// The package's manifest.
    pub manifest: Arc<Manifest>,
    /// The package's digest (`sha256:...`): the key of the compiled-component cache.
    pub digest: String,
    /// The component (`plugin.wasm`).
    pub component: Bytes,
    /// The installation's configuration, as `wasi:config/store` serves it.
    pub config: BTreeMap<String, String>,
    /// The outbound hosts this installation allows, a subset of those the manifest declares;
    /// `None` allows every declared host.
    pub allowed_outbound: Option<Vec<OutboundHost>>,
    /// The limits the installation runs under.
    pub limits: Limits,
    /// The version that ran before in this installation, passed to `init`.
    pub previous_version: Option<String>,
}

impl InstallationSpec {
    /// The plugin's name.
    pub fn plugin(&self) -> &PluginName {
        &self.manifest.plugin.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &semver::Version {
        &self.manifest.plugin.version
    }

    /// The outbound hosts calls may go to: declared by the manifest and allowed by the
    /// installation.
    pub fn outbound_hosts(&self) -> Vec<OutboundHost> {
        let declared = &self.manifest.permissions.outbound;
        match &self.allowed_outbound {
            None => declared.clone(),
            Some(allowed) => declared
                .iter()
                .filter(|host| allowed.contains(host))
                .cloned()
                .collect(),
        }
    }
}

/// Per-installation limits. A call that hits one fails alone, with a clear error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes, across the component's memories.
    pub memory: u64,
    /// Wall-clock time one call may take, including the response body.
    pub timeout: Duration,
    /// Bytes one HTTP response body may have.
    pub response_size: u64,
    /// Calls running at once; more wait for a slot until their deadline.
    pub concurrency: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: 64 * 1024 * 1024,
            timeout: Duration::from_secs(10),
            response_size: 16 * 1024 * 1024,
            concurrency: 64,
        }
    }
}

impl Limits {
    /// The limits for a plugin: what its manifest asks for (`permissions.memory`,
    /// `permissions.timeout`) where it asks, else `defaults`, never above `ceiling`.
    pub fn for_manifest(manifest: &Manifest, defaults: Limits, ceiling: Limits) -> Limits {
        let permissions = &manifest.permissions;
        Limits {
            memory: permissions
                .memory
                .unwrap_or(defaults.memory)
                .min(ceiling.memory),
            timeout: permissions
                .timeout
                .unwrap_or(defaults.timeout)
                .min(ceiling.timeout),
            response_size: defaults.response_size.min(ceiling.response_size),
            concurrency: defaults.concurrency.min(ceiling.concurrency),
        }
    }
}
