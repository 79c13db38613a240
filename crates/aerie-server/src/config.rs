//! Server configuration: a TOML file, then `AERIE_*` environment variables, over defaults that
//! run on one machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the server can be told.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. `AERIE_LISTEN`.
    pub listen: SocketAddr,
    /// Where the embedded database and local blobs live. `AERIE_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; SQLite in the data directory when absent.
    /// `AERIE_DATABASE_URL`.
    pub database_url: Option<String>,
    /// The URL clients reach the server at, for links in responses; `http://LISTEN` when
    /// absent. `AERIE_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// Whether anyone may create an account (otherwise only admins). `AERIE_OPEN_SIGNUP`.
    pub open_signup: bool,
    /// Whether new namespaces require signed versions unless their owner says otherwise.
    /// `AERIE_REQUIRE_SIGNATURE`.
    pub require_signature: bool,
    /// Largest package accepted, in bytes. `AERIE_MAX_PACKAGE_SIZE`.
    pub max_package_size: u64,
    /// Whether each plugin installation has metric series of its own (`all`), or all are
    /// counted together (`none`, the default: a bounded number of series however many
    /// installations run). `AERIE_PLUGIN_METRICS`.
    #[serde(deserialize_with = "installation_series::deserialize")]
    pub plugin_metrics: aerie_host::InstallationSeries,
    /// Most bytes of compiled components kept on disk (in `DATA_DIR/compiled`); past it, the
    /// least recently used go. `AERIE_COMPILE_CACHE_SIZE`.
    pub compile_cache_size: u64,
    /// How long a browser session lasts, in hours. `AERIE_SESSION_HOURS`.
    pub session_hours: u64,
    /// Where package blobs are stored.
    pub blobs: BlobConfig,
    /// Requests per second each plugin installation's endpoints accept (bursts up to the
    /// same number); 0 for no limit. `AERIE_PLUGIN_RATE_LIMIT`.
    pub plugin_rate_limit: u32,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`; otherwise anyone
    /// who can reach the server can read it. `AERIE_METRICS_TOKEN`.
    pub metrics_token: Option<Redacted>,
    /// The master key file; `DATA_DIR/master.key` when absent. `AERIE_MASTER_KEY_FILE`.
    pub master_key_file: Option<PathBuf>,
    /// Master keys given directly (comma-separated, the first wrapping), instead of the
    /// file. Only from the environment: `AERIE_MASTER_KEY`.
    #[serde(skip)]
    pub master_key: Option<Redacted>,
    /// The registry's signing key file, which signs certifications; `DATA_DIR/registry.key`
    /// when absent. `AERIE_REGISTRY_KEY_FILE`.
    pub registry_key_file: Option<PathBuf>,
    /// Every space installs only certified versions, whatever its own policy.
    /// `AERIE_REQUIRE_CERTIFIED`.
    pub require_certified: bool,
    /// Where spaces' plugins are served: a URL template with `{space}` in its host, such as
    /// `https://{space}.plugins.example.com` (a wildcard DNS name and certificate); by default
    /// `http://{space}.localhost:PORT` on the server's own port. Never the API's origin.
    /// `AERIE_PLUGIN_ORIGIN`.
    pub plugin_origin: Option<String>,
    /// How many connections and for how long.
    pub connections: ConnectionConfig,
    /// What plugins' outbound calls may reach.
    pub outbound: OutboundConfig,
    /// How many proxies in front of the server append to `X-Forwarded-For`; the client's
    /// address is taken from it only through them (0: the connection's peer, the default).
    /// `AERIE_TRUSTED_PROXIES`.
    pub trusted_proxies: usize,
    /// Rate limits, sign-in backoff and password hashing.
    pub limits: crate::limits::LimitsConfig,
    /// What each tenant's plugins may consume.
    pub plugin_limits: crate::limits::PluginLimitsConfig,
}

