//! Traces across processes: a request's span continues the trace its caller sent in a W3C
//! `traceparent` header (a plugin's outbound calls carry it on: `aerie_host`'s telemetry).
//!
//! Both are no-ops until the binary installs an OpenTelemetry layer and the W3C propagator
//! (the `aerie` command does when an OTLP endpoint is configured).

use axum::http::HeaderMap;
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `span` a child of the trace the caller's `headers` carry, if they carry one.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    // A span no layer records (quiet logs, no export) has no trace to join: skip the
    // propagator on every request then.
    if span.is_disabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&opentelemetry_http::HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: then there is no trace to join.
        let _ = span.set_parent(parent);
    }
}
