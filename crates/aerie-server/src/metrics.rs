//! Prometheus metrics at `/metrics`: every HTTP request by route and status with its latency,
//! and the plugin host's per-installation calls, failures, latency, breaker and health state.

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

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/api/v1/plugins/{namespace}/{name}`), or `unmatched`: bounded,
    /// whatever paths clients send.
    route: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The server's metrics registry.
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    space_lag: Histogram,
    spaces_behind: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to about 100 s.
    Histogram::new(exponential_buckets(0.0001, 3.0, 13))
}

impl ServerMetrics {
    /// A registry with the HTTP metrics and the host's.
    pub fn new(host: &aerie_host::HostMetrics) -> ServerMetrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let http = registry.sub_registry_with_prefix("aerie_http");
        http.register(
            "requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        http.register_with_unit(
            "request_duration",
            "Time to answer an HTTP request (to the response head), by method and route",
            Unit::Seconds,
            request_seconds.clone(),
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
            "Spaces whose stored revision this replica was catching up with at its last comparison",
            spaces_behind.clone(),
        );
        host.register(&mut registry);
        ServerMetrics {
            registry,
            requests,
            request_seconds,
            space_lag,
            spaces_behind,
        }
    }

    /// A space changed elsewhere is served here, `lag` after it was committed.
    pub fn space_caught_up(&self, lag: std::time::Duration) {
        self.space_lag.observe(lag.as_secs_f64());
    }

    /// How many spaces this replica is catching up with.
    pub fn spaces_behind(&self, count: usize) {
        self.spaces_behind.set(count as i64);
    }

    fn render(&self) -> String {
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
    let method = method_label(request.method()).to_string();
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
    let metrics = &state.metrics;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`: the Prometheus exposition, behind the metrics token when one is set, and
/// otherwise only for scrapers on the server's own machine: the series name spaces and
/// plugins, private ones included.
pub async fn serve(
    State(state): State<AppState>,
    address: crate::auth::ClientAddress,
    headers: axum::http::HeaderMap,
) -> Response {
    if state.config.metrics_token.is_none() && !address.0.is_some_and(|ip| ip.is_loopback()) {
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
        state.metrics.render(),
    )
        .into_response()
}
