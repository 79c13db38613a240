//! The server's integration tests, one binary (the crate and wasmtime are linked once): the
//! registry API, plugin endpoints on their origins, spaces, and the trust boundaries, each
//! against a real server on 127.0.0.1 with real plugins, on SQLite and on PostgreSQL.

mod api;
mod endpoints;
mod replicas;
mod spaces;
mod tidy;
mod trust;

/// `path` on `server`: an API path on the API's origin; a plugin path written
/// `/s/SPACE/NAMESPACE/NAME/...` straight on SPACE's plugin origin as
/// `/NAMESPACE/NAME/...` (the API's origin only redirects there).
fn url(server: &aerie_server::Server, path: &str) -> String {
    match path
        .strip_prefix("/s/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((space, rest)) => format!("{}/{rest}", server.plugin_origin(space)),
        None => format!("http://{}{path}", server.address()),
    }
}
