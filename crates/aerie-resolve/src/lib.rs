//! Resolves a space's requested plugins and their version requirements into a [`Lockfile`],
//! with PubGrub.
//!
//! Pure: the caller gathers every published version of the plugins involved into a
//! [`Catalog`]; [`resolve`] picks one version of each, or explains in plain sentences why no
//! choice works. Rules, as a user sees them:
//!
//! - the newest version that satisfies every requirement wins, except that a version already
//!   in the space's lockfile is kept while it still satisfies them (installing one plugin does
//!   not upgrade the others);
//! - yanked versions are not chosen, unless the lockfile already holds them;
//! - a version whose required `aerie:plugin` API this host does not provide is never chosen;
//! - pre-releases are chosen only for a plugin the space requests with a pre-release
//!   requirement (`>=2.0.0-beta.1`), or when locked.

mod explain;
mod lockfile;
mod ranges;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aerie_core::name::PluginName;
use pubgrub::{
    Dependencies, DependencyProvider, PackageResolutionStatistics, PubGrubError, Ranges,
};
use semver::{Version, VersionReq};

pub use lockfile::{LockedPlugin, Lockfile, LockfileError};
pub use ranges::requirement_range;

/// One published version, as resolution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its version.
    pub version: Version,
    /// Its package digest, recorded in the lockfile.
    pub digest: String,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Whether the registry certified it (its signature checked by the caller).
    pub certified: bool,
    /// The `aerie:plugin` API versions it works with (`plugin.api`).
    pub api: VersionReq,
    /// Its `[dependencies]`.
    pub dependencies: BTreeMap<PluginName, VersionReq>,
}

/// Every published version of the plugins a resolution may reach.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    plugins: BTreeMap<PluginName, BTreeMap<Version, Candidate>>,
}

impl Catalog {
    /// Adds a published version.
    pub fn add(&mut self, plugin: PluginName, candidate: Candidate) {
        self.plugins
            .entry(plugin)
            .or_default()
            .insert(candidate.version.clone(), candidate);
    }

    /// Records that `plugin` was looked up and has no versions, so that resolution says "no
    /// version of it is published" rather than treating it as not yet gathered.
    pub fn add_plugin(&mut self, plugin: PluginName) {
        self.plugins.entry(plugin).or_default();
    }

    /// Whether the versions of `plugin` have been gathered.
    pub fn contains(&self, plugin: &PluginName) -> bool {
        self.plugins.contains_key(plugin)
    }

    /// Plugins that some gathered version depends on but that are not gathered yet: what the
    /// caller should look up next.
    pub fn missing_dependencies(&self) -> BTreeSet<PluginName> {
        self.plugins
            .values()
            .flat_map(BTreeMap::values)
            .flat_map(|candidate| candidate.dependencies.keys())
            .filter(|dependency| !self.plugins.contains_key(*dependency))
            .cloned()
            .collect()
    }

    fn versions(&self, plugin: &PluginName) -> impl DoubleEndedIterator<Item = &Candidate> {
        self.plugins
            .get(plugin)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    fn get(&self, plugin: &PluginName, version: &Version) -> Option<&Candidate> {
        self.plugins.get(plugin)?.get(version)
    }
}

/// What to resolve.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The plugins the space asks for, each with its requirement (`*` for any).
    pub requested: &'a BTreeMap<PluginName, VersionReq>,
    /// The space's current lockfile, if any: its versions are kept when they still fit, and
    /// honoured even if yanked since.
    pub locked: Option<&'a Lockfile>,
    /// The `aerie:plugin` API version this host provides.
    pub host_api: &'a Version,
    /// Only certified versions may be chosen, locked ones included.
    pub require_certified: bool,
}

/// Why there is no lockfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No choice of versions satisfies every requirement; the explanation says why, in
    /// sentences.
    #[error("the plugins cannot be resolved:\n{explanation}")]
    NoSolution {
        /// Why, one step per line.
        explanation: String,
    },
    /// The catalog lacks the versions of a plugin resolution reached: a bug in the caller.
    #[error("the versions of {0} were not gathered before resolving")]
    NotGathered(PluginName),
}

/// A package in the resolution: the space itself (the root) or a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Node {
    Space,
    Plugin(PluginName),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Space => f.write_str("the space"),
            Node::Plugin(name) => write!(f, "{name}"),
        }
    }
}

/// Resolves `request` against `catalog`.
pub fn resolve(catalog: &Catalog, request: &Request<'_>) -> Result<Lockfile, ResolveError> {
    let provider = Provider { catalog, request };
    // PubGrub's explanations fold "there is no such version" into the requirement that asked
    // for it; said first, it is the whole answer.
    for (plugin, requirement) in request.requested {
        provider.gathered(plugin)?;
        if let Some(problem) = provider.unmatched(plugin, &requirement_range(requirement)) {
            return Err(ResolveError::NoSolution {
                explanation: format!("The space requires {plugin} {requirement}, but {problem}."),
            });
        }
    }
    let root_version = Version::new(0, 0, 0);
    let solution = match pubgrub::resolve(&provider, Node::Space, root_version) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(mut tree)) => {
            tree.collapse_no_versions();
            return Err(ResolveError::NoSolution {
                explanation: explain::explain(&tree),
            });
        }
        Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorChoosingVersion { source, .. }) => return Err(source),
        Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
    };
    let mut plugins = BTreeMap::new();
    for (node, version) in solution {
        let Node::Plugin(name) = node else { continue };
        let candidate = catalog
            .get(&name, &version)
            .ok_or_else(|| ResolveError::NotGathered(name.clone()))?;
        plugins.insert(
            name,
            LockedPlugin {
                version,
                digest: candidate.digest.clone(),
                dependencies: candidate.dependencies.keys().cloned().collect(),
            },
        );
    }
    Ok(Lockfile::new(plugins))
}