/// The operator's policy for plugins' outbound calls (see [`aerie_host::NetworkPolicy`]).
/// Loopback, private, link-local and the other special-purpose networks are refused unless
/// listed in `allow_networks`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Networks (CIDR) plugins may reach although they are special-purpose.
    /// `AERIE_OUTBOUND_ALLOW_NETWORKS`, comma-separated.
    pub allow_networks: Vec<String>,
    /// Networks no plugin may reach. `AERIE_OUTBOUND_DENY_NETWORKS`.
    pub deny_networks: Vec<String>,
    /// When not empty, the only host names plugins may reach (`*.example.com` for
    /// subdomains). `AERIE_OUTBOUND_ALLOW_HOSTS`.
    pub allow_hosts: Vec<String>,
    /// Host names no plugin may reach. `AERIE_OUTBOUND_DENY_HOSTS`.
    pub deny_hosts: Vec<String>,
    /// Fixed addresses for names, instead of DNS (still checked against the networks):
    /// `"api.internal" = ["10.0.0.7"]`. `AERIE_OUTBOUND_RESOLVE`, as `NAME=IP,NAME=IP`.
    pub resolve: std::collections::BTreeMap<String, Vec<String>>,
    /// Whether packages may declare IP addresses and `localhost` names as outbound hosts
    /// (refused at publish otherwise). `AERIE_OUTBOUND_ALLOW_LOCAL_HOSTS`.
    pub allow_local_hosts: bool,
}

impl OutboundConfig {
    /// The policy the host enforces, or what is wrong with the settings.
    pub fn policy(&self) -> Result<aerie_host::NetworkPolicy, String> {
        let networks = |field: &str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    value.trim().parse::<ipnet::IpNet>().or_else(|_| {
                        value
                            .trim()
                            .parse::<std::net::IpAddr>()
                            .map(ipnet::IpNet::from)
                            .map_err(|_| {
                                format!(
                                    "outbound.{field}: {value:?} is not a network like 10.0.0.0/8"
                                )
                            })
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let hosts = |field: &str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    value
                        .trim()
                        .parse::<aerie_core::manifest::OutboundHost>()
                        .map_err(|err| format!("outbound.{field}: {err}"))
                })
                .collect::<Result<Vec<_>, String>>()
        };
        let resolve = self
            .resolve
            .iter()
            .map(|(name, addresses)| {
                let addresses = addresses
                    .iter()
                    .map(|address| {
                        address.trim().parse().map_err(|_| {
                            format!("outbound.resolve.{name}: {address:?} is not an IP address")
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok((name.to_ascii_lowercase(), addresses))
            })
            .collect::<Result<_, String>>()?;
        Ok(aerie_host::NetworkPolicy {
            allow_networks: networks("allow_networks", &self.allow_networks)?,
            deny_networks: networks("deny_networks", &self.deny_networks)?,
            allow_hosts: hosts("allow_hosts", &self.allow_hosts)?,
            deny_hosts: hosts("deny_hosts", &self.deny_hosts)?,
            resolve,
        })
    }
}

/// The bounds on client connections (see [`crate::serve::ConnectionLimits`]).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Connections served at once. `AERIE_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// Seconds from a request's first byte to the end of its head.
    /// `AERIE_HEADER_TIMEOUT_SECONDS`.
    pub header_timeout_seconds: u64,
    /// Seconds a connection may be idle (no request, nothing moving), a response may go
    /// unread, or a request body may pause. `AERIE_IDLE_TIMEOUT_SECONDS`.
    pub idle_timeout_seconds: u64,
    /// Seconds from a request's head to the end of its body. `AERIE_BODY_TIMEOUT_SECONDS`.
    pub body_timeout_seconds: u64,
}

impl Default for ConnectionConfig {
    fn default() -> ConnectionConfig {
        let limits = crate::serve::ConnectionLimits::default();
        ConnectionConfig {
            max_connections: limits.max_connections,
            header_timeout_seconds: limits.header_timeout.as_secs(),
            idle_timeout_seconds: limits.idle_timeout.as_secs(),
            body_timeout_seconds: limits.body_timeout.as_secs(),
        }
    }
}

impl ConnectionConfig {
    /// The limits the server applies.
    pub fn limits(&self) -> crate::serve::ConnectionLimits {
        let seconds = |value: u64| std::time::Duration::from_secs(value.max(1));
        crate::serve::ConnectionLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: seconds(self.header_timeout_seconds),
            idle_timeout: seconds(self.idle_timeout_seconds),
            body_timeout: seconds(self.body_timeout_seconds),
        }
    }
}

/// A secret setting: never shown by `Debug`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Where package blobs are stored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// `local` (a directory) or `s3`. `AERIE_BLOB_STORE`.
    pub store: String,
    /// The directory for `local`; `DATA_DIR/blobs` when absent. `AERIE_BLOB_DIR`.
    pub dir: Option<PathBuf>,
    /// S3 bucket. `AERIE_S3_BUCKET`.
    pub s3_bucket: Option<String>,
    /// S3 region. `AERIE_S3_REGION`.
    pub s3_region: Option<String>,
    /// Endpoint of an S3-compatible service. `AERIE_S3_ENDPOINT`.
    pub s3_endpoint: Option<String>,
    /// Key prefix inside the bucket. `AERIE_S3_PREFIX`.
    pub s3_prefix: Option<String>,
    /// Allow an `http://` endpoint. `AERIE_S3_ALLOW_HTTP`.
    pub s3_allow_http: bool,
    /// Access key id; the standard `AWS_*` variables apply when absent.
    /// `AERIE_S3_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// Secret access key. `AERIE_S3_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data_dir: PathBuf::from("aerie-data"),
            database_url: None,
            public_url: None,
            open_signup: false,
            require_signature: true,
            max_package_size: 50 * 1024 * 1024,
            compile_cache_size: 2 * 1024 * 1024 * 1024,
            plugin_metrics: aerie_host::InstallationSeries::None,
            session_hours: 24 * 14,
            blobs: BlobConfig::default(),
            plugin_rate_limit: 1000,
            metrics_token: None,
            master_key_file: None,
            master_key: None,
            registry_key_file: None,
            require_certified: false,
            plugin_origin: None,
            connections: ConnectionConfig::default(),
            outbound: OutboundConfig::default(),
            trusted_proxies: 0,
            limits: crate::limits::LimitsConfig::default(),
            plugin_limits: crate::limits::PluginLimitsConfig::default(),
        }
    }
}

