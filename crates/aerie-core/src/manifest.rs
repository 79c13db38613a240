//! The plugin manifest, `aerie.toml`.
//!
//! ```toml
//! [plugin]
//! name = "acme/hello"
//! version = "0.1.0"
//! description = "Says hello"
//! license = "MIT OR Apache-2.0"
//! categories = ["developer-tools"]
//! api = "0.1"
//!
//! [permissions]
//! outbound = ["api.example.com"]
//!
//! [[provides.routes]]
//! path = "/*"
//! guard = "public"
//! ```
//!
//! [`Manifest::parse`] reports every problem it finds at once, each naming the field path and
//! the rule it breaks (`permissions.outbound[2]: "exa mple.com" is not a host name`). Unknown
//! fields are errors with a did-you-mean suggestion, so a typo never silently drops a setting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::PLUGIN_API_VERSION;
use crate::name::{PluginName, check_identifier};

/// The fixed list of categories a plugin may belong to.
pub const CATEGORIES: &[&str] = &[
    "service-management",
    "business-intelligence",
    "data-integration",
    "automation",
    "analytics",
    "security",
    "developer-tools",
    "other",
];

/// Most tags a plugin may have.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_LEN: usize = 32;
/// Most categories a plugin may be listed under.
pub const MAX_CATEGORIES: usize = 3;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 300;
/// Smallest and largest memory limit a plugin may ask for.
pub const MEMORY_RANGE: (u64, u64) = (1 << 20, 4 << 30);
/// Shortest and longest per-call deadline a plugin may ask for.
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(600));

/// A validated `aerie.toml`.
///
/// Serialised as JSON it is what the registry stores with each version, and
/// [`Manifest::from_stored`] reads that back: the one typed reader of a stored manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The `[plugin]` table: identity and catalogue data.
    pub plugin: PluginInfo,
    /// The `[permissions]` table: what the plugin may reach.
    #[serde(default)]
    pub permissions: Permissions,
    /// The `[dependencies]` table: other plugins this one needs, with version requirements.
    #[serde(default)]
    pub dependencies: BTreeMap<PluginName, VersionReq>,
    /// The `[provides]` table: the plugin's HTTP routes and services.
    #[serde(default)]
    pub provides: Provides,
    /// The `[config]` table: a JSON Schema (written in TOML) for the installation's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// The `[plugin]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// `namespace/name`.
    pub name: PluginName,
    /// The plugin's version.
    pub version: Version,
    /// One line about what it does.
    #[serde(default)]
    pub description: String,
    /// An SPDX license expression.
    #[serde(default)]
    pub license: String,
    /// Its authors, free text (`Name <email>` by convention).
    #[serde(default)]
    pub authors: Vec<String>,
    /// Its web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Its source repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Catalogue categories, from [`CATEGORIES`].
    #[serde(default)]
    pub categories: Vec<String>,
    /// Free-form search tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The versions of the `aerie:plugin` API the plugin works with.
    pub api: VersionReq,
}

/// The `[permissions]` table: every capability beyond the always-available basics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    /// Hosts the plugin may call over `wasi:http/outgoing-handler`.
    pub outbound: Vec<OutboundHost>,
    /// Names of the secrets the plugin may read.
    pub secrets: Vec<String>,
    /// Plugins whose services it may call; each is also a dependency.
    pub services: Vec<PluginName>,
    /// Whether it keeps state in `wasi:keyvalue`.
    pub keyvalue: bool,
    /// The memory it asks for, in bytes, instead of the host's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The per-call deadline it asks for instead of the host's default.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_duration",
        deserialize_with = "deserialize_duration"
    )]
    pub timeout: Option<Duration>,
}

fn deserialize_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}

fn serialize_duration<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.collect_str(&humantime::format_duration(*duration)),
        None => serializer.serialize_none(),
    }
}

/// The `[provides]` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provides {
    /// Names of the services the plugin exports for other plugins.
    pub services: Vec<String>,
    /// The HTTP routes the plugin serves, with their guards.
    pub routes: Vec<Route>,
    /// Pages the plugin contributes to its space's dashboard, each one of its `GET` routes,
    /// shown framed and sandboxed, from the space's plugin origin.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<Page>,
}

