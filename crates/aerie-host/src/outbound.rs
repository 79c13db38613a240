//! Plugins' outbound HTTP: the host resolves the name itself, checks every address against
//! the operator's [`NetworkPolicy`], and connects to an address it checked — never a second
//! resolution that a hostile DNS server could point elsewhere.
//!
//! Whatever a manifest declares and an installation allows, a plugin never reaches the
//! operator's own machine or networks — loopback, private, link-local (cloud metadata at
//! 169.254.169.254 among them), carrier-grade NAT, unique-local, multicast, IPv4-mapped and
//! the other special-purpose ranges — unless the operator's policy allows that network.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aerie_core::manifest::OutboundHost;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ipnet::IpNet;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// The operator's rules for every plugin's outbound calls, on top of each installation's
/// declared hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Networks plugins may reach although they are special-purpose (a service on the
    /// operator's private network that plugins are meant to call).
    pub allow_networks: Vec<IpNet>,
    /// Networks no plugin may reach, besides the special-purpose ones.
    pub deny_networks: Vec<IpNet>,
    /// When not empty, the only host names plugins may reach (`api.example.com`,
    /// `*.example.com`), whatever their manifests declare.
    pub allow_hosts: Vec<OutboundHost>,
    /// Host names no plugin may reach.
    pub deny_hosts: Vec<OutboundHost>,
    /// Fixed addresses for names, used instead of DNS (and checked like any other address).
    pub resolve: BTreeMap<String, Vec<IpAddr>>,
}

/// Why a call was refused before it left the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The operator's policy does not allow the host name.
    #[error("the operator's policy does not allow the host {0}")]
    Host(String),
    /// The name resolves only to addresses the policy refuses.
    #[error("{host} resolves to {address}, a {kind} address plugins may not reach")]
    Address {
        /// The name as the plugin gave it.
        host: String,
        /// The first refused address.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
    /// The name does not resolve.
    #[error("{0} does not resolve")]
    Unresolved(String),
}

impl NetworkPolicy {
    /// Whether plugins may reach `ip`: `Err` names the kind of address when they may not.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.deny_networks.iter().any(|net| net.contains(&ip)) {
            return Err("denied by the operator");
        }
        if self.allow_networks.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match special_purpose(ip) {
            Some(kind) => Err(kind),
            None => Ok(()),
        }
    }

    /// Whether plugins may reach the host name `host` (lowercase, no brackets).
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let denied = self.deny_hosts.iter().any(|deny| deny.matches_host(host));
        let allowed = self.allow_hosts.is_empty()
            || self
                .allow_hosts
                .iter()
                .any(|allow| allow.matches_host(host));
        if denied || !allowed {
            return Err(Refusal::Host(host.to_string()));
        }
        Ok(())
    }

    /// The addresses `host` may be reached at on `port`: resolved here (or fixed by the
    /// policy), each checked; an error when none passes.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        self.check_host(host)?;
        let addresses: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![ip]
        } else if let Some(fixed) = self.resolve.get(host) {
            fixed.clone()
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Refusal::Unresolved(host.to_string()))?
                .map(|address| address.ip())
                .collect()
        };
        let mut first_refusal = None;
        let mut allowed = Vec::new();
        for ip in addresses {
            match self.check_address(ip) {
                Ok(()) => allowed.push(SocketAddr::new(ip, port)),
                Err(kind) => {
                    first_refusal.get_or_insert(Refusal::Address {
                        host: host.to_string(),
                        address: ip,
                        kind,
                    });
                }
            }
        }
        // A name that resolves to a public and a private address is refused: an attacker's
        // DNS could hand out both and hope the private one is tried.
        if let Some(refusal) = first_refusal {
            return Err(refusal);
        }
        if allowed.is_empty() {
            return Err(Refusal::Unresolved(host.to_string()));
        }
        Ok(allowed)
    }
}

/// What kind of special-purpose address `ip` is, if it is one plugins may not reach by
/// default (RFC 6890 and its successors).
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => special_v4(ip),
        IpAddr::V6(ip) => special_v6(ip),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (192, 88, 99) => "6to4 relay",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    Some(match segments {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        [0, 0, 0, 0, 0, 0xffff, _, _] => "IPv4-mapped",
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible",
        [0x64, 0xff9b, ..] => "NAT64",
        [0x0100, 0, 0, 0, ..] => "discard",
        [0x2001, 0x0db8, ..] | [0x3fff, 0..=0x0fff, ..] => "documentation",
        [0x2001, 0..=0x01ff, ..] => "IETF protocol",
        [0x2002, ..] => "6to4",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Connects only to addresses the policy checked: the connector behind every plugin's
/// outbound client.
#[derive(Clone)]
struct CheckedConnector {
    policy: Arc<NetworkPolicy>,
    connect_timeout: Duration,
}

/// Why the connector did not connect.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Refused(Refusal),
    #[error("connecting to {0}: {1}")]
    Io(String, std::io::Error),
    #[error("the URI has no host")]
    NoHost,
}

impl tower_service::Service<http::Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future =
        Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let (host, port) = host_and_port(&uri).ok_or(ConnectError::NoHost)?;
            let addresses = policy
                .resolve(&host, port)
                .await
                .map_err(ConnectError::Refused)?;
            let mut last_error = None;
            for address in addresses {
                match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Ok(Err(err)) => last_error = Some(ConnectError::Io(address.to_string(), err)),
                    Err(_) => {
                        last_error = Some(ConnectError::Io(
                            address.to_string(),
                            std::io::ErrorKind::TimedOut.into(),
                        ))
                    }
                }
            }
            Err(last_error.unwrap_or(ConnectError::NoHost))
        })
    }
}

