//! Logs and traces of the long-running commands (`aerie serve`, `aerie run`, `aerie dev`).
//!
//! Logs go to stderr: JSON with `AERIE_LOG_FORMAT=json`, readable otherwise, at the level
//! `AERIE_LOG` sets (default `info`). Every line written while a request is answered carries
//! the request's span, and with it its `request_id`.
//!
//! Traces are exported over OTLP (HTTP, protobuf) only when an endpoint is configured, with
//! OpenTelemetry's own variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as given) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), and `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and the batch settings beside them. Which spans
//! are exported is set apart from the log level, by `AERIE_TRACE` (default `info`), so that
//! quiet logs do not mean empty traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Flushes the spans not yet exported when dropped: hold it until the runtime is gone.
#[must_use = "dropping it at once stops the export of traces"]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("warning: the last traces were not exported: {err}");
        }
    }
}

/// What is logged, and traced, unless `AERIE_LOG` (or `AERIE_TRACE`) says otherwise: the
/// resolver narrates every step at `info`.
const DEFAULT_FILTER: &str = "info,pubgrub=warn";

/// Whether the environment variable `name` is set to something.
fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

/// Starts logging, and trace export when an OTLP endpoint is configured.
pub fn init() -> Telemetry {
    let log_filter =
        EnvFilter::try_from_env("AERIE_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> =
        vec![
            if std::env::var("AERIE_LOG_FORMAT").as_deref() == Ok("json") {
                logs.json().with_filter(log_filter).boxed()
            } else {
                logs.with_filter(log_filter).boxed()
            },
        ];
    let mut provider = None;
    let mut failure = None;
    if is_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || is_set("OTEL_EXPORTER_OTLP_ENDPOINT") {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => {
                let mut resource = opentelemetry_sdk::Resource::builder();
                // A name given in the environment wins over this default.
                if !is_set("OTEL_SERVICE_NAME") {
                    resource = resource.with_service_name("aerie");
                }
                let tracer_provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.build())
                    .build();
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                let filter = EnvFilter::try_from_env("AERIE_TRACE")
                    .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
                layers.push(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer_provider.tracer("aerie"))
                        .with_filter(filter)
                        .boxed(),
                );
                provider = Some(tracer_provider);
            }
            Err(err) => failure = Some(err),
        }
    }
    tracing_subscriber::registry().with(layers).init();
    if let Some(err) = failure {
        tracing::warn!(error = %err, "traces are not exported: the OTLP exporter cannot start");
    }
    Telemetry(provider)
}