/// A page a plugin contributes to its space's dashboard: `[[provides.pages]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// What the dashboard calls it.
    pub title: String,
    /// Its path within the plugin, a literal path that one of its `GET` routes answers.
    pub path: String,
}

/// One HTTP route a plugin serves under `/{namespace}/{name}` on its space's plugin origin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The path pattern: `/`, `/items/{id}`, or a prefix ending in `/*`.
    pub path: String,
    /// The methods it answers; empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Who may call it.
    pub guard: Guard,
}

/// How a request's path and method matched a plugin's routes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RouteMatch<'a> {
    /// The route to serve it.
    Found(&'a Route),
    /// A route has the path, but not the method.
    MethodNotAllowed,
    /// No route has the path.
    NotFound,
}

impl Route {
    /// How specifically the route's pattern matches `path`: `None` when it does not; exact
    /// paths beat `{param}` segments, which beat longer prefixes, which beat shorter ones.
    fn specificity(&self, path: &str) -> Option<(u8, usize)> {
        if let Some(prefix) = self.path.strip_suffix("/*") {
            let rest = path.strip_prefix(prefix)?;
            return (rest.is_empty() || rest.starts_with('/')).then_some((0, prefix.len()));
        }
        let pattern: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if pattern.len() != actual.len() {
            return None;
        }
        let mut exact = true;
        for (want, got) in pattern.iter().zip(&actual) {
            if want.starts_with('{') && want.ends_with('}') {
                if got.is_empty() {
                    return None;
                }
                exact = false;
            } else if want != got {
                return None;
            }
        }
        Some((if exact { 2 } else { 1 }, self.path.len()))
    }

    /// Whether the route answers `method` (`HEAD` goes with `GET`).
    fn allows_method(&self, method: &str) -> bool {
        self.methods.is_empty()
            || self.methods.iter().any(|allowed| {
                allowed.eq_ignore_ascii_case(method)
                    || (method.eq_ignore_ascii_case("HEAD") && allowed == "GET")
            })
    }
}

impl Provides {
    /// The route serving `method` on `path` (the path within the plugin, starting with `/`).
    pub fn route_for(&self, method: &str, path: &str) -> RouteMatch<'_> {
        let mut best: Option<((u8, usize), &Route)> = None;
        let mut path_known = false;
        for route in &self.routes {
            let Some(rank) = route.specificity(path) else {
                continue;
            };
            path_known = true;
            if route.allows_method(method) && best.is_none_or(|(best_rank, _)| rank > best_rank) {
                best = Some((rank, route));
            }
        }
        match best {
            Some((_, route)) => RouteMatch::Found(route),
            None if path_known => RouteMatch::MethodNotAllowed,
            None => RouteMatch::NotFound,
        }
    }
}

/// Who may call a route: anyone, or members of the space holding at least a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Guard {
    /// Anyone, signed in or not.
    Public,
    /// Any member of the space.
    Viewer,
    /// Members with the member role or higher.
    Member,
    /// The space's admins and owners.
    Admin,
    /// The space's owners.
    Owner,
}

const GUARDS: &[(&str, Guard)] = &[
    ("public", Guard::Public),
    ("viewer", Guard::Viewer),
    ("member", Guard::Member),
    ("admin", Guard::Admin),
    ("owner", Guard::Owner),
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// A host a plugin may call: a DNS name (optionally `*.` for any subdomain) or an IP address,
/// optionally with a port; without one, the standard ports (80 for `http`, 443 for `https`).
///
/// An IP address or a `localhost` name is a host on the operator's own network: the registry
/// refuses them at publish unless its operator allows them ([`OutboundHost::is_local`]), and
/// whatever a name is, the host checks the addresses it resolves to before connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundHost {
    /// The host name or address, without brackets or wildcard.
    pub host: String,
    /// Whether `*.` was given: any subdomain of `host`, not `host` itself.
    pub any_subdomain: bool,
    /// The one port allowed; the standard ports 80 and 443 when `None`.
    pub port: Option<u16>,
}

/// The ports an outbound host without a port allows: HTTP's and HTTPS's.
pub const STANDARD_PORTS: [u16; 2] = [80, 443];