struct Provider<'a> {
    catalog: &'a Catalog,
    request: &'a Request<'a>,
}

impl Provider<'_> {
    fn locked(&self, plugin: &PluginName) -> Option<&Version> {
        self.request
            .locked?
            .plugins
            .get(plugin)
            .map(|locked| &locked.version)
    }

    /// Whether a pre-release of `plugin` may be chosen: the space asks for one explicitly.
    fn allows_prerelease(&self, plugin: &PluginName, version: &Version) -> bool {
        self.request
            .requested
            .get(plugin)
            .is_some_and(|requirement| {
                requirement.comparators.iter().any(|c| !c.pre.is_empty())
                    && requirement.matches(version)
            })
    }

    /// Why no published version of `plugin` is in `range`, if none is: the versions there
    /// are, to act on.
    fn unmatched(&self, plugin: &PluginName, range: &Ranges<Version>) -> Option<String> {
        let published: Vec<String> = self
            .catalog
            .versions(plugin)
            .map(|candidate| candidate.version.to_string())
            .collect();
        if published.is_empty() {
            return Some(format!("no version of {plugin} is published"));
        }
        if self
            .catalog
            .versions(plugin)
            .any(|candidate| range.contains(&candidate.version))
        {
            return None;
        }
        Some(format!(
            "no published version of {plugin} matches (there are {})",
            published.join(", ")
        ))
    }

    fn gathered(&self, plugin: &PluginName) -> Result<(), ResolveError> {
        if self.catalog.contains(plugin) {
            Ok(())
        } else {
            Err(ResolveError::NotGathered(plugin.clone()))
        }
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Node;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Priority = (u32, std::cmp::Reverse<usize>);
    type Err = ResolveError;

    fn prioritize(
        &self,
        package: &Node,
        range: &Ranges<Version>,
        statistics: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Most conflicted first, then the fewest choices: PubGrub's usual heuristic.
        let choices = match package {
            Node::Space => 1,
            Node::Plugin(name) => self
                .catalog
                .versions(name)
                .filter(|candidate| range.contains(&candidate.version))
                .count(),
        };
        (statistics.conflict_count(), std::cmp::Reverse(choices))
    }

    fn choose_version(
        &self,
        package: &Node,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, ResolveError> {
        let Node::Plugin(name) = package else {
            return Ok(Some(Version::new(0, 0, 0)));
        };
        self.gathered(name)?;
        if let Some(locked) = self.locked(name)
            && range.contains(locked)
            && self.catalog.get(name, locked).is_some()
        {
            return Ok(Some(locked.clone()));
        }
        Ok(self
            .catalog
            .versions(name)
            .rev()
            .map(|candidate| &candidate.version)
            .find(|version| {
                range.contains(*version)
                    && (version.pre.is_empty() || self.allows_prerelease(name, version))
            })
            .cloned())
    }

    fn get_dependencies(
        &self,
        package: &Node,
        version: &Version,
    ) -> Result<Dependencies<Node, Ranges<Version>, String>, ResolveError> {
        let dependencies = match package {
            Node::Space => self.request.requested,
            Node::Plugin(name) => {
                let candidate = self
                    .catalog
                    .get(name, version)
                    .ok_or_else(|| ResolveError::NotGathered(name.clone()))?;
                let locked = self.locked(name) == Some(version);
                if candidate.yanked && !locked {
                    return Ok(Dependencies::Unavailable("is yanked".into()));
                }
                if self.request.require_certified && !candidate.certified {
                    return Ok(Dependencies::Unavailable(
                        "is not certified (the space runs only certified versions)".into(),
                    ));
                }
                if !candidate.api.matches(self.request.host_api) {
                    return Ok(Dependencies::Unavailable(format!(
                        "requires aerie:plugin {}, but this host provides {}",
                        candidate.api, self.request.host_api
                    )));
                }
                for (dependency, requirement) in &candidate.dependencies {
                    self.gathered(dependency)?;
                    let range = requirement_range(requirement);
                    if let Some(problem) = self.unmatched(dependency, &range) {
                        return Ok(Dependencies::Unavailable(format!(
                            "depends on {dependency} {range}, but {problem}"
                        )));
                    }
                }
                &candidate.dependencies
            }
        };
        Ok(Dependencies::Available(
            dependencies
                .iter()
                .map(|(plugin, requirement)| {
                    (Node::Plugin(plugin.clone()), requirement_range(requirement))
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests;
