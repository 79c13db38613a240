//! Prometheus metrics at `/metrics`: every HTTP request's duration by method, route and status
//! (`http_server_request_duration_seconds`, as OpenTelemetry's HTTP conventions name it), the
//! blob store's failures, the database pool, spaces followed from other replicas, and the
//! plugin host's per-installation calls, failures, latency, breaker and health state.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// A request's labels, named as OpenTelemetry's HTTP conventions name them (dots become
/// underscores in Prometheus).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    /// The method, from a closed set ([`method_label`]).
    http_request_method: &'static str,
    /// The route's pattern (`/api/v1/plugins/{namespace}/{name}`), `plugin_origin` or
    /// `unmatched`: bounded, whatever paths clients send.
    http_route: String,
    http_response_status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BlobLabels {
    /// `read` or `write`.
    operation: &'static str,
}

/// The server's metrics registry.
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    space_lag: Histogram,
    spaces_behind: Gauge,
    blob_errors: Family<BlobLabels, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    writers_waiting: Gauge,
    breakers_open: Gauge,
    unhealthy: Gauge,
}

/// OpenTelemetry's advised buckets for HTTP server durations, in seconds.
fn request_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ])
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 100 s.
    Histogram::new(exponential_buckets(0.0001, 3.0, 13))
}

impl ServerMetrics {
    /// A registry with the HTTP metrics and the host's.
    pub fn new(host: &aerie_host::HostMetrics) -> ServerMetrics {
        let mut registry = Registry::default();
        let requests: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_histogram);
        registry.register_with_unit(
            "http_server_request_duration",
            "Time to answer an HTTP request (to the response head), by method, route and status; its count is the requests answered",
            Unit::Seconds,
            requests.clone(),
        );
        let space_lag = latency_histogram();
        let spaces_behind = Gauge::default();
        let spaces = registry.sub_registry_with_prefix("aerie_spaces");
        spaces.register_with_unit(
            "follow_lag",
            "Time from a space change committed elsewhere to this replica serving it",
            Unit::Seconds,
            space_lag.clone(),
        );
        spaces.register(
            "behind",
            "Spaces this replica could not catch up with at its last comparison of every space",
            spaces_behind.clone(),
        );
        let blob_errors = Family::<BlobLabels, Counter>::default();
        // Both series exist from the start, at zero: a rate over them is 0, not absent.
        for operation in ["read", "write"] {
            blob_errors
                .get_or_create(&BlobLabels { operation })
                .inc_by(0);
        }
        registry.register(
            "aerie_blob_store_errors",
            "Blob store operations that failed (a package is missing or the store does not answer), by operation",
            blob_errors.clone(),
        );
        let (pool_connections, pool_idle, writers_waiting) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let database = registry.sub_registry_with_prefix("aerie_database");
        database.register(
            "connections",
            "Connections the metadata store's pool holds",
            pool_connections.clone(),
        );
        database.register(
            "connections_idle",
            "Of those, connections idle",
            pool_idle.clone(),
        );
        database.register(
            "writers_waiting",
            "Writes waiting for SQLite's one writer (0 on PostgreSQL)",
            writers_waiting.clone(),
        );
        let (breakers_open, unhealthy) = (Gauge::default(), Gauge::default());
        registry.register(
            "aerie_plugin_breakers_open",
            "Installations running here whose circuit breaker refuses calls (open or trying one call)",
            breakers_open.clone(),
        );
        registry.register(
            "aerie_plugin_unhealthy",
            "Installations running here whose last health check failed",
            unhealthy.clone(),
        );
        host.register(&mut registry);
        ServerMetrics {
            breakers_open,
            unhealthy,
            registry,
            requests,
            space_lag,
            spaces_behind,
            blob_errors,
            pool_connections,
            pool_idle,
            writers_waiting,
        }
    }

    /// A blob store operation (`read` or `write`) failed.
    pub fn blob_failed(&self, operation: &'static str) {
        self.blob_errors
            .get_or_create(&BlobLabels { operation })
            .inc();
    }

    /// A space changed elsewhere is served here, `lag` after it was committed.
    pub fn space_caught_up(&self, lag: std::time::Duration) {
        self.space_lag.observe(lag.as_secs_f64());
    }

    /// How many spaces this replica could not catch up with at its last full comparison.
    pub fn spaces_behind(&self, count: usize) {
        self.spaces_behind.set(count as i64);
    }

    fn render(&self, state: &AppState) -> String {
        // Counted at each scrape from what runs, whether or not installations have series of
        // their own: the alerts read these.
        let running = state
            .plugins
            .running()
            .map(|host| host.running())
            .unwrap_or_default();
        self.breakers_open.set(
            running
                .iter()
                .filter(|plugin| {
                    !matches!(
                        plugin.breaker,
                        aerie_host::breaker::BreakerState::Closed { .. }
                    )
                })
                .count() as i64,
        );
        self.unhealthy.set(
            running
                .iter()
                .filter(|plugin| matches!(plugin.health, aerie_host::Health::Unhealthy { .. }))
                .count() as i64,
        );
        let pool = state.db.pool_stats();
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(pool.idle as i64);
        self.writers_waiting.set(pool.writers_waiting as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The method as a label: one of the methods HTTP defines, else `_OTHER` (as OpenTelemetry's
/// HTTP conventions say), so a client cannot mint new series with made-up methods.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// Middleware: counts each request by its route's pattern and status, and times it.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str(),
        None if request
            .extensions()
            .get::<crate::routes::endpoints::OriginSpace>()
            .is_some() =>
        {
            "plugin_origin"
        }
        None => "unmatched",
    }
    .to_string();
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            http_request_method: method,
            http_route: route,
            http_response_status_code: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Whether a scrape without a token comes from the server's own machine: the connection's
/// `peer` and the `client` behind trusted proxies must both be loopback, so that neither a
/// client elsewhere claiming loopback in `X-Forwarded-For` nor one a local proxy forwards
/// passes.
fn on_this_machine(peer: Option<std::net::IpAddr>, client: Option<std::net::IpAddr>) -> bool {
    peer.is_some_and(|ip| ip.is_loopback()) && client.is_some_and(|ip| ip.is_loopback())
}

/// `GET /metrics`: the Prometheus exposition, behind the metrics token when one is set, and
/// otherwise only for scrapers on the server's own machine: the series name spaces and
/// plugins, private ones included.
pub async fn serve(
    State(state): State<AppState>,
    address: crate::auth::ClientAddress,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if state.config.metrics_token.is_none()
        && !on_this_machine(peer.map(|peer| peer.0.0.ip()), address.0)
    {
        return ApiError::unauthorized(
            "metrics_token_required",
            "metrics are served to other machines only with a metrics token: set AERIE_METRICS_TOKEN and send it as `Authorization: Bearer`",
        )
        .into_response();
    }
    if let Some(token) = &state.config.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        // Compared as digests, so the time taken says nothing about the token.
        let matches = given.is_some_and(|given| {
            Sha256::digest(given.as_bytes()) == Sha256::digest(token.0.as_bytes())
        });
        if !matches {
            return ApiError::unauthorized(
                "metrics_token_required",
                "metrics need `Authorization: Bearer` with the metrics token",
            )
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.render(&state),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::on_this_machine;

    #[test]
    fn a_scrape_without_a_token_must_come_from_this_machine_however_it_is_forwarded() {
        let local = Some("127.0.0.1".parse().unwrap());
        let elsewhere = Some("192.0.2.7".parse().unwrap());
        assert!(on_this_machine(local, local));
        // Through a proxy on this machine, for a client elsewhere.
        assert!(!on_this_machine(local, elsewhere));
        // A client elsewhere claiming loopback in X-Forwarded-For.
        assert!(!on_this_machine(elsewhere, local));
        assert!(!on_this_machine(None, local));
    }
}