impl Default for BlobConfig {
    fn default() -> BlobConfig {
        BlobConfig {
            store: "local".to_string(),
            dir: None,
            s3_bucket: None,
            s3_region: None,
            s3_endpoint: None,
            s3_prefix: None,
            s3_allow_http: false,
            s3_access_key_id: None,
            s3_secret_access_key: None,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid configuration in {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An environment variable is not valid.
    #[error("invalid {name}={value:?}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why.
        message: String,
    },
}

/// `value` of the variable `name` as a number, or an error saying it should be `what`.
fn parsed<T: std::str::FromStr>(name: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError::Env {
        name: name.to_string(),
        value: value.to_string(),
        message: format!("expected {what}"),
    })
}

impl Config {
    /// Reads `file` (if given), then applies `AERIE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|err| ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: err.to_string(),
                })?
            }
            None => Config::default(),
        };
        for (name, value) in env {
            config.apply_env(&name, value)?;
        }
        config
            .outbound
            .policy()
            .map_err(|message| ConfigError::Invalid {
                path: file.map_or_else(|| PathBuf::from("(environment)"), Path::to_path_buf),
                message,
            })?;
        Ok(config)
    }

    fn apply_env(&mut self, name: &str, value: String) -> Result<(), ConfigError> {
        let invalid = |message: &str| ConfigError::Env {
            name: name.to_string(),
            value: value.clone(),
            message: message.to_string(),
        };
        let list = |value: &str| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()
        };
        let flag = |value: &str| match value {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(invalid("expected true or false")),
        };
        match name {
            "AERIE_LISTEN" => {
                self.listen = value
                    .parse()
                    .map_err(|_| invalid("expected ADDRESS:PORT"))?
            }
            "AERIE_DATA_DIR" => self.data_dir = PathBuf::from(&value),
            "AERIE_DATABASE_URL" => self.database_url = Some(value),
            "AERIE_PUBLIC_URL" => self.public_url = Some(value),
            "AERIE_OPEN_SIGNUP" => self.open_signup = flag(&value)?,
            "AERIE_REQUIRE_SIGNATURE" => self.require_signature = flag(&value)?,
            "AERIE_MAX_PACKAGE_SIZE" => {
                self.max_package_size = value.parse().map_err(|_| invalid("expected bytes"))?
            }
            "AERIE_PLUGIN_METRICS" => {
                self.plugin_metrics = installation_series::parse(&value)
                    .ok_or_else(|| invalid("expected all or none"))?
            }
            "AERIE_COMPILE_CACHE_SIZE" => {
                self.compile_cache_size = value.parse().map_err(|_| invalid("expected bytes"))?
            }
            "AERIE_PLUGIN_RATE_LIMIT" => {
                self.plugin_rate_limit = value
                    .parse()
                    .map_err(|_| invalid("expected requests per second"))?
            }
            "AERIE_METRICS_TOKEN" => self.metrics_token = Some(Redacted(value)),
            "AERIE_MASTER_KEY_FILE" => self.master_key_file = Some(PathBuf::from(&value)),
            "AERIE_MASTER_KEY" => self.master_key = Some(Redacted(value)),
            "AERIE_REGISTRY_KEY_FILE" => self.registry_key_file = Some(PathBuf::from(&value)),
            "AERIE_REQUIRE_CERTIFIED" => self.require_certified = flag(&value)?,
            "AERIE_PLUGIN_ORIGIN" => {
                crate::plugin_origin::PluginOrigin::parse(&value).map_err(|err| invalid(&err))?;
                self.plugin_origin = Some(value)
            }
            "AERIE_OUTBOUND_ALLOW_NETWORKS" => self.outbound.allow_networks = list(&value),
            "AERIE_OUTBOUND_DENY_NETWORKS" => self.outbound.deny_networks = list(&value),
            "AERIE_OUTBOUND_ALLOW_HOSTS" => self.outbound.allow_hosts = list(&value),
            "AERIE_OUTBOUND_DENY_HOSTS" => self.outbound.deny_hosts = list(&value),
            "AERIE_OUTBOUND_ALLOW_LOCAL_HOSTS" => self.outbound.allow_local_hosts = flag(&value)?,
            "AERIE_OUTBOUND_RESOLVE" => {
                let mut resolve = std::collections::BTreeMap::<String, Vec<String>>::new();
                for pair in list(&value) {
                    let (name, address) = pair
                        .split_once('=')
                        .ok_or_else(|| invalid("expected NAME=IP,NAME=IP"))?;
                    resolve
                        .entry(name.trim().to_string())
                        .or_default()
                        .push(address.trim().to_string());
                }
                self.outbound.resolve = resolve;
            }
            "AERIE_TRUSTED_PROXIES" => {
                self.trusted_proxies = value.parse().map_err(|_| invalid("expected a number"))?
            }
            "AERIE_READS_PER_MINUTE" => {
                self.limits.reads_per_minute = parsed(name, &value, "a number")?
            }
            "AERIE_SEARCHES_PER_MINUTE" => {
                self.limits.searches_per_minute = parsed(name, &value, "a number")?
            }
            "AERIE_WRITES_PER_MINUTE" => {
                self.limits.writes_per_minute = parsed(name, &value, "a number")?
            }
            "AERIE_LOGINS_PER_MINUTE" => {
                self.limits.logins_per_minute = parsed(name, &value, "a number")?
            }
            "AERIE_LOGIN_FAILURES" => {
                self.limits.login_failures_before_backoff = parsed(name, &value, "a number")?
            }
            "AERIE_LOGIN_BACKOFF_MAX_SECONDS" => {
                self.limits.login_backoff_max_seconds = parsed(name, &value, "a number")?
            }
            "AERIE_PUBLISH_BURST" => self.limits.publish_burst = parsed(name, &value, "a number")?,
            "AERIE_PUBLISH_REFILL_SECONDS" => {
                self.limits.publish_refill_seconds = parsed(name, &value, "a number")?
            }
            "AERIE_PASSWORD_HASHES" => {
                self.limits.password_hashes = parsed(name, &value, "a number")?
            }
            "AERIE_PASSWORD_QUEUE" => {
                self.limits.password_queue = parsed(name, &value, "a number")?
            }
            "AERIE_PLUGIN_MEMORY_MIB" => {
                self.plugin_limits.memory_mib = parsed(name, &value, "a number")?
            }
            "AERIE_PLUGIN_MAX_MEMORY_MIB" => {
                self.plugin_limits.max_memory_mib = parsed(name, &value, "a number")?
            }
            "AERIE_PLUGIN_TIMEOUT_SECONDS" => {
                self.plugin_limits.timeout_seconds = parsed(name, &value, "a number")?
            }
            "AERIE_PLUGIN_MAX_TIMEOUT_SECONDS" => {
                self.plugin_limits.max_timeout_seconds = parsed(name, &value, "a number")?
            }
            "AERIE_SPACE_CONCURRENCY" => {
                self.plugin_limits.space_concurrency = parsed(name, &value, "a number")?
            }
            "AERIE_INSTALLATIONS_PER_SPACE" => {
                self.plugin_limits.installations_per_space = parsed(name, &value, "a number")?
            }
            "AERIE_KV_MAX_KEY_BYTES" => {
                self.plugin_limits.kv_max_key_bytes = parsed(name, &value, "a number")?
            }
            "AERIE_KV_MAX_VALUE_BYTES" => {
                self.plugin_limits.kv_max_value_bytes = parsed(name, &value, "a number")?
            }
            "AERIE_KV_KEYS_PER_SPACE" => {
                self.plugin_limits.kv_keys_per_space = parsed(name, &value, "a number")?
            }
            "AERIE_KV_MIB_PER_SPACE" => {
                self.plugin_limits.kv_mib_per_space = parsed(name, &value, "a number")?
            }
            "AERIE_MAX_CONNECTIONS" => {
                self.connections.max_connections =
                    value.parse().map_err(|_| invalid("expected a number"))?
            }
            "AERIE_HEADER_TIMEOUT_SECONDS" => {
                self.connections.header_timeout_seconds =
                    value.parse().map_err(|_| invalid("expected seconds"))?
            }
            "AERIE_IDLE_TIMEOUT_SECONDS" => {
                self.connections.idle_timeout_seconds =
                    value.parse().map_err(|_| invalid("expected seconds"))?
            }
            "AERIE_BODY_TIMEOUT_SECONDS" => {
                self.connections.body_timeout_seconds =
                    value.parse().map_err(|_| invalid("expected seconds"))?
            }
            "AERIE_SESSION_HOURS" => {
                self.session_hours = value.parse().map_err(|_| invalid("expected hours"))?
            }
            "AERIE_BLOB_STORE" => self.blobs.store = value,
            "AERIE_BLOB_DIR" => self.blobs.dir = Some(PathBuf::from(&value)),
            "AERIE_S3_BUCKET" => self.blobs.s3_bucket = Some(value),
            "AERIE_S3_REGION" => self.blobs.s3_region = Some(value),
            "AERIE_S3_ENDPOINT" => self.blobs.s3_endpoint = Some(value),
            "AERIE_S3_PREFIX" => self.blobs.s3_prefix = Some(value),
            "AERIE_S3_ALLOW_HTTP" => self.blobs.s3_allow_http = flag(&value)?,
            "AERIE_S3_ACCESS_KEY_ID" => self.blobs.s3_access_key_id = Some(value),
            "AERIE_S3_SECRET_ACCESS_KEY" => self.blobs.s3_secret_access_key = Some(value),
            _ => {}
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("aerie.db").display()))
    }

    /// The limits every package is read with, at publish and at install alike: a package
    /// this server accepted is one it can install.
    pub fn package_limits(&self) -> aerie_core::package::PackageLimits {
        aerie_core::package::PackageLimits {
            max_compressed: self.max_package_size,
            ..aerie_core::package::PackageLimits::default()
        }
    }

    /// The master key file.
    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The registry's signing key file.
    pub fn registry_key_file(&self) -> PathBuf {
        self.registry_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("registry.key"))
    }

    /// The URL clients reach the server at, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// The origin of the public URL (`scheme://host[:port]`, without a path): what browsers
    /// send as `Origin` from the server's own pages.
    pub fn public_origin(&self) -> String {
        let url = self.public_url();
        let after_scheme = url.find("://").map_or(0, |at| at + 3);
        match url[after_scheme..].find('/') {
            Some(path) => url[..after_scheme + path].to_string(),
            None => url,
        }
    }

    /// Where spaces' plugins are served, for a server listening on `port`.
    pub fn plugin_origin(&self, port: u16) -> Result<crate::plugin_origin::PluginOrigin, String> {
        match &self.plugin_origin {
            Some(template) => crate::plugin_origin::PluginOrigin::parse(template),
            None => Ok(crate::plugin_origin::PluginOrigin::localhost(port)),
        }
    }

    /// Whether cookies should be marked `Secure`.
    pub fn secure_cookies(&self) -> bool {
        // Asked on every request that may carry a cookie: read without building the URL.
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_run_on_one_machine() {
        let config = Config::load(None, Vec::new()).unwrap();
        assert_eq!(config.database_url(), "sqlite://aerie-data/aerie.db");
        assert_eq!(config.public_url(), "http://127.0.0.1:7878");
        assert!(!config.secure_cookies());
        assert_eq!(config.blobs.store, "local");
    }

    #[test]
    fn the_file_then_the_environment_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aerie.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nopen_signup = true\n[blobs]\nstore = \"s3\"\ns3_bucket = \"pkgs\"\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            env(&[
                ("AERIE_OPEN_SIGNUP", "false"),
                ("AERIE_PUBLIC_URL", "https://aerie.example.com/"),
                ("HOME", "/x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert!(!config.open_signup);
        assert_eq!(config.blobs.s3_bucket.as_deref(), Some("pkgs"));
        assert_eq!(config.public_url(), "https://aerie.example.com");
        assert_eq!(config.public_origin(), "https://aerie.example.com");
        let behind_a_path = Config {
            public_url: Some("https://example.com/aerie/".into()),
            ..Config::default()
        };
        assert_eq!(behind_a_path.public_origin(), "https://example.com");
        assert!(config.secure_cookies());
    }

    #[test]
    fn the_outbound_policy_comes_from_the_environment_and_bad_entries_are_named() {
        let config = Config::load(
            None,
            env(&[
                ("AERIE_OUTBOUND_ALLOW_NETWORKS", "10.1.0.0/16, 192.168.7.7"),
                ("AERIE_OUTBOUND_DENY_HOSTS", "*.internal.example.com"),
                (
                    "AERIE_OUTBOUND_RESOLVE",
                    "api.internal=10.1.2.3,api.internal=10.1.2.4",
                ),
            ]),
        )
        .unwrap();
        let policy = config.outbound.policy().unwrap();
        assert_eq!(policy.allow_networks.len(), 2);
        assert!(policy.check_address("10.1.9.9".parse().unwrap()).is_ok());
        assert!(policy.check_address("10.2.0.1".parse().unwrap()).is_err());
        assert!(policy.check_host("db.internal.example.com").is_err());
        assert_eq!(policy.resolve["api.internal"].len(), 2);
        for (name, value, expected) in [
            (
                "AERIE_OUTBOUND_ALLOW_NETWORKS",
                "10.0.0.0/33",
                "allow_networks",
            ),
            ("AERIE_OUTBOUND_DENY_HOSTS", "http://x", "deny_hosts"),
            ("AERIE_OUTBOUND_RESOLVE", "api.internal", "NAME=IP"),
            (
                "AERIE_OUTBOUND_RESOLVE",
                "api.internal=nowhere",
                "not an IP address",
            ),
        ] {
            let err = Config::load(None, env(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{name}={value}: {err}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::load(None, env(&[("AERIE_OPEN_SIGNUP", "maybe")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid AERIE_OPEN_SIGNUP="maybe": expected true or false"#
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aerie.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("unknown field `lisen`"), "{err}");
    }
}

/// `plugin_metrics` as written: `all` or `none`.
mod installation_series {
    use aerie_host::InstallationSeries;
    use serde::Deserialize as _;

    pub fn parse(text: &str) -> Option<InstallationSeries> {
        match text.trim() {
            "all" => Some(InstallationSeries::All),
            "none" => Some(InstallationSeries::None),
            _ => None,
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<InstallationSeries, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom("expected all or none"))
    }
}
