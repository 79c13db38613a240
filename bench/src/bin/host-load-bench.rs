//! Loading many installations:
//! `cargo run --release -p aerie-bench --bin host-load-bench -- COUNT CACHE_DIR`.
//!
//! Makes COUNT distinct plugins from the `hello` example (each component gets a custom section
//! with its index, so each has its own digest and compiles on its own) and loads them all into
//! a new host whose compile cache is CACHE_DIR: cold when the directory is empty, warm when an
//! earlier run filled it. Run it twice for both: each run is its own process, so the peak RSS
//! it reports is that load's alone. Reports the total time, the time from the start of the
//! load to each plugin running (which includes waiting for a loading slot), and peak RSS.

use std::sync::Arc;
use std::time::Duration;

use aerie_core::digest::Digest;
use aerie_core::manifest::Manifest;
use aerie_host::{
    CompileSource, Host, HostConfig, InstallationSpec, Limits, MemoryKeyValue, RuntimeConfig,
    StaticSecrets,
};
use bytes::Bytes;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(500, |n| n.parse().expect("COUNT is a number"));
    let cache = std::path::PathBuf::from(args.next().expect("give a CACHE_DIR"));
    let hello = aerie_test_support::plugins::example_plugin("hello");
    let specs: Vec<InstallationSpec> = (0..count)
        .map(|index| variant(&hello.manifest, &hello.component, index))
        .collect();
    {
        let host = Host::new(
            HostConfig {
                runtime: RuntimeConfig {
                    cache_dir: Some(cache),
                    ..RuntimeConfig::default()
                },
                ..HostConfig::default()
            },
            Arc::new(MemoryKeyValue::default()),
            Arc::new(StaticSecrets::default()),
        )
        .expect("a host");
        let report = host.load(specs.clone()).await;
        assert!(report.failures().is_empty(), "{:?}", report.failures());
        let from_cache = report
            .plugins
            .iter()
            .filter(|load| load.source == Some(CompileSource::Cache))
            .count();
        let mut each: Vec<Duration> = report.plugins.iter().map(|load| load.total).collect();
        each.sort();
        let percentile = |p: f64| each[((each.len() - 1) as f64 * p).round() as usize];
        println!(
            "{count} installations in {:.2} s ({from_cache} from the cache); per plugin, start to running: p50 {:.1} ms, p99 {:.1} ms; peak RSS {} MiB",
            report.total.as_secs_f64(),
            percentile(0.50).as_secs_f64() * 1000.0,
            percentile(0.99).as_secs_f64() * 1000.0,
            peak_rss_mib(),
        );
        host.shutdown().await;
    }
}

/// The `index`-th variant of a plugin: its own name and a component with its own digest.
fn variant(manifest: &str, component: &[u8], index: usize) -> InstallationSpec {
    let mut manifest = Manifest::parse(manifest).expect("a valid manifest");
    manifest.plugin.name = format!("bench/hello-{index}")
        .parse()
        .expect("a valid name");
    let mut bytes = component.to_vec();
    // A custom section (id 0) appended to the component: `aerie-variant` and the index.
    let name = b"aerie-variant";
    let payload = index.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    bytes.push(0);
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    InstallationSpec {
        id: format!("bench/{index}"),
        space: "bench".into(),
        digest: Digest::of(&bytes).to_string(),
        component: Bytes::from(bytes),
        manifest: Arc::new(manifest),
        config: Default::default(),
        allowed_outbound: None,
        limits: Limits::default(),
        previous_version: None,
    }
}

/// The process's peak resident set, in MiB.
fn peak_rss_mib() -> u64 {
    aerie_bench::peak_rss_kib().map_or(0, |kib| kib / 1024)
}
