//! Publishing throughput: `cargo run --release -p aerie-bench --bin publish-bench -- sqlite|postgres [COUNT]`.
//!
//! Starts a registry in this process (SQLite in a temporary directory, or a throwaway
//! PostgreSQL with default durability), then publishes COUNT (default 500) distinct small
//! packages one after another over HTTP, as a CI pipeline would, and reports versions per
//! second.

use std::time::Instant;

use aerie_server::{Config, Server};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let count: usize = args
        .next()
        .map_or(500, |n| n.parse().expect("COUNT is a number"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database_url = match backend.as_str() {
        "sqlite" => format!("sqlite://{}", dir.path().join("aerie.db").display()),
        "postgres" => aerie_test_support::durable_postgres().fresh_database(),
        other => panic!("unknown back end {other}: use sqlite or postgres"),
    };
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url),
        require_signature: false,
        ..Config::default()
    };
    let server = Server::start(config, Some("bench-password".into()))
        .await
        .unwrap();
    let base = format!("http://{}", server.address());
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{base}/api/v1/tokens"))
        .basic_auth("admin", Some("bench-password"))
        .json(&serde_json::json!({ "name": "bench", "scopes": ["publish"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let status = client
        .post(format!("{base}/api/v1/namespaces"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "bench" }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    let packages: Vec<Vec<u8>> = (0..count)
        .map(|i| aerie_test_support::archive::package("bench/plugin", &format!("1.0.{i}")))
        .collect();
    let size = packages[0].len();
    let started = Instant::now();
    for (i, package) in packages.into_iter().enumerate() {
        let response = client
            .put(format!("{base}/api/v1/plugins/bench/plugin/1.0.{i}"))
            .bearer_auth(&token)
            .body(package)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    }
    let elapsed = started.elapsed();
    println!(
        "{backend}: {count} sequential publishes of {size}-byte packages in {:.2} s: {:.0} versions/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    server.stop().await.unwrap();
}