impl OutboundHost {
    /// Whether a request to `host` (lowercase, no brackets) on `port` is covered.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let port_matches = match self.port {
            Some(allowed) => allowed == port,
            None => STANDARD_PORTS.contains(&port),
        };
        self.matches_host(host) && port_matches
    }

    /// Whether `host` (lowercase, no brackets) is this host, or one of its subdomains for a
    /// `*.` pattern, whatever the port.
    pub fn matches_host(&self, host: &str) -> bool {
        if self.any_subdomain {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        }
    }

    /// Whether this names the operator's own machine or network by address or as
    /// `localhost` rather than a public DNS name: an IP address, `localhost`, or a name under
    /// `.localhost`.
    pub fn is_local(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
            || self.host == "localhost"
            || self.host.ends_with(".localhost")
    }
}

impl fmt::Display for OutboundHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any_subdomain {
            f.write_str("*.")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl Serialize for OutboundHost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OutboundHost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for OutboundHost {
    type Err = String;

    fn from_str(text: &str) -> Result<OutboundHost, String> {
        let not_host = |hint: &str| Err(format!("{text:?} is not a host name{hint}"));
        if text.contains("://") || text.contains('/') {
            return not_host("; write only the host, like \"api.example.com\"");
        }
        let (host_part, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((address, after)) = rest.split_once(']') else {
                return not_host("");
            };
            if address.parse::<Ipv6Addr>().is_err() {
                return not_host("");
            }
            match after {
                "" => (address, None),
                _ => match after.strip_prefix(':').map(str::parse::<u16>) {
                    Some(Ok(port)) if port > 0 => (address, Some(port)),
                    _ => return not_host(": the port must be a number from 1 to 65535"),
                },
            }
        } else {
            match text.rsplit_once(':') {
                Some((host, port)) => match port.parse::<u16>() {
                    Ok(port) if port > 0 => (host, Some(port)),
                    _ => return not_host(": the port must be a number from 1 to 65535"),
                },
                None => (text, None),
            }
        };
        if text.starts_with('[') {
            return Ok(OutboundHost {
                host: host_part.to_ascii_lowercase(),
                any_subdomain: false,
                port,
            });
        }
        let (any_subdomain, host) = match host_part.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host_part),
        };
        if host.parse::<Ipv4Addr>().is_ok() {
            if any_subdomain {
                return not_host(": `*.` applies to names, not addresses");
            }
        } else if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return not_host(": host names are written in lowercase");
        } else if !is_dns_name(host) {
            return not_host("");
        }
        Ok(OutboundHost {
            host: host.to_string(),
            any_subdomain,
            port,
        })
    }
}

