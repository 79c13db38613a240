//! Plugin endpoints through a real server: `/s/{space}/{plugin}/...` with the example plugins,
//! their routes and guards, rate limits, circuit breakers, and key-value state in the database.

use std::sync::Arc;
use std::time::Duration;

use aerie_core::digest::Digest;
use aerie_core::manifest::{Guard, Manifest};
use aerie_host::{InstallationSpec, Limits};
use aerie_server::{Config, Server};
use aerie_test_support::plugins::example_plugin;

use crate::url;
use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

fn spec_with(directory: &str, edit: impl FnOnce(&mut Manifest)) -> InstallationSpec {
    let plugin = example_plugin(directory);
    let mut manifest = Manifest::parse(&plugin.manifest).unwrap();
    edit(&mut manifest);
    InstallationSpec {
        id: format!("default/{}", manifest.plugin.name),
        space: "default".into(),
        manifest: Arc::new(manifest),
        digest: Digest::of(&plugin.component).to_string(),
        component: Bytes::from(plugin.component.clone()),
        config: Default::default(),
        allowed_outbound: None,
        limits: Limits::default(),
        previous_version: None,
    }
}

fn spec(directory: &str) -> InstallationSpec {
    spec_with(directory, |_| {})
}

async fn start(data_dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    adjust(&mut config);
    Server::start(config, Some("admin-password".into()))
        .await
        .unwrap()
}

async fn run(server: &Server, specs: Vec<InstallationSpec>) {
    server.plugins().serve_locally("default");
    let report = server.plugins().get().unwrap().load(specs).await;
    assert!(report.failures().is_empty(), "{:?}", report.failures());
}

