//! The host's Prometheus metrics: per-installation calls by outcome, call latency, calls in
//! flight, breaker and health state, and load times. The embedder registers them in its
//! registry and serves them; the host only counts.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::error::CallError;

/// Which of a plugin's exports a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `wasi:http/incoming-handler`.
    Http,
    /// `aerie:plugin/service`.
    Service,
    /// `aerie:plugin/lifecycle.health`, run by the periodic checks and before a swap.
    Health,
}

impl CallKind {
    /// The label value: `http`, `service` or `health`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Http => "http",
            CallKind::Service => "service",
            CallKind::Health => "health",
        }
    }
}

impl EncodeLabelValue for CallKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// One installation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct InstallationLabels {
    pub space: String,
    pub plugin: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    space: String,
    plugin: String,
    kind: CallKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    space: String,
    plugin: String,
    kind: CallKind,
    /// `ok`, or the error code without its `plugin_` prefix (`timeout`, `trap`, ...).
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoadLabels {
    /// `compiled`, `cached` or `failed`.
    outcome: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 30 s.
    Histogram::new(exponential_buckets(0.0005, 2.5, 13))
}

/// Which installations have series of their own. Those that do not are counted together under
/// `space="*"` and `plugin="*"`, so the number of series stays bounded however many
/// installations run; their breakers and health are counted by the embedder instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstallationSeries {
    /// None: a series for all of them together.
    #[default]
    None,
    /// Every installation (a few, or an operator who wants them).
    All,
}

/// The label value of installations counted together.
const TOGETHER: &str = "*";

impl InstallationLabels {
    /// Whether these are one installation's own labels.
    fn own(&self) -> bool {
        self.plugin != TOGETHER
    }
}

/// The host's metrics. Cheap to clone: clones count into the same series.
#[derive(Debug, Clone)]
pub struct HostMetrics {
    series: InstallationSeries,
    calls: Family<OutcomeLabels, Counter>,
    call_seconds: HistogramFamily<KindLabels>,
    in_flight: Family<InstallationLabels, Gauge>,
    breaker_open: Family<InstallationLabels, Gauge>,
    healthy: Family<InstallationLabels, Gauge>,
    load_seconds: HistogramFamily<LoadLabels>,
}

impl Default for HostMetrics {
    fn default() -> HostMetrics {
        HostMetrics::new(InstallationSeries::default())
    }
}

impl HostMetrics {
    /// Metrics with series of their own for the installations `series` says.
    pub fn new(series: InstallationSeries) -> HostMetrics {
        HostMetrics {
            series,
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(latency_histogram),
            in_flight: Family::default(),
            breaker_open: Family::default(),
            healthy: Family::default(),
            load_seconds: Family::new_with_constructor(latency_histogram),
        }
    }

    /// The labels an installation's calls are counted under.
    pub(crate) fn labels(&self, space: &str, plugin: &str) -> InstallationLabels {
        match self.series {
            InstallationSeries::All => InstallationLabels {
                space: space.to_string(),
                plugin: plugin.to_string(),
            },
            InstallationSeries::None => InstallationLabels {
                space: TOGETHER.to_string(),
                plugin: TOGETHER.to_string(),
            },
        }
    }

    /// Registers every metric in `registry` (names start with `aerie_plugin_`).
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("aerie_plugin");
        registry.register(
            "calls",
            "Calls into plugins, by outcome: ok, or the error code (timeout, trap, memory_limit, breaker_open, ...)",
            self.calls.clone(),
        );
        registry.register_with_unit(
            "call_duration",
            "Time from admitting a call to its end",
            Unit::Seconds,
            self.call_seconds.clone(),
        );
        registry.register(
            "calls_in_flight",
            "Calls running now (each in its own instance)",
            self.in_flight.clone(),
        );
        registry.register(
            "breaker_open",
            "1 while the installation's circuit breaker refuses calls (open or trying one call)",
            self.breaker_open.clone(),
        );
        registry.register(
            "healthy",
            "1 when the installation's last health check passed, 0 when it failed",
            self.healthy.clone(),
        );
        registry.register_with_unit(
            "load_duration",
            "Time to load one installation (compile or read the cache, link, wait for dependencies, init)",
            Unit::Seconds,
            self.load_seconds.clone(),
        );
    }

    /// Counts a finished call and its duration.
    pub(crate) fn call(
        &self,
        installation: &InstallationLabels,
        kind: CallKind,
        outcome: Result<(), &CallError>,
        took: Duration,
    ) {
        let outcome = match outcome {
            Ok(()) => "ok",
            Err(err) => err.code().trim_start_matches("plugin_"),
        };
        self.calls
            .get_or_create(&OutcomeLabels {
                space: installation.space.clone(),
                plugin: installation.plugin.clone(),
                kind,
                outcome,
            })
            .inc();
        self.call_seconds
            .get_or_create(&KindLabels {
                space: installation.space.clone(),
                plugin: installation.plugin.clone(),
                kind,
            })
            .observe(took.as_secs_f64());
    }

    /// The gauge of calls in flight for one installation.
    pub(crate) fn in_flight(&self, installation: &InstallationLabels) -> Gauge {
        self.in_flight.get_or_create_owned(installation)
    }

    pub(crate) fn breaker_open(&self, installation: &InstallationLabels, open: bool) {
        if !installation.own() {
            return;
        }
        self.breaker_open
            .get_or_create(installation)
            .set(i64::from(open));
    }

    pub(crate) fn healthy(&self, installation: &InstallationLabels, healthy: bool) {
        if !installation.own() {
            return;
        }
        self.healthy
            .get_or_create(installation)
            .set(i64::from(healthy));
    }

    pub(crate) fn load(&self, outcome: &'static str, took: Duration) {
        self.load_seconds
            .get_or_create(&LoadLabels { outcome })
            .observe(took.as_secs_f64());
    }

    /// Drops the state gauges of an installation that no longer runs (counted together, they
    /// are every other installation's too).
    pub(crate) fn forget(&self, installation: &InstallationLabels) {
        if !installation.own() {
            return;
        }
        self.in_flight.remove(installation);
        self.breaker_open.remove(installation);
        self.healthy.remove(installation);
    }
}
