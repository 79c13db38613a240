//! The trace a plugin's outbound calls carry on.

use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Writes `span`'s trace into `headers` as a W3C `traceparent`, unless the plugin set one
/// itself. A no-op until the binary installs an OpenTelemetry layer and the W3C propagator.
pub(crate) fn carry_trace(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if headers.contains_key("traceparent") {
        return;
    }
    let context = span.context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    });
}
