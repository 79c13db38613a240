//! The host with the real example plugins, compiled from `plugins/` for `wasm32-wasip2`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aerie_core::digest::Digest;
use aerie_core::manifest::Manifest;
use aerie_core::name::PluginName;
use aerie_host::breaker::{BreakerPolicy, ManualClock};
use aerie_host::{
    CallError, CompileSource, Health, Host, HostConfig, HostMetrics, InstallationSpec,
    KeyValue as _, Limits, LoadError, MemoryKeyValue, NetworkPolicy, RuntimeConfig, StaticSecrets,
};
use aerie_test_support::plugins::example_plugin;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

const SPACE: &str = "default";

/// An installation of the example plugin in `plugins/<directory>`, with `edit` applied to its
/// manifest.
fn spec_with(directory: &str, edit: impl FnOnce(&mut Manifest)) -> InstallationSpec {
    let plugin = example_plugin(directory);
    let mut manifest = Manifest::parse(&plugin.manifest).expect("the example's manifest is valid");
    edit(&mut manifest);
    InstallationSpec {
        id: format!("{SPACE}/{}", manifest.plugin.name),
        space: SPACE.into(),
        manifest: Arc::new(manifest),
        digest: Digest::of(&plugin.component).to_string(),
        component: Bytes::from(plugin.component.clone()),
        config: Default::default(),
        allowed_outbound: None,
        limits: Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        },
        previous_version: None,
    }
}

fn spec(directory: &str) -> InstallationSpec {
    spec_with(directory, |_| {})
}

fn name(text: &str) -> PluginName {
    text.parse().unwrap()
}

struct TestHost {
    host: Host,
    kv: Arc<MemoryKeyValue>,
    metrics: HostMetrics,
    _cache: tempfile::TempDir,
}