/// A token of the administrator, who acts as an owner of every local space.
async fn admin_token(server: &Server, client: &reqwest::Client) -> String {
    let token: Value = client
        .post(url(server, "/api/v1/tokens"))
        .basic_auth("admin", Some("admin-password"))
        .json(&serde_json::json!({ "name": "t", "scopes": ["admin", "spaces"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["token"].as_str().unwrap().to_string()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_answer_by_route_and_refuse_undeclared_paths_and_methods() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    run(&server, vec![spec("hello"), spec("counter")]).await;
    let client = aerie_test_support::http::client();

    let response = client
        .get(url(&server, "/s/default/examples/hello/Ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "Hello, Ada!\n");

    // A signed-in user (a member of a local space) is told what is wrong; an outsider gets
    // the answer for a plugin that is not there.
    let admin = admin_token(&server, &client).await;
    for (token, no_route, wrong_method) in [
        (Some(admin.as_str()), "no_route", "method_not_allowed"),
        (None, "plugin_not_running", "plugin_not_running"),
    ] {
        let mut request = client.get(url(&server, "/s/default/examples/counter/nope"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(response).await, no_route);

        let mut request = client.delete(url(&server, "/s/default/examples/counter"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = if token.is_some() {
            StatusCode::METHOD_NOT_ALLOWED
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(response.status(), status);
        assert_eq!(error_code(response).await, wrong_method);
    }

    for path in [
        "/s/default/examples/absent/",
        "/s/other/examples/hello/x",
        "/s/default/Not_A/name",
    ] {
        let response = client.get(url(&server, path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(response).await, "plugin_not_running", "{path}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_state_lives_in_the_database_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = aerie_test_support::http::client();
    let server = start(dir.path(), |_| {}).await;
    run(&server, vec![spec("counter")]).await;
    for _ in 0..2 {
        let response = client
            .post(url(&server, "/s/default/examples/counter/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    server.stop().await.unwrap();

    let server = start(dir.path(), |_| {}).await;
    run(&server, vec![spec("counter")]).await;
    let count: Value = client
        .get(url(&server, "/s/default/examples/counter"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 2);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guarded_route_needs_a_signed_in_caller() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let guarded = spec_with("hello", |manifest| {
        manifest.provides.routes[0].guard = Guard::Member;
    });
    run(&server, vec![guarded]).await;
    let client = aerie_test_support::http::client();
    let response = client
        .get(url(&server, "/s/default/examples/hello/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "plugin_not_running");

    let token: Value = client
        .post(url(&server, "/api/v1/tokens"))
        .basic_auth("admin", Some("admin-password"))
        .json(&serde_json::json!({ "name": "t", "scopes": ["read-private"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = client
        .get(url(&server, "/s/default/examples/hello/x"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_breaker_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    run(&server, vec![spec("crash")]).await;
    let client = aerie_test_support::http::client();
    for _ in 0..5 {
        let response = client
            .get(url(&server, "/s/default/testing/crash/boom"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "plugin_trap");
        // What the trap says about the plugin's insides is for the log only.
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("wasm") && !message.contains("unreachable"),
            "{message}"
        );
    }
    let response = client
        .get(url(&server, "/s/default/testing/crash/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(response).await, "plugin_breaker_open");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installation_over_its_rate_limit_gets_429() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| config.plugin_rate_limit = 1).await;
    run(&server, vec![spec("hello")]).await;
    let client = aerie_test_support::http::client();
    let response = client
        .get(url(&server, "/s/default/examples/hello/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // One request a second: back-to-back requests meet the limit however slow the machine
    // (each would have to take a second for none to).
    let mut limited = None;
    for _ in 0..50 {
        let response = client
            .get(url(&server, "/s/default/examples/hello/"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("no request met the rate limit");
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "rate_limited");
    // Waiting is all it takes: a second later a request goes through again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = client
        .get(url(&server, "/s/default/examples/hello/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_rules_and_the_dashboard_read_only_series_the_server_exports() {
    let rules = aerie_test_support::plugins::repository().join("deploy/prometheus");
    for args in [
        &["check", "rules", "aerie-rules.yml"][..],
        &["test", "rules", "aerie-rules.test.yml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&rules)
            .output()
            .expect("promtool runs (the test command installs Debian's prometheus)");
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Every Aerie series a rule reads is one the server exports, under that name.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    run(&server, vec![spec("hello")]).await;
    let client = aerie_test_support::http::client();
    client
        .get(url(&server, "/s/default/examples/hello/"))
        .send()
        .await
        .unwrap();
    let exposition = client
        .get(url(&server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: Vec<&str> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    // By default installations are counted together: the series stay bounded however many
    // there are.
    assert!(
        exposition.contains(
            r#"aerie_plugin_calls_total{space="*",plugin="*",kind="http",outcome="ok"} 1"#
        ),
        "{exposition}"
    );
    assert!(!exposition.contains("examples/hello"), "{exposition}");
    // The rules without their comments.
    let rules_text: String = std::fs::read_to_string(rules.join("aerie-rules.yml"))
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            aerie_test_support::plugins::repository().join("deploy/grafana/aerie.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let dashboard_text: String = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| format!("{}\n", target["expr"].as_str().unwrap()))
        .collect();
    assert!(panels.len() >= 10, "{dashboard}");
    // The recordings the dashboard reads are the rules' own.
    for recorded in names_in(&dashboard_text, "aerie:") {
        assert!(
            rules_text.contains(&format!("record: {recorded}")),
            "the dashboard reads {recorded}, which no rule records"
        );
    }
    let asked: Vec<String> = ["aerie_", "http_server_"]
        .iter()
        .flat_map(|prefix| {
            let mut names = names_in(&rules_text, prefix);
            names.extend(names_in(&dashboard_text, prefix));
            names
        })
        .collect();
    assert!(asked.len() >= 10, "{asked:?}");
    for name in asked {
        let family = ["_bucket", "_count", "_sum", "_total"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            exported.contains(&family),
            "a rule reads {name}, which /metrics does not export ({exported:?})"
        );
    }
    server.stop().await.unwrap();
}

/// The series or recording names starting with `prefix` in PromQL `text`.
fn names_in(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter(|(start, _)| {
            !text[..*start].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
        })
        .map(|(start, _)| {
            text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect()
        })
        .collect()
}

/// The value of `series` (a name and its labels, as exposed) in a `/metrics` exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_plugin_calls_by_outcome_and_http_requests_by_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        config.metrics_token = Some(aerie_server::config::Redacted("scrape-me".into()));
        config.plugin_metrics = aerie_host::InstallationSeries::All;
    })
    .await;
    run(&server, vec![spec("hello"), spec("crash")]).await;
    let client = aerie_test_support::http::client();
    for path in [
        "/s/default/examples/hello/Ada",
        "/s/default/testing/crash/boom",
    ] {
        client.get(url(&server, path)).send().await.unwrap();
    }

    for authorization in [None, Some("Bearer wrong")] {
        let mut request = client.get(url(&server, "/metrics"));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(response).await, "metrics_token_required");
    }
    let response = client
        .get(url(&server, "/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let calls = |plugin: &str, outcome: &str| {
        sample(
            &text,
            &format!(
                r#"aerie_plugin_calls_total{{space="default",plugin="{plugin}",kind="http",outcome="{outcome}"}}"#
            ),
        )
    };
    assert_eq!(calls("examples/hello", "ok"), Some(1.0), "{text}");
    assert_eq!(calls("testing/crash", "trap"), Some(1.0), "{text}");
    assert_eq!(calls("testing/crash", "ok"), None, "{text}");
    // Requests by OpenTelemetry's HTTP conventions: method, route template, status.
    assert_eq!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="plugin_origin",http_response_status_code="502"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The refused scrapes were requests too.
    assert_eq!(
        sample(
            &text,
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/metrics",http_response_status_code="401"}"#
        ),
        Some(2.0),
        "{text}"
    );
    for series in [
        "aerie_database_connections ",
        "aerie_database_writers_waiting ",
        "aerie_spaces_behind ",
    ] {
        assert!(text.contains(series), "{series} in {text}");
    }
    assert!(text.ends_with("# EOF\n"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_without_a_token_are_served_only_on_the_servers_own_machine() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| config.trusted_proxies = 1).await;
    let client = aerie_test_support::http::client();
    let response = client.get(url(&server, "/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(url(&server, "/metrics"))
        .header("x-forwarded-for", "192.0.2.7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(response).await, "metrics_token_required");
    // The method label is one of a closed set, whatever a client sends.
    client
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            url(&server, "/api/v1/me"),
        )
        .send()
        .await
        .unwrap();
    let text = client
        .get(url(&server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("BREW"), "{text}");
    assert!(text.contains(r#"method="_OTHER""#), "{text}");
    server.stop().await.unwrap();
}