fn is_dns_name(host: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    // An all-numeric last label would read as a malformed IPv4 address.
    (1..=253).contains(&host.len())
        && host.split('.').all(label_ok)
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// One problem in a manifest: where it is and what rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field path, like `permissions.outbound[2]`; empty for a TOML syntax error.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The 1-based line and column, when the TOML parser knows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<(usize, usize)>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, column)) = self.position {
            write!(f, "line {line}, column {column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a manifest was refused: every problem found, in document order where known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The problems, at least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid aerie.toml: {one}"),
            many => {
                write!(f, "invalid aerie.toml ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

// The raw shape of the document. Everything is optional or defaulted here so that missing
// fields are reported by `validate`, all at once, with their full path.

#[derive(Deserialize, Default)]
#[serde(expecting = "a table")]
struct RawManifest {
    plugin: Option<RawPlugin>,
    #[serde(default)]
    permissions: RawPermissions,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    #[serde(default)]
    provides: RawProvides,
    config: Option<toml::Table>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a table")]
struct RawPlugin {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    license: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
    homepage: Option<String>,
    repository: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    api: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a table")]
struct RawPermissions {
    #[serde(default)]
    outbound: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    keyvalue: bool,
    memory: Option<String>,
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a table")]
struct RawProvides {
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    pages: Vec<RawPage>,
}

#[derive(Deserialize)]
#[serde(expecting = "a table")]
struct RawPage {
    title: Option<String>,
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a table")]
struct RawRoute {
    path: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    guard: Option<String>,
}

/// The fields each table accepts, for did-you-mean suggestions. Keys are table paths with
/// array indices written `[]`. Kept in step with the raw structs by a test.
const KNOWN_FIELDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "plugin",
            "permissions",
            "dependencies",
            "provides",
            "config",
        ],
    ),
    (
        "plugin",
        &[
            "name",
            "version",
            "description",
            "license",
            "authors",
            "homepage",
            "repository",
            "categories",
            "tags",
            "api",
        ],
    ),
    (
        "permissions",
        &[
            "outbound", "secrets", "services", "keyvalue", "memory", "timeout",
        ],
    ),
    ("provides", &["services", "routes", "pages"]),
    ("provides.routes[]", &["path", "methods", "guard"]),
    ("provides.pages[]", &["title", "path"]),
];

impl Manifest {
    /// Parses and validates the text of an `aerie.toml`.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut problems = Problems::default();
        let raw = parse_raw(text, &mut problems);
        let manifest = raw.and_then(|raw| validate(raw, &mut problems));
        match manifest {
            Some(manifest) if problems.0.is_empty() => Ok(manifest),
            _ => Err(ManifestError {
                problems: problems.0,
            }),
        }
    }

    /// Reads a manifest as the registry stores it: its JSON serialisation, validated when
    /// the version was published.
    pub fn from_stored(json: &str) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The permission names this manifest grants, in the words of `permissions.*`.
    pub fn granted_permissions(&self) -> BTreeSet<crate::inspect::Permission> {
        use crate::inspect::Permission;
        let permissions = &self.permissions;
        [
            (!permissions.outbound.is_empty()).then_some(Permission::Outbound),
            (!permissions.secrets.is_empty()).then_some(Permission::Secrets),
            (!permissions.services.is_empty()).then_some(Permission::Services),
            permissions.keyvalue.then_some(Permission::KeyValue),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
            position: None,
        });
    }
}

fn parse_raw(text: &str, problems: &mut Problems) -> Option<RawManifest> {
    let deserializer = match toml::de::Deserializer::parse(text) {
        Ok(deserializer) => deserializer,
        Err(err) => {
            problems.0.push(toml_problem(text, String::new(), &err));
            return None;
        }
    };
    let mut unknown = Vec::new();
    let mut record_unknown = |path: serde_ignored::Path<'_>| unknown.push(segments(&path));
    let ignored = serde_ignored::Deserializer::new(deserializer, &mut record_unknown);
    let raw: RawManifest = match serde_path_to_error::deserialize(ignored) {
        Ok(raw) => raw,
        Err(err) => {
            let path = display_path(err.path());
            problems.0.push(toml_problem(text, path, err.inner()));
            return None;
        }
    };
    for path in unknown {
        let (field, parent) = path.split_last().expect("an ignored field has a name");
        let field = match field {
            Segment::Key(key) => key.as_str(),
            Segment::Index(_) => continue,
        };
        let mut message = "unknown field".to_string();
        if let Some(suggestion) = did_you_mean(field, known_fields(parent)) {
            message.push_str(&format!("; did you mean `{suggestion}`?"));
        }
        problems.add(join_segments(&path), message);
    }
    Some(raw)
}

fn toml_problem(text: &str, path: String, err: &toml::de::Error) -> Problem {
    let position = err.span().map(|span| line_and_column(text, span.start));
    Problem {
        path,
        message: err.message().trim_end().to_string(),
        position,
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    match path {
        Path::Root => Vec::new(),
        Path::Seq { parent, index } => {
            let mut out = segments(parent);
            out.push(Segment::Index(*index));
            out
        }
        Path::Map { parent, key } => {
            let mut out = segments(parent);
            out.push(Segment::Key(key.clone()));
            out
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    }
}

fn join_segments(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment as S;
    let converted: Vec<Segment> = path
        .iter()
        .filter_map(|segment| match segment {
            S::Map { key } => Some(Segment::Key(key.clone())),
            S::Seq { index } => Some(Segment::Index(*index)),
            S::Enum { variant } => Some(Segment::Key(variant.clone())),
            S::Unknown => None,
        })
        .collect();
    join_segments(&converted)
}

fn known_fields(parent: &[Segment]) -> &'static [&'static str] {
    let key: String = parent
        .iter()
        .map(|segment| match segment {
            Segment::Key(key) => format!(".{key}"),
            Segment::Index(_) => "[]".to_string(),
        })
        .collect();
    let key = key.strip_prefix('.').unwrap_or(&key);
    KNOWN_FIELDS
        .iter()
        .find(|(table, _)| *table == key)
        .map_or(&[], |(_, fields)| fields)
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min()
        .map(|(_, candidate)| candidate)
}

fn validate(raw: RawManifest, problems: &mut Problems) -> Option<Manifest> {
    let Some(plugin) = raw.plugin else {
        problems.add("plugin", "the [plugin] table is required");
        return None;
    };
    let plugin = validate_plugin(plugin, problems);
    // Services are checked against every declared dependency, even one whose requirement is
    // invalid, so that one mistake is reported once.
    let declared: BTreeSet<String> = raw.dependencies.keys().cloned().collect();
    let dependencies = validate_dependencies(raw.dependencies, plugin.as_ref(), problems);
    let permissions = validate_permissions(raw.permissions, &declared, problems);
    let provides = validate_provides(raw.provides, problems);
    let config = raw
        .config
        .and_then(|table| validate_config(table, problems));
    Some(Manifest {
        plugin: plugin?,
        permissions,
        dependencies,
        provides,
        config,
    })
}

fn required<T>(value: Option<T>, path: &str, problems: &mut Problems) -> Option<T> {
    if value.is_none() {
        problems.add(path, "is required");
    }
    value
}

fn validate_plugin(raw: RawPlugin, problems: &mut Problems) -> Option<PluginInfo> {
    let name = required(raw.name, "plugin.name", problems).and_then(|name| {
        name.parse::<PluginName>()
            .map_err(|err| problems.add("plugin.name", err.to_string()))
            .ok()
    });
    let version = required(raw.version, "plugin.version", problems).and_then(|text| {
        Version::parse(&text)
            .map_err(|err| {
                problems.add(
                    "plugin.version",
                    format!("{text:?} is not a semantic version (like 1.2.3): {err}"),
                )
            })
            .ok()
    });
    let description = required(raw.description, "plugin.description", problems).and_then(|text| {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            problems.add("plugin.description", "must not be empty");
            None
        } else if trimmed.chars().count() > MAX_DESCRIPTION_LEN {
            problems.add(
                "plugin.description",
                format!("is longer than {MAX_DESCRIPTION_LEN} characters"),
            );
            None
        } else {
            Some(trimmed.to_string())
        }
    });
    let license = required(raw.license, "plugin.license", problems).and_then(|text| {
        match spdx::Expression::parse(&text) {
            Ok(_) => Some(text),
            Err(err) => {
                problems.add(
                    "plugin.license",
                    format!(
                        "{text:?} is not an SPDX license expression (like \"MIT OR Apache-2.0\"): {}",
                        err.reason
                    ),
                );
                None
            }
        }
    });
    for (index, author) in raw.authors.iter().enumerate() {
        if author.trim().is_empty() || author.chars().count() > 128 {
            problems.add(
                format!("plugin.authors[{index}]"),
                "must be 1 to 128 characters",
            );
        }
    }
    let homepage = raw
        .homepage
        .filter(|url| check_url(url, "plugin.homepage", problems));
    let repository = raw
        .repository
        .filter(|url| check_url(url, "plugin.repository", problems));
    validate_categories(&raw.categories, problems);
    validate_tags(&raw.tags, problems);
    let api = required(raw.api, "plugin.api", problems).and_then(|text| {
        match VersionReq::parse(&text) {
            Ok(req) if req.matches(&PLUGIN_API_VERSION) => Some(req),
            Ok(_) => {
                problems.add(
                    "plugin.api",
                    format!(
                        "requires aerie:plugin {text}, but this version of Aerie provides {PLUGIN_API_VERSION}"
                    ),
                );
                None
            }
            Err(err) => {
                problems.add(
                    "plugin.api",
                    format!("{text:?} is not a version requirement (like \"0.1\"): {err}"),
                );
                None
            }
        }
    });
    Some(PluginInfo {
        name: name?,
        version: version?,
        description: description?,
        license: license?,
        authors: raw.authors,
        homepage,
        repository,
        categories: raw.categories,
        tags: raw.tags,
        api: api?,
    })
}

fn check_url(text: &str, path: &str, problems: &mut Problems) -> bool {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => true,
        _ => {
            problems.add(path, format!("{text:?} is not an http or https URL"));
            false
        }
    }
}

fn validate_categories(categories: &[String], problems: &mut Problems) {
    if categories.is_empty() {
        problems.add(
            "plugin.categories",
            format!("needs at least one of: {}", CATEGORIES.join(", ")),
        );
    }
    if categories.len() > MAX_CATEGORIES {
        problems.add(
            "plugin.categories",
            format!(
                "has {} entries; at most {MAX_CATEGORIES} are allowed",
                categories.len()
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for (index, category) in categories.iter().enumerate() {
        let path = format!("plugin.categories[{index}]");
        if !CATEGORIES.contains(&category.as_str()) {
            let hint = did_you_mean(category, CATEGORIES)
                .map(|s| format!("did you mean \"{s}\"? "))
                .unwrap_or_default();
            problems.add(
                path,
                format!(
                    "{category:?} is not a category; {hint}the categories are: {}",
                    CATEGORIES.join(", ")
                ),
            );
        } else if !seen.insert(category) {
            problems.add(path, format!("{category:?} is listed twice"));
        }
    }
}

fn validate_tags(tags: &[String], problems: &mut Problems) {
    if tags.len() > MAX_TAGS {
        problems.add(
            "plugin.tags",
            format!("has {} tags; at most {MAX_TAGS} are allowed", tags.len()),
        );
    }
    check_names(tags, "plugin.tags", MAX_TAG_LEN, false, &['-'], problems);
}

/// Checks a list of identifiers, each against [`check_identifier`], and that none repeats.
fn check_names(
    names: &[String],
    path: &str,
    max_len: usize,
    uppercase: bool,
    extra: &[char],
    problems: &mut Problems,
) {
    let mut seen = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        let item = format!("{path}[{index}]");
        if let Err(rule) = check_identifier(name, max_len, uppercase, extra) {
            problems.add(item, rule);
        } else if !seen.insert(name) {
            problems.add(item, format!("{name:?} is listed twice"));
        }
    }
}

fn validate_dependencies(
    raw: BTreeMap<String, String>,
    plugin: Option<&PluginInfo>,
    problems: &mut Problems,
) -> BTreeMap<PluginName, VersionReq> {
    let mut dependencies = BTreeMap::new();
    for (name, requirement) in raw {
        let path = format!("dependencies.{name:?}");
        let parsed_name = match name.parse::<PluginName>() {
            Ok(parsed) => parsed,
            Err(err) => {
                problems.add(path, err.to_string());
                continue;
            }
        };
        if plugin.is_some_and(|plugin| plugin.name == parsed_name) {
            problems.add(path, "a plugin cannot depend on itself");
            continue;
        }
        match VersionReq::parse(&requirement) {
            Ok(req) => {
                dependencies.insert(parsed_name, req);
            }
            Err(err) => problems.add(
                path,
                format!("{requirement:?} is not a version requirement (like \"^1.2\"): {err}"),
            ),
        }
    }
    dependencies
}

fn validate_permissions(
    raw: RawPermissions,
    dependencies: &BTreeSet<String>,
    problems: &mut Problems,
) -> Permissions {
    let mut outbound = Vec::new();
    for (index, text) in raw.outbound.iter().enumerate() {
        let path = format!("permissions.outbound[{index}]");
        match text.parse::<OutboundHost>() {
            Ok(host) if outbound.contains(&host) => {
                problems.add(path, format!("{text:?} is listed twice"))
            }
            Ok(host) => outbound.push(host),
            Err(message) => problems.add(path, message),
        }
    }
    check_names(
        &raw.secrets,
        "permissions.secrets",
        64,
        true,
        &['-', '_'],
        problems,
    );
    let mut services = Vec::new();
    for (index, text) in raw.services.iter().enumerate() {
        let path = format!("permissions.services[{index}]");
        match text.parse::<PluginName>() {
            Ok(name) if services.contains(&name) => {
                problems.add(path, format!("{text:?} is listed twice"))
            }
            Ok(name) if !dependencies.contains(name.as_str()) => problems.add(
                path,
                format!("{text:?} must also be listed under [dependencies]"),
            ),
            Ok(name) => services.push(name),
            Err(err) => problems.add(path, err.to_string()),
        }
    }
    let memory = raw.memory.and_then(|text| {
        let (min, max) = MEMORY_RANGE;
        match text.parse::<bytesize::ByteSize>() {
            Ok(size) if (min..=max).contains(&size.as_u64()) => Some(size.as_u64()),
            Ok(_) => {
                problems.add(
                    "permissions.memory",
                    format!("{text:?} is outside the allowed range, 1 MiB to 4 GiB"),
                );
                None
            }
            Err(_) => {
                problems.add(
                    "permissions.memory",
                    format!("{text:?} is not a size (like \"64 MiB\")"),
                );
                None
            }
        }
    });
    let timeout = raw.timeout.and_then(|text| {
        let (min, max) = TIMEOUT_RANGE;
        match humantime::parse_duration(&text) {
            Ok(duration) if (min..=max).contains(&duration) => Some(duration),
            Ok(_) => {
                problems.add(
                    "permissions.timeout",
                    format!("{text:?} is outside the allowed range, 1ms to 10m"),
                );
                None
            }
            Err(_) => {
                problems.add(
                    "permissions.timeout",
                    format!("{text:?} is not a duration (like \"5s\" or \"500ms\")"),
                );
                None
            }
        }
    });
    Permissions {
        outbound,
        secrets: raw.secrets,
        services,
        keyvalue: raw.keyvalue,
        memory,
        timeout,
    }
}

fn validate_provides(raw: RawProvides, problems: &mut Problems) -> Provides {
    check_names(
        &raw.services,
        "provides.services",
        64,
        false,
        &['-'],
        problems,
    );
    let mut routes: Vec<Route> = Vec::new();
    for (index, route) in raw.routes.into_iter().enumerate() {
        let path_field = format!("provides.routes[{index}].path");
        let path = required(route.path, &path_field, problems)
            .filter(|path| check_route_path(path, &path_field, problems));
        let mut methods = Vec::new();
        for (method_index, method) in route.methods.iter().enumerate() {
            let field = format!("provides.routes[{index}].methods[{method_index}]");
            if !METHODS.contains(&method.as_str()) {
                problems.add(
                    field,
                    format!(
                        "{method:?} is not a method; use one of {}",
                        METHODS.join(", ")
                    ),
                );
            } else if methods.contains(method) {
                problems.add(field, format!("{method:?} is listed twice"));
            } else {
                methods.push(method.clone());
            }
        }
        let guard_field = format!("provides.routes[{index}].guard");
        let guard = required(route.guard, &guard_field, problems).and_then(|text| {
            let guard = GUARDS
                .iter()
                .find(|(name, _)| *name == text)
                .map(|(_, g)| *g);
            if guard.is_none() {
                let names: Vec<&str> = GUARDS.iter().map(|(name, _)| *name).collect();
                problems.add(
                    guard_field,
                    format!("{text:?} is not a guard; use one of {}", names.join(", ")),
                );
            }
            guard
        });
        let (Some(path), Some(guard)) = (path, guard) else {
            continue;
        };
        let overlaps = |other: &Route| {
            other.path == path
                && (other.methods.is_empty()
                    || methods.is_empty()
                    || other.methods.iter().any(|m| methods.contains(m)))
        };
        if let Some(first) = routes.iter().position(overlaps) {
            problems.add(
                path_field,
                format!(
                    "{path:?} repeats the route at provides.routes[{first}] for the same methods"
                ),
            );
            continue;
        }
        routes.push(Route {
            path,
            methods,
            guard,
        });
    }
    let mut provides = Provides {
        services: raw.services,
        routes,
        pages: Vec::new(),
    };
    provides.pages = validate_pages(raw.pages, &provides, problems);
    provides
}

/// Longest title of a contributed page, in characters.
pub const MAX_PAGE_TITLE_LEN: usize = 60;
/// Most pages a plugin may contribute.
pub const MAX_PAGES: usize = 10;

/// `[[provides.pages]]`: each a titled, literal path that one of the plugin's `GET` routes
/// answers.
fn validate_pages(raw: Vec<RawPage>, provides: &Provides, problems: &mut Problems) -> Vec<Page> {
    if raw.len() > MAX_PAGES {
        problems.add(
            "provides.pages",
            format!("a plugin contributes at most {MAX_PAGES} pages"),
        );
    }
    let mut pages = Vec::new();
    for (index, page) in raw.into_iter().enumerate().take(MAX_PAGES) {
        let title_field = format!("provides.pages[{index}].title");
        let path_field = format!("provides.pages[{index}].path");
        let title = required(page.title, &title_field, problems).filter(|title| {
            let length = title.chars().count();
            let fits =
                (1..=MAX_PAGE_TITLE_LEN).contains(&length) && !title.chars().any(char::is_control);
            if !fits {
                problems.add(
                    &title_field,
                    format!(
                        "a title has 1 to {MAX_PAGE_TITLE_LEN} characters and no control characters"
                    ),
                );
            }
            fits
        });
        let path = required(page.path, &path_field, problems)
            .filter(|path| check_route_path(path, &path_field, problems))
            .filter(|path| {
                let literal = !path.contains('{') && !path.contains('*');
                let answered = matches!(provides.route_for("GET", path), RouteMatch::Found(_));
                if !literal {
                    problems.add(
                        &path_field,
                        format!("{path:?} is a pattern; a page is one literal path"),
                    );
                } else if !answered {
                    problems.add(
                        &path_field,
                        format!("{path:?} is not answered by any GET route in provides.routes"),
                    );
                }
                literal && answered
            });
        if let (Some(title), Some(path)) = (title, path) {
            pages.push(Page { title, path });
        }
    }
    pages
}

fn check_route_path(path: &str, field: &str, problems: &mut Problems) -> bool {
    let rule = if !path.starts_with('/') {
        Some("must start with `/`")
    } else if path.len() > 256 {
        Some("is longer than 256 characters")
    } else if path == "/" || path == "/*" {
        None
    } else {
        let inner = path.trim_start_matches('/');
        let segments: Vec<&str> = inner.split('/').collect();
        let last = segments.len() - 1;
        segments.iter().enumerate().find_map(|(index, segment)| {
            let is_param = segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}');
            let literal_ok = !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if *segment == "*" && index == last {
                None
            } else if *segment == "*" {
                Some("may use `*` only as its last segment")
            } else if is_param {
                check_identifier(&segment[1..segment.len() - 1], 64, false, &['-', '_'])
                    .err()
                    .map(|_| "has a `{parameter}` that is not a lowercase identifier")
            } else if literal_ok {
                None
            } else {
                Some("has an empty segment or a character outside letters, digits, `-._~`")
            }
        })
    };
    match rule {
        Some(rule) => {
            problems.add(field, format!("{path:?} {rule}"));
            false
        }
        None => true,
    }
}

fn validate_config(table: toml::Table, problems: &mut Problems) -> Option<serde_json::Value> {
    let schema = match serde_json::to_value(&table) {
        Ok(schema) => schema,
        Err(err) => {
            problems.add("config", format!("cannot be read as JSON Schema: {err}"));
            return None;
        }
    };
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        problems.add(
            "config.type",
            "must be \"object\": the installation's config is an object",
        );
        return None;
    }
    match jsonschema::validator_for(&schema) {
        Ok(_) => Some(schema),
        Err(err) => {
            let pointer = err.instance_path().to_string();
            let path: String = pointer
                .split('/')
                .filter(|part| !part.is_empty())
                .map(|part| match part.parse::<usize>() {
                    Ok(index) => format!("[{index}]"),
                    Err(_) => format!(".{part}"),
                })
                .collect();
            problems.add(
                format!("config{path}"),
                format!("is not a valid JSON Schema: {err}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