impl TestHost {
    /// The value of the sample `series` (a name and its labels, as exposed) in the host's
    /// Prometheus exposition, if it is there.
    fn metric(&self, series: &str) -> Option<f64> {
        let mut registry = prometheus_client::registry::Registry::default();
        self.metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

fn host_with(config: impl FnOnce(&mut HostConfig)) -> TestHost {
    let cache = tempfile::tempdir().unwrap();
    let kv = Arc::new(MemoryKeyValue::default());
    // Each installation's own series, to read them one by one.
    let metrics = HostMetrics::new(aerie_host::InstallationSeries::All);
    let host = new_host(cache.path(), &kv, |host_config| {
        host_config.metrics = metrics.clone();
        config(host_config);
    });
    TestHost {
        host,
        kv,
        metrics,
        _cache: cache,
    }
}

fn new_host(
    cache: &std::path::Path,
    kv: &Arc<MemoryKeyValue>,
    config: impl FnOnce(&mut HostConfig),
) -> Host {
    let mut host_config = HostConfig {
        runtime: RuntimeConfig {
            cache_dir: Some(cache.to_path_buf()),
            max_instances: 200,
            ..RuntimeConfig::default()
        },
        ..HostConfig::default()
    };
    config(&mut host_config);
    let secrets = StaticSecrets(
        [("access-token".to_string(), "s3cret".to_string())]
            .into_iter()
            .collect(),
    );
    Host::new(host_config, kv.clone(), Arc::new(secrets)).unwrap()
}

fn host() -> TestHost {
    host_with(|_| {})
}

async fn load_ok(host: &Host, specs: Vec<InstallationSpec>) {
    let report = host.load(specs).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
}

/// GET `path` from `plugin`: status and body text, or the call's error.
async fn get(host: &Host, plugin: &str, path: &str) -> Result<(u16, String), CallError> {
    request(host, plugin, http::Method::GET, path).await
}

async fn request(
    host: &Host,
    plugin: &str,
    method: http::Method,
    path: &str,
) -> Result<(u16, String), CallError> {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = host.handle_http(SPACE, &name(plugin), request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_answers_over_http() {
    let test = host();
    load_ok(&test.host, vec![spec("hello")]).await;
    let (status, body) = get(&test.host, "examples/hello", "/Ada").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, Ada!\n"));
    let (status, _) = request(&test.host, "examples/hello", http::Method::POST, "/")
        .await
        .unwrap();
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_installation_config_reaches_the_plugin_through_wasi_config() {
    let test = host();
    let mut hello = spec("hello");
    hello.config.insert("greeting".into(), "Howdy".into());
    load_ok(&test.host, vec![hello]).await;
    let (_, body) = get(&test.host, "examples/hello", "/Ada").await.unwrap();
    assert_eq!(body, "Howdy, Ada!\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_wasi_http_proxy_component_runs_unchanged() {
    let test = host();
    load_ok(&test.host, vec![spec("wasi-proxy")]).await;
    let (status, body) = get(&test.host, "examples/wasi-proxy", "/some/path?x=1")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "Hello from a plain wasi:http/proxy component at /some/path?x=1\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_keeps_its_count_across_a_restart_and_a_version_swap() {
    let cache = tempfile::tempdir().unwrap();
    let kv = Arc::new(MemoryKeyValue::default());
    {
        let host = new_host(cache.path(), &kv, |_| {});
        load_ok(&host, vec![spec("counter")]).await;
        for expected in 1..=3 {
            let (_, body) = request(&host, "examples/counter", http::Method::POST, "/")
                .await
                .unwrap();
            assert_eq!(body, format!("{{\"count\":{expected}}}"));
        }
        host.shutdown().await;
    }
    // A new host over the same state: a restart.
    let host = new_host(cache.path(), &kv, |_| {});
    let mut restarted = spec("counter");
    restarted.previous_version = Some("0.1.0".into());
    load_ok(&host, vec![restarted]).await;
    let (_, body) = get(&host, "examples/counter", "/").await.unwrap();
    assert_eq!(body, "{\"count\":3}");

    let newer = spec_with("counter", |manifest| {
        manifest.plugin.version = "0.2.0".parse().unwrap();
    });
    let swapped = host.swap(newer).await.unwrap();
    assert!(swapped.outcome.is_ok());
    assert_eq!(host.running()[0].version.to_string(), "0.2.0");
    let (_, body) = request(&host, "examples/counter", http::Method::POST, "/")
        .await
        .unwrap();
    assert_eq!(body, "{\"count\":4}");
    // init saw: a first install, the restart of 0.1.0, and the update from 0.1.0.
    let (_, history) = get(&host, "examples/counter", "/history").await.unwrap();
    assert_eq!(history, r#"["none","0.1.0","0.1.0"]"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn greeter_client_calls_greeter() {
    let test = host();
    load_ok(&test.host, vec![spec("greeter-client"), spec("greeter")]).await;
    let (status, body) = get(&test.host, "examples/greeter-client", "/?name=Grace")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello, Grace!\n"));
    let (status, _) = get(&test.host, "examples/greeter-client", "/private")
        .await
        .unwrap();
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedder_calls_a_service_and_gets_its_errors_by_kind() {
    let test = host();
    load_ok(&test.host, vec![spec("greeter")]).await;
    let greeter = name("examples/greeter");
    let answer = test
        .host
        .call_service(SPACE, &greeter, "greet", br#"{"name":"Lin"}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(answer, br#"{"message":"Hello, Lin!"}"#);
    let err = test
        .host
        .call_service(SPACE, &greeter, "greet", br#"{"name":" "}"#.to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::BadRequest { ref message, .. } if message == "name is empty"),
        "{err:?}"
    );
    let err = test
        .host
        .call_service(SPACE, &greeter, "shout", b"{}".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::UnknownService { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_is_stopped_at_its_deadline_while_others_keep_answering() {
    let test = host();
    let spin = spec_with("spin", |_| {});
    let spin = InstallationSpec {
        limits: Limits {
            timeout: Duration::from_millis(300),
            ..spin.limits
        },
        ..spin
    };
    load_ok(&test.host, vec![spin, spec("hello")]).await;
    let spinning = tokio::spawn({
        let host = test.host.clone();
        async move { get(&host, "testing/spin", "/").await }
    });
    // While spin burns its time, hello answers.
    for _ in 0..5 {
        let (status, _) = get(&test.host, "examples/hello", "/").await.unwrap();
        assert_eq!(status, 200);
    }
    let err = spinning.await.unwrap().unwrap_err();
    assert!(
        matches!(err, CallError::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
    assert_eq!(err.code(), "plugin_timeout");
    // The failure is counted, by plugin and outcome; hello's calls are not.
    let spin_calls = |outcome: &str| {
        test.metric(&format!(
            r#"aerie_plugin_calls_total{{space="default",plugin="testing/spin",kind="http",outcome="{outcome}"}}"#
        ))
    };
    assert_eq!(spin_calls("timeout"), Some(1.0));
    assert_eq!(spin_calls("ok"), None);
    assert_eq!(
        test.metric(r#"aerie_plugin_calls_total{space="default",plugin="examples/hello",kind="http",outcome="ok"}"#),
        Some(5.0)
    );
    assert_eq!(
        test.metric(r#"aerie_plugin_call_duration_seconds_count{space="default",plugin="testing/spin",kind="http"}"#),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hog_is_stopped_at_its_memory_limit() {
    let test = host();
    let hog = spec("hog");
    let hog = InstallationSpec {
        limits: Limits {
            memory: 32 * 1024 * 1024,
            ..hog.limits
        },
        ..hog
    };
    load_ok(&test.host, vec![hog, spec("hello")]).await;
    let err = get(&test.host, "testing/hog", "/").await.unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { limit, .. } if limit == 32 * 1024 * 1024),
        "{err:?}"
    );
    assert_eq!(get(&test.host, "examples/hello", "/").await.unwrap().0, 200);
}

/// An installation (named `testing/many`, with hello's routes) of a hand-written component that
/// instantiates `modules` core modules with a memory of `pages` 64 KiB pages each.
fn many_memories(modules: usize, pages: u32) -> InstallationSpec {
    let mut text = String::from("(component\n");
    for index in 0..modules {
        text.push_str(&format!(
            "(core module $m{index} (memory {pages}))\n(core instance (instantiate $m{index}))\n"
        ));
    }
    text.push(')');
    let component = wat::parse_str(&text).unwrap();
    let mut spec = spec_with("hello", |manifest| {
        manifest.plugin.name = name("testing/many");
    });
    spec.id = format!("{SPACE}/testing/many");
    spec.digest = Digest::of(&component).to_string();
    spec.component = Bytes::from(component);
    spec.limits.memory = 64 * 1024 * 1024;
    spec
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_one_budget_across_all_of_a_components_memories() {
    let test = host();
    load_ok(&test.host, vec![spec("hello")]).await;
    // Four memories of 20 MiB: each is under the 64 MiB limit, together they are not.
    let report = test.host.load(vec![many_memories(4, 320)]).await;
    let failures = report.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].1.to_string().contains("memory limit"),
        "{failures:?}"
    );
    // Three fit.
    load_ok(&test.host, vec![many_memories(3, 320)]).await;
    // More core instances than one component may create fail it alone, however small.
    let report = test.host.load(vec![many_memories(40, 1)]).await;
    assert_eq!(report.failures().len(), 1, "{:?}", report.failures());
    assert_eq!(get(&test.host, "examples/hello", "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_five_times_opens_the_breaker_which_later_lets_a_trial_through() {
    // The breaker's time moves only when the test says so: a busy machine cannot make a
    // cool-down pass between two calls the test expects to be refused.
    let clock = ManualClock::new();
    let test = host_with(|config| {
        config.breaker = BreakerPolicy {
            threshold: 5,
            cool_down: Duration::from_secs(60),
        };
        config.clock = clock.clone().into();
    });
    load_ok(&test.host, vec![spec("crash")]).await;
    for _ in 0..5 {
        let err = get(&test.host, "testing/crash", "/boom").await.unwrap_err();
        assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    }
    let err = get(&test.host, "testing/crash", "/boom").await.unwrap_err();
    let CallError::BreakerOpen { retry_after, .. } = err else {
        panic!("expected the breaker to be open, got {err:?}");
    };
    assert!(retry_after >= Duration::from_secs(1));
    let breaker_open = r#"aerie_plugin_breaker_open{space="default",plugin="testing/crash"}"#;
    assert_eq!(test.metric(breaker_open), Some(1.0));
    assert_eq!(
        test.metric(r#"aerie_plugin_calls_total{space="default",plugin="testing/crash",kind="http",outcome="trap"}"#),
        Some(5.0)
    );
    assert_eq!(
        test.metric(r#"aerie_plugin_calls_total{space="default",plugin="testing/crash",kind="http",outcome="breaker_open"}"#),
        Some(1.0)
    );
    clock.advance(Duration::from_secs(59));
    let err = get(&test.host, "testing/crash", "/healthy")
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::BreakerOpen { .. }), "{err:?}");
    clock.advance(Duration::from_secs(1));
    // The trial goes through, crashes, and the breaker opens again.
    let err = get(&test.host, "testing/crash", "/boom").await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    let err = get(&test.host, "testing/crash", "/healthy")
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::BreakerOpen { .. }), "{err:?}");
    // After another cool-down a successful trial closes it.
    clock.advance(Duration::from_secs(60));
    let (status, _) = get(&test.host, "testing/crash", "/healthy").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(test.metric(breaker_open), Some(0.0));
    for _ in 0..4 {
        let err = get(&test.host, "testing/crash", "/boom").await.unwrap_err();
        assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    }
    assert_eq!(
        get(&test.host, "testing/crash", "/healthy")
            .await
            .unwrap()
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_answer_does_not_count_against_the_breaker() {
    let test = host_with(|config| {
        config.breaker = BreakerPolicy {
            threshold: 2,
            cool_down: Duration::from_secs(60),
        };
    });
    load_ok(&test.host, vec![spec("counter")]).await;
    // State that is not a counter: incrementing it fails, and the plugin answers 500.
    test.kv
        .set(
            "default/examples/counter",
            "default",
            "count",
            b"x".to_vec(),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, _) = request(&test.host, "examples/counter", http::Method::POST, "/")
            .await
            .unwrap();
        assert_eq!(status, 500);
    }
    assert_eq!(
        get(&test.host, "examples/counter", "/").await.unwrap().0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ungranted_import_is_refused_at_link_time_with_the_interface_named() {
    let test = host();
    let counter = spec_with("counter", |manifest| manifest.permissions.keyvalue = false);
    let report = test.host.load(vec![counter]).await;
    let failures = report.failures();
    assert_eq!(failures.len(), 1);
    let (_, err) = failures[0];
    let LoadError::NotGranted {
        interface,
        permission,
    } = err
    else {
        panic!("expected NotGranted, got {err:?}");
    };
    assert!(interface.starts_with("wasi:keyvalue/"), "{interface}");
    assert_eq!(permission, "permissions.keyvalue");
    assert!(test.host.running().is_empty());
}

/// An HTTP server on `ip` counting its connections; each answers `answer` (a whole response
/// head and body) and closes.
async fn origin_at(ip: &str, answer: String) -> (u16, Arc<AtomicUsize>) {
    let (port, connections, _) = recording_origin_at(ip, answer).await;
    (port, connections)
}

/// [`origin_at`] that also keeps the start of each request it is sent.
async fn recording_origin_at(
    ip: &str,
    answer: String,
) -> (u16, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counted = Arc::clone(&connections);
    let kept = Arc::clone(&requests);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buffer = vec![0; 4096];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buffer[..read]).into_owned());
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, connections, requests)
}

fn ok_answer(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A host whose operator lets plugins reach 127.0.0.2 (the tests' stand-in for a public
/// server, under the name `api.example.test`) and, through a name an attacker controls,
/// points `rebind.example.test` at the loopback address.
fn host_with_public_stand_in() -> TestHost {
    host_with(|config| {
        config.network = NetworkPolicy {
            allow_networks: vec!["127.0.0.2/32".parse().unwrap()],
            resolve: [
                (
                    "api.example.test".to_string(),
                    vec!["127.0.0.2".parse().unwrap()],
                ),
                (
                    "rebind.example.test".to_string(),
                    vec!["127.0.0.1".parse().unwrap()],
                ),
            ]
            .into_iter()
            .collect(),
            ..NetworkPolicy::default()
        };
    })
}

fn outbound_to(hosts: &[String]) -> InstallationSpec {
    spec_with("outbound", |manifest| {
        manifest.permissions.outbound = hosts.iter().map(|host| host.parse().unwrap()).collect();
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_reaches_an_allowed_host_but_never_the_operators_network() {
    let test = host_with_public_stand_in();
    let (public, public_connections) = origin_at("127.0.0.2", ok_answer("public")).await;
    let (secret, secret_connections) = origin_at("127.0.0.1", ok_answer("secret")).await;
    let (redirect, _) = origin_at(
        "127.0.0.2",
        format!("HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{secret}/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
    )
    .await;
    // Every one of these is declared by the manifest: only the operator's policy stands
    // between the plugin and the address.
    load_ok(
        &test.host,
        vec![outbound_to(&[
            format!("api.example.test:{public}"),
            format!("api.example.test:{redirect}"),
            format!("127.0.0.1:{secret}"),
            format!("localhost:{secret}"),
            format!("rebind.example.test:{secret}"),
            format!("[::1]:{secret}"),
            format!("[::ffff:127.0.0.1]:{secret}"),
            "169.254.169.254".to_string(),
        ])],
    )
    .await;
    let fetch = |url: String| {
        let host = test.host.clone();
        async move {
            get(
                &host,
                "examples/outbound",
                &format!("/fetch?url={url}&follow=3"),
            )
            .await
            .unwrap()
        }
    };
    let (status, body) = fetch(format!("http://api.example.test:{public}/")).await;
    assert_eq!((status, body.as_str()), (200, "200\npublic"));
    assert_eq!(public_connections.load(Ordering::SeqCst), 1);

    for attack in [
        format!("http://127.0.0.1:{secret}/"),
        format!("http://localhost:{secret}/"),
        format!("http://rebind.example.test:{secret}/"),
        format!("http://[::1]:{secret}/"),
        format!("http://[::ffff:127.0.0.1]:{secret}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        // The redirect is allowed; the request it leads to is not.
        format!("http://api.example.test:{redirect}/"),
    ] {
        let (status, body) = fetch(attack.clone()).await;
        assert_eq!(status, 403, "{attack}: {body}");
        assert!(body.contains("operator's network"), "{attack}: {body}");
    }
    assert_eq!(secret_connections.load(Ordering::SeqCst), 0);

    // A declared host on a port it did not declare, and a host it did not declare at all.
    for refused in [
        format!("http://api.example.test:{secret}/"),
        format!("http://127.0.0.2:{public}/"),
    ] {
        let (status, body) = fetch(refused.clone()).await;
        assert_eq!(status, 403, "{refused}: {body}");
        assert!(body.contains("denied"), "{refused}: {body}");
    }
    assert_eq!(public_connections.load(Ordering::SeqCst), 1);
}

#[test]
fn an_outbound_request_carries_the_trace_of_the_call_that_made_it() {
    // Span sites cache, for the whole process, whether any subscriber wants them, and tests on
    // other threads without this test's subscriber race with it: it runs alone, in a process
    // of its own (this binary again, asked for this test only).
    const ALONE: &str = "AERIE_HOST_TEST_ALONE";
    if std::env::var_os(ALONE).is_none() {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "an_outbound_request_carries_the_trace_of_the_call_that_made_it",
                "--test-threads=1",
            ])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success() && stdout.contains("1 passed"),
            "the test in its own process: {stdout}{}",
            String::from_utf8_lossy(&child.stderr)
        );
        return;
    }
    // One thread, so that the subscriber this test sets for its thread sees the plugin's tasks.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(outbound_request_carries_the_callers_trace());
}

async fn outbound_request_carries_the_callers_trace() {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    );
    let test = host_with_public_stand_in();
    let (port, _, requests) = recording_origin_at("127.0.0.2", ok_answer("public")).await;
    load_ok(
        &test.host,
        vec![outbound_to(&[format!("api.example.test:{port}")])],
    )
    .await;
    let caller = tracing::info_span!("caller");
    let trace_id = caller
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    let (status, body) = get(
        &test.host,
        "examples/outbound",
        &format!("/fetch?url=http://api.example.test:{port}/"),
    )
    .instrument(caller)
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (200, "200\npublic"));
    let requests = requests.lock().unwrap();
    let traceparent = requests[0]
        .lines()
        .find_map(|line| line.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent in {:?}", requests[0]));
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent} continues {trace_id}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_installation_can_narrow_the_outbound_hosts() {
    let test = host_with_public_stand_in();
    let (port, connections) = origin_at("127.0.0.2", ok_answer("public")).await;
    let mut outbound = outbound_to(&[format!("api.example.test:{port}"), "example.com".into()]);
    outbound.allowed_outbound = Some(vec!["example.com".parse().unwrap()]);
    load_ok(&test.host, vec![outbound]).await;
    let (status, _) = get(
        &test.host,
        "examples/outbound",
        &format!("/fetch?url=http://api.example.test:{port}/"),
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_cycle_is_reported_with_its_path() {
    let test = host();
    let greeter = spec_with("greeter", |manifest| {
        manifest
            .dependencies
            .insert(name("examples/greeter-client"), "*".parse().unwrap());
    });
    let report = test
        .host
        .load(vec![greeter, spec("greeter-client"), spec("hello")])
        .await;
    let failures = report.failures();
    assert_eq!(failures.len(), 2, "{failures:?}");
    for (_, err) in failures {
        let LoadError::Cycle(path) = err else {
            panic!("expected a cycle, got {err:?}");
        };
        assert_eq!(path.len(), 3, "{path:?}");
        assert_eq!(path.first(), path.last());
        assert!(path.contains(&"examples/greeter".to_string()));
        assert!(path.contains(&"examples/greeter-client".to_string()));
    }
    assert_eq!(test.host.running().len(), 1, "hello still loads");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_dependency_fails_only_its_dependents() {
    let test = host();
    // 64 KiB is less than the component's initial memory: greeter cannot instantiate.
    let mut greeter = spec("greeter");
    greeter.limits.memory = 64 * 1024;
    let report = test
        .host
        .load(vec![spec("greeter-client"), greeter, spec("hello")])
        .await;
    let outcome = |plugin: &str| {
        report
            .plugins
            .iter()
            .find(|load| load.plugin == plugin)
            .unwrap()
            .outcome
            .clone()
    };
    assert!(matches!(
        outcome("examples/greeter"),
        Err(LoadError::Init(_))
    ));
    let Err(LoadError::DependencyFailed { plugin, reason }) = outcome("examples/greeter-client")
    else {
        panic!("{:?}", outcome("examples/greeter-client"));
    };
    assert_eq!(plugin, "examples/greeter");
    assert!(reason.starts_with("init failed"), "{reason}");
    assert!(outcome("examples/hello").is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_mismatched_dependency_is_named() {
    let test = host();
    let report = test.host.load(vec![spec("greeter-client")]).await;
    assert_eq!(
        report.failures()[0].1.to_string(),
        "depends on examples/greeter ^0.1, which is not installed in this space"
    );
    let old_greeter = spec_with("greeter", |manifest| {
        manifest.plugin.version = "0.0.9".parse().unwrap();
    });
    let report = test
        .host
        .load(vec![old_greeter, spec("greeter-client")])
        .await;
    assert_eq!(
        report.failures()[0].1.to_string(),
        "depends on examples/greeter ^0.1, but examples/greeter 0.0.9 is installed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_under_continuous_requests_drops_none() {
    let test = host();
    load_ok(&test.host, vec![spec("hello")]).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let host = test.host.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut answered = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (status, body) = get(&host, "examples/hello", "/").await.unwrap();
                    assert_eq!(status, 200, "{body}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    for minor in 2..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let next = spec_with("hello", |manifest| {
            manifest.plugin.version = format!("0.{minor}.0").parse().unwrap();
        });
        test.host.swap(next).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answered = 0;
    for client in clients {
        answered += client.await.expect("no request failed");
    }
    assert!(answered > 0);
    assert_eq!(test.host.running()[0].version.to_string(), "0.4.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_swap_keeps_the_old_version_serving() {
    let test = host();
    load_ok(&test.host, vec![spec("greeter")]).await;
    let mut broken = spec_with("greeter", |manifest| {
        manifest.plugin.version = "0.2.0".parse().unwrap();
    });
    broken.limits.memory = 64 * 1024;
    let err = test.host.swap(broken).await.unwrap_err();
    assert!(matches!(err, LoadError::Init(_)), "{err:?}");
    assert_eq!(test.host.running()[0].version.to_string(), "0.1.0");
    let answer = test
        .host
        .call_service(
            SPACE,
            &name("examples/greeter"),
            "greet",
            br#"{"name":"Al"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(answer, br#"{"message":"Hello, Al!"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_come_from_the_cache_the_second_time() {
    let cache = tempfile::tempdir().unwrap();
    let kv = Arc::new(MemoryKeyValue::default());
    let first = new_host(cache.path(), &kv, |_| {});
    let report = first.load(vec![spec("hello")]).await;
    assert_eq!(report.plugins[0].source, Some(CompileSource::Compiled));
    let second = new_host(cache.path(), &kv, |_| {});
    let report = second.load(vec![spec("hello")]).await;
    assert_eq!(report.plugins[0].source, Some(CompileSource::Cache));
    assert_eq!(get(&second, "examples/hello", "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_that_cannot_be_written_costs_time_not_the_load() {
    // The cache's place is a file: no directory can be made there.
    let place = tempfile::NamedTempFile::new().unwrap();
    let kv = Arc::new(MemoryKeyValue::default());
    let host = new_host(place.path(), &kv, |_| {});
    load_ok(&host, vec![spec("hello")]).await;
    assert_eq!(get(&host, "examples/hello", "/").await.unwrap().0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_keeps_the_components_used_last_within_its_size() {
    let cache = tempfile::tempdir().unwrap();
    let kv = Arc::new(MemoryKeyValue::default());
    let cached = || -> Vec<String> {
        let mut names: Vec<String> = aerie_test_support::files_under(cache.path())
            .into_iter()
            .filter_map(|path| Some(path.file_name()?.to_str()?.to_string()))
            .collect();
        names.sort();
        names
    };
    // Room for one compiled component: the next one written pushes the other out.
    let small = |config: &mut HostConfig| config.runtime.cache_max_bytes = 1;
    let host = new_host(cache.path(), &kv, small);
    load_ok(&host, vec![spec("hello")]).await;
    let first = cached();
    assert_eq!(first.len(), 1, "{first:?}");
    load_ok(&host, vec![spec("counter")]).await;
    let second = cached();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    // Without a bound both stay.
    let roomy = new_host(cache.path(), &kv, |_| {});
    load_ok(&roomy, vec![spec("hello")]).await;
    assert_eq!(cached().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_to_a_plugin_that_is_not_running_says_so() {
    let test = host();
    let err = get(&test.host, "examples/hello", "/").await.unwrap_err();
    assert_eq!(err, CallError::NotRunning("examples/hello".into()));
    assert_eq!(err.code(), "plugin_not_running");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_over_the_size_limit_fails_the_call() {
    let test = host();
    let mut hello = spec("hello");
    hello.limits.response_size = 5;
    load_ok(&test.host, vec![hello]).await;
    // "Hello, Ada!\n" is 12 bytes.
    let err = get(&test.host, "examples/hello", "/Ada").await.unwrap_err();
    assert_eq!(
        err,
        CallError::ResponseTooLarge {
            plugin: "examples/hello@0.1.0".into(),
            limit: 5
        }
    );
    assert_eq!(err.code(), "plugin_response_too_large");
}

/// The `in_flight` each of `calls` concurrent `/overlap` calls saw.
async fn overlaps(host: &Host, calls: usize) -> Vec<u64> {
    let calls = (0..calls).map(|_| async {
        let (status, body) = get(host, "testing/probe", "/overlap?ms=300").await.unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["in_flight"]
            .as_u64()
            .unwrap()
    });
    futures::future::join_all(calls).await
}

fn probe_with_concurrency(concurrency: u32) -> InstallationSpec {
    let probe = spec("probe");
    InstallationSpec {
        limits: Limits {
            concurrency,
            ..probe.limits
        },
        ..probe
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_concurrent_instance_limit_holds() {
    let limited = host();
    load_ok(&limited.host, vec![probe_with_concurrency(1)]).await;
    let seen = overlaps(&limited.host, 4).await;
    assert_eq!(
        seen,
        vec![1; 4],
        "with a limit of one, calls wait their turn"
    );

    // The same calls without the limit do overlap, so the probe would have seen a breach.
    let unlimited = host();
    load_ok(&unlimited.host, vec![probe_with_concurrency(4)]).await;
    let seen = overlaps(&unlimited.host, 4).await;
    assert!(seen.iter().any(|&in_flight| in_flight > 1), "{seen:?}");
}

/// Waits (up to 20 s) until `plugin`'s health is as `expected` says.
async fn wait_for_health(test: &TestHost, plugin: &str, expected: impl Fn(&Health) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let running = test.host.running();
        let health = &running
            .iter()
            .find(|running| running.plugin.as_str() == plugin)
            .expect("the plugin runs")
            .health;
        if expected(health) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health stayed {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_health_checks_see_an_installation_fall_ill_and_recover() {
    let test = host_with(|config| config.health_interval = Some(Duration::from_millis(100)));
    load_ok(&test.host, vec![spec("probe"), spec("hello")]).await;
    let healthy = r#"aerie_plugin_healthy{space="default",plugin="testing/probe"}"#;

    let (status, _) = request(&test.host, "testing/probe", http::Method::POST, "/sick")
        .await
        .unwrap();
    assert_eq!(status, 200);
    wait_for_health(
        &test,
        "testing/probe",
        |health| matches!(health, Health::Unhealthy { reason, .. } if reason == "told to be sick"),
    )
    .await;
    assert_eq!(test.metric(healthy), Some(0.0));
    // An unhealthy installation still serves, and the others are untouched.
    assert_eq!(
        get(&test.host, "testing/probe", "/nowhere")
            .await
            .unwrap()
            .0,
        404
    );
    wait_for_health(&test, "examples/hello", |health| *health == Health::Healthy).await;

    request(&test.host, "testing/probe", http::Method::POST, "/well")
        .await
        .unwrap();
    wait_for_health(&test, "testing/probe", |health| *health == Health::Healthy).await;
    assert_eq!(test.metric(healthy), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_output_becomes_log_lines_tagged_with_the_installation() {
    let logs = aerie_test_support::logs::capture();
    let test = host();
    load_ok(&test.host, vec![spec("probe")]).await;
    let (status, _) = get(&test.host, "testing/probe", "/print?text=probe-marker-7f3a")
        .await
        .unwrap();
    assert_eq!(status, 200);
    for stream in ["stdout", "stderr"] {
        let message = format!("probe-marker-7f3a ({stream})");
        let lines = logs.lines();
        let line = lines
            .iter()
            .find(|line| line["fields"]["message"] == message.as_str())
            .unwrap_or_else(|| panic!("no log line says {message:?}:\n{}", logs.text()));
        assert_eq!(line["target"], "aerie::plugin");
        assert_eq!(line["fields"]["installation"], "default/testing/probe");
        assert_eq!(line["fields"]["plugin"], "testing/probe@0.1.0");
        assert_eq!(line["fields"]["stream"], stream);
    }
    // Control characters cannot make a plugin's line pass for anything else: a carriage
    // return or a terminal escape is written as an escape.
    let (status, _) = get(
        &test.host,
        "testing/probe",
        "/print?text=forged%0D2026-11-29%20INFO%20aerie%1B%5B2J",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let expected = "forged\\r2026-11-29 INFO aerie\\u{1b}[2J (stdout)";
    assert!(
        logs.lines()
            .iter()
            .any(|line| line["fields"]["message"] == expected),
        "no log line says {expected:?}:\n{}",
        logs.text()
    );
}
