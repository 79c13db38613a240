//! HTTP clients for tests: like a browser or curl, they resolve every `*.localhost` name to the
//! loopback address (the system resolver may not), so tests reach the embedded default plugin
//! origins, `http://SPACE.localhost:PORT`. They follow no redirects, so tests see them.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Resolves `localhost` and `*.localhost` to 127.0.0.1; tests reach nothing else by name.
struct LocalhostResolver;

impl Resolve for LocalhostResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            if host == "localhost" || host.ends_with(".localhost") {
                let addrs: Addrs =
                    Box::new(std::iter::once(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
                Ok(addrs)
            } else {
                Err(format!("tests reach only localhost names, not {host}").into())
            }
        })
    }
}

/// A client that reaches `*.localhost` and follows no redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(LocalhostResolver))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the test client builds")
}