/// The request's host (lowercase, without brackets) and port (the scheme's when absent).
pub(crate) fn host_and_port(uri: &http::Uri) -> Option<(String, u16)> {
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        });
    Some((host, port))
}

type Connector = hyper_rustls::HttpsConnector<CheckedConnector>;

/// The HTTP client plugins' outbound calls go through: one per host, pooling connections,
/// connecting through [`CheckedConnector`].
#[derive(Clone)]
pub(crate) struct OutboundClient {
    policy: Arc<NetworkPolicy>,
    client: Client<Connector, WasiBody>,
}

impl OutboundClient {
    /// A client under `policy`.
    pub fn new(policy: Arc<NetworkPolicy>) -> Result<OutboundClient, String> {
        let connector = CheckedConnector {
            policy: Arc::clone(&policy),
            connect_timeout: Duration::from_secs(10),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|err| format!("setting up TLS for outbound calls: {err}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(OutboundClient { policy, client })
    }

    /// Sends `request`; `first_byte_timeout` bounds the wait for the response head.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        first_byte_timeout: Duration,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (host, port) = host_and_port(request.uri()).ok_or(HttpError::HttpRequestUriInvalid)?;
        // Addresses written in the URI never reach the connector's resolver: check them here.
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.policy
                .check_host(&host)
                .map_err(|_| HttpError::HttpRequestDenied)?;
            if let Err(kind) = self.policy.check_address(ip) {
                tracing::debug!(%host, port, kind, "outbound address refused");
                return Err(HttpError::DestinationIpProhibited);
            }
        }
        let response = tokio::time::timeout(first_byte_timeout, self.client.request(request))
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(client_error)?;
        Ok(response.map(|body| body.map_err(HttpError::from).boxed_unsync()))
    }
}

/// What a client error means to the plugin.
fn client_error(err: hyper_util::client::legacy::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Refused(Refusal::Address { .. }) => {
                    HttpError::DestinationIpProhibited
                }
                ConnectError::Refused(Refusal::Host(_)) => HttpError::HttpRequestDenied,
                ConnectError::Refused(Refusal::Unresolved(_)) => HttpError::DestinationNotFound,
                ConnectError::Io(_, io) if io.kind() == std::io::ErrorKind::TimedOut => {
                    HttpError::ConnectionTimeout
                }
                ConnectError::Io(..) => HttpError::ConnectionRefused,
                ConnectError::NoHost => HttpError::HttpRequestUriInvalid,
            };
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return HttpError::InternalError(Some(hyper.to_string()));
        }
        source = cause.source();
    }
    HttpError::InternalError(Some(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_operators_networks_are_refused_by_default() {
        let policy = NetworkPolicy::default();
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.100.100.200", "carrier-grade NAT"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:169.254.169.254", "IPv4-mapped"),
            ("64:ff9b::a9fe:a9fe", "NAT64"),
            ("fd00:ec2::254", "unique-local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2002:7f00:1::", "6to4"),
        ] {
            assert_eq!(policy.check_address(ip(address)), Err(kind), "{address}");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert_eq!(policy.check_address(ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn the_operator_opens_and_closes_networks_and_hosts() {
        let policy = NetworkPolicy {
            allow_networks: vec!["127.0.0.2/32".parse().unwrap()],
            deny_networks: vec!["1.1.1.0/24".parse().unwrap()],
            deny_hosts: vec!["*.internal.example.com".parse().unwrap()],
            ..NetworkPolicy::default()
        };
        assert_eq!(policy.check_address(ip("127.0.0.2")), Ok(()));
        assert_eq!(policy.check_address(ip("127.0.0.1")), Err("loopback"));
        assert_eq!(
            policy.check_address(ip("1.1.1.1")),
            Err("denied by the operator")
        );
        assert!(policy.check_host("db.internal.example.com").is_err());
        assert!(policy.check_host("api.example.com").is_ok());
        let only = NetworkPolicy {
            allow_hosts: vec!["api.example.com".parse().unwrap()],
            ..NetworkPolicy::default()
        };
        assert!(only.check_host("api.example.com").is_ok());
        assert!(only.check_host("other.example.com").is_err());
    }

    #[tokio::test]
    async fn a_name_is_refused_when_any_address_it_resolves_to_is() {
        let policy = NetworkPolicy {
            resolve: BTreeMap::from([
                (
                    "mixed.example".to_string(),
                    vec![ip("93.184.215.14"), ip("10.0.0.1")],
                ),
                ("public.example".to_string(), vec![ip("93.184.215.14")]),
            ]),
            ..NetworkPolicy::default()
        };
        assert!(matches!(
            policy.resolve("mixed.example", 443).await,
            Err(Refusal::Address {
                kind: "private",
                ..
            })
        ));
        assert_eq!(
            policy.resolve("public.example", 443).await.unwrap(),
            vec!["93.184.215.14:443".parse::<SocketAddr>().unwrap()]
        );
        assert!(matches!(
            policy.resolve("localhost", 80).await,
            Err(Refusal::Address {
                kind: "loopback",
                ..
            })
        ));
    }
}
