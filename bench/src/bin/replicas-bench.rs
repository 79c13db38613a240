//! Two replicas of `aerie serve` (separate processes) on one PostgreSQL database (default
//! durability), one S3-compatible bucket (moto) and shared key files, all on 127.0.0.1:
//!
//! ```sh
//! replicas-bench AERIE PACKAGES_DIR lag [COUNT]     # convergence lag over COUNT space changes
//! replicas-bench AERIE PACKAGES_DIR soak [SECONDS]  # a bounded mixed load on both replicas
//! ```
//!
//! AERIE is a release `aerie` binary; PACKAGES_DIR holds `hello.aerie` (the test suite builds
//! it into `target/test-plugin-builds/packages`).
//!
//! `lag` changes the config of an installation COUNT times (default 200), alternately through
//! each replica, and after each answer asks the other replica's plugin endpoint every
//! millisecond until it answers with the new config: the time from the change's answer to the
//! other replica serving it, p50, p99 and max.
//!
//! `soak` runs for SECONDS (default 600) four clients each doing a step every 40 ms, spread over
//! both replicas: plugin calls, downloads and searches, and every so often a publish, a config
//! change, or an install and uninstall. It reports errors, each replica's resident memory and
//! open files, and the p99 of each minute, first minute against last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "bench-password";

struct Replica {
    child: Child,
    port: u16,
    client: reqwest::Client,
}

impl Replica {
    fn start(aerie: &Path, data: &Path, shared: &[(String, String)]) -> Replica {
        let port = aerie_test_support::free_port();
        let child = Command::new(aerie)
            .arg("serve")
            .envs(shared.iter().map(|(key, value)| (key, value)))
            .env("AERIE_DATA_DIR", data)
            .env("AERIE_LISTEN", format!("127.0.0.1:{port}"))
            .env("AERIE_ADMIN_PASSWORD", PASSWORD)
            .env("AERIE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("aerie serve starts");
        // The plugin origin `team.localhost:PORT` is this replica.
        let client = reqwest::Client::builder()
            .resolve(
                "team.localhost",
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .build()
            .unwrap();
        Replica {
            child,
            port,
            client,
        }
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn plugin(&self, path: &str) -> String {
        format!("http://team.localhost:{}{path}", self.port)
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(response) = self.client.get(self.api("/readyz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the replica never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory in KiB and open files, from /proc.
    fn footprint(&self) -> (u64, usize) {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let files = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| dir.count())
            .unwrap_or(0);
        (rss, files)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request's status and JSON (or text) body.
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let response = request.send().await.map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|err| err.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Installs `plugin` in `space` through `replica`, consenting to what it asks.
async fn install(replica: &Replica, token: &str, space: &str, plugin: &str) -> Result<(), String> {
    let path = replica.api(&format!("/api/v1/spaces/{space}/installations"));
    let mut body = json!({ "plugin": plugin });
    let (status, answer) = send(replica.client.post(&path).bearer_auth(token).json(&body)).await?;
    if answer["error"]["code"] == "permissions_not_accepted" {
        body["accept"] = answer["error"]["details"]["permissions"].clone();
        let (status, answer) =
            send(replica.client.post(&path).bearer_auth(token).json(&body)).await?;
        return (status == 201)
            .then_some(())
            .ok_or(format!("{status} {answer}"));
    }
    (status == 201)
        .then_some(())
        .ok_or(format!("{status} {answer}"))
}

async fn set_greeting(replica: &Replica, token: &str, greeting: &str) -> Result<(), String> {
    let path = replica.api("/api/v1/spaces/team/installations/examples/hello/config");
    let (status, answer) = send(
        replica
            .client
            .put(path)
            .bearer_auth(token)
            .json(&json!({ "config": { "greeting": greeting } })),
    )
    .await?;
    (status == 200)
        .then_some(())
        .ok_or(format!("{status} {answer}"))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let aerie = PathBuf::from(args.next().expect("AERIE"));
    let packages = PathBuf::from(args.next().expect("PACKAGES_DIR"));
    let mode = args.next().unwrap_or_else(|| "lag".into());
    let amount: Option<u64> = args.next().map(|n| n.parse().expect("a number"));

    let work = tempfile::tempdir().unwrap();
    let s3 = aerie_test_support::s3();
    let unlimited = "1000000000".to_string();
    let shared: Vec<(String, String)> = [
        (
            "AERIE_DATABASE_URL",
            aerie_test_support::durable_postgres().fresh_database(),
        ),
        ("AERIE_BLOB_STORE", "s3".into()),
        ("AERIE_S3_BUCKET", s3.fresh_bucket()),
        ("AERIE_S3_ENDPOINT", s3.endpoint()),
        ("AERIE_S3_ALLOW_HTTP", "true".into()),
        ("AERIE_S3_ACCESS_KEY_ID", "test".into()),
        ("AERIE_S3_SECRET_ACCESS_KEY", "test".into()),
        (
            "AERIE_MASTER_KEY_FILE",
            work.path().join("keys/master.key").display().to_string(),
        ),
        (
            "AERIE_REGISTRY_KEY_FILE",
            work.path().join("keys/registry.key").display().to_string(),
        ),
        ("AERIE_REQUIRE_SIGNATURE", "false".into()),
        ("AERIE_READS_PER_MINUTE", unlimited.clone()),
        ("AERIE_SEARCHES_PER_MINUTE", unlimited.clone()),
        ("AERIE_WRITES_PER_MINUTE", unlimited.clone()),
        ("AERIE_LOGINS_PER_MINUTE", unlimited.clone()),
        ("AERIE_PUBLISH_BURST", unlimited.clone()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value))
    .collect();
    let a = Replica::start(&aerie, &work.path().join("a"), &shared);
    a.ready().await;
    let b = Replica::start(&aerie, &work.path().join("b"), &shared);
    b.ready().await;

    let (_, token) = send(
        a.client
            .post(a.api("/api/v1/tokens"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&json!({ "name": "bench", "scopes": ["publish", "download", "read-private", "admin", "spaces"] })),
    )
    .await
    .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    for namespace in ["examples", "load"] {
        send(
            a.client
                .post(a.api("/api/v1/namespaces"))
                .bearer_auth(&token)
                .json(&json!({ "name": namespace, "require_signature": false })),
        )
        .await
        .unwrap();
    }
    let hello = std::fs::read(packages.join("hello.aerie")).expect("hello.aerie");
    let (status, answer) = send(
        a.client
            .put(a.api("/api/v1/plugins/examples/hello/0.1.0"))
            .bearer_auth(&token)
            .body(hello),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{answer}");
    for space in ["team", "scratch"] {
        send(
            a.client
                .post(a.api("/api/v1/spaces"))
                .bearer_auth(&token)
                .json(&json!({ "name": space })),
        )
        .await
        .unwrap();
    }
    install(&a, &token, "team", "examples/hello").await.unwrap();

    match mode.as_str() {
        "lag" => lag(&a, &b, &token, amount.unwrap_or(200) as usize).await,
        "soak" => soak(a, b, token, Duration::from_secs(amount.unwrap_or(600))).await,
        other => panic!("unknown mode {other}: lag or soak"),
    }
}

async fn lag(a: &Replica, b: &Replica, token: &str, count: usize) {
    let mut lags = Vec::new();
    for change in 0..count {
        let (through, other) = if change % 2 == 0 { (a, b) } else { (b, a) };
        let greeting = format!("Hi {change}");
        set_greeting(through, token, &greeting).await.unwrap();
        let answered = Instant::now();
        let expected = format!("{greeting}, you!\n");
        loop {
            let text = other
                .client
                .get(other.plugin("/examples/hello/you"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if text == expected {
                break;
            }
            assert!(
                answered.elapsed() < Duration::from_secs(60),
                "never converged"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lags.push(answered.elapsed());
    }
    lags.sort();
    println!(
        "{count} space changes, each through one replica and served by the other: p50 {}, p99 {}, max {}",
        ms(percentile(&lags, 0.50)),
        ms(percentile(&lags, 0.99)),
        ms(*lags.last().unwrap())
    );
}

/// What one minute of the soak saw.
#[derive(Default)]
struct Minute {
    latencies: Vec<Duration>,
    plugin_calls: Vec<Duration>,
    errors: Vec<String>,
}

async fn soak(a: Replica, b: Replica, token: String, length: Duration) {
    let replicas = Arc::new([a, b]);
    let minutes: Arc<Mutex<BTreeMap<u64, Minute>>> = Arc::default();
    let started = Instant::now();
    let footprints = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..4u64 {
        let (replicas, minutes, token) =
            (Arc::clone(&replicas), Arc::clone(&minutes), token.clone());
        clients.push(tokio::spawn(async move {
            let mut step = 0u64;
            let mut pace = tokio::time::interval(Duration::from_millis(40));
            while started.elapsed() < length {
                pace.tick().await;
                step += 1;
                let replica = &replicas[((step + client) % 2) as usize];
                let begun = Instant::now();
                let (plugin_call, outcome) = match (step * 4 + client) % 100 {
                    0 => {
                        let version = format!("1.{client}.{step}");
                        let package = aerie_test_support::archive::package("load/plugin", &version);
                        let request = replica
                            .client
                            .put(replica.api(&format!("/api/v1/plugins/load/plugin/{version}")))
                            .bearer_auth(&token)
                            .body(package);
                        (false, expect(send(request).await, 201))
                    }
                    1..=4 => {
                        let greeting = format!("Hi {client} {step}");
                        (false, set_greeting(replica, &token, &greeting).await)
                    }
                    5 if client == 0 => {
                        // One client installs and uninstalls, so the two never collide.
                        let installed = install(replica, &token, "scratch", "examples/hello").await;
                        let removed = send(
                            replica
                                .client
                                .delete(
                                    replica
                                        .api("/api/v1/spaces/scratch/installations/examples/hello"),
                                )
                                .bearer_auth(&token),
                        )
                        .await;
                        (false, installed.and(expect(removed, 200)))
                    }
                    6..=25 => {
                        let request = replica
                            .client
                            .get(replica.api("/api/v1/plugins/examples/hello/0.1.0/download"));
                        (false, expect(send(request).await, 200))
                    }
                    26..=45 => {
                        let request = replica.client.get(replica.api("/api/v1/search?q=helo"));
                        (false, expect(send(request).await, 200))
                    }
                    _ => {
                        let request = replica.client.get(replica.plugin("/examples/hello/you"));
                        (true, expect(send(request).await, 200))
                    }
                };
                let took = begun.elapsed();
                let minute = started.elapsed().as_secs() / 60;
                let mut minutes = minutes.lock().unwrap();
                let seen = minutes.entry(minute).or_default();
                seen.latencies.push(took);
                if plugin_call {
                    seen.plugin_calls.push(took);
                }
                if let Err(err) = outcome {
                    seen.errors.push(err);
                }
            }
        }));
    }
    {
        let (replicas, footprints) = (Arc::clone(&replicas), Arc::clone(&footprints));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                footprints
                    .lock()
                    .unwrap()
                    .push([replicas[0].footprint(), replicas[1].footprint()]);
            }
        });
    }
    for client in clients {
        client.await.unwrap();
    }
    let end = [replicas[0].footprint(), replicas[1].footprint()];
    let footprints = footprints.lock().unwrap();
    let minutes = minutes.lock().unwrap();
    let total: usize = minutes.values().map(|minute| minute.latencies.len()).sum();
    let errors: Vec<&String> = minutes.values().flat_map(|minute| &minute.errors).collect();
    println!(
        "{} s on two replicas: {total} requests, {} errors",
        length.as_secs(),
        errors.len()
    );
    for error in errors.iter().take(5) {
        println!("  error: {error}");
    }
    let first = footprints.first().copied().unwrap_or(end);
    for (index, name) in ["A", "B"].iter().enumerate() {
        println!(
            "replica {name}: RSS {} MiB after the first minute, {} MiB at the end; open files {} and {}",
            first[index].0 / 1024,
            end[index].0 / 1024,
            first[index].1,
            end[index].1
        );
    }
    // The last whole minute against the first.
    let whole: Vec<(&u64, &Minute)> = minutes
        .iter()
        .filter(|(minute, _)| (**minute + 1) * 60 <= length.as_secs())
        .collect();
    if let (Some((_, first)), Some((last_index, last))) = (whole.first(), whole.last()) {
        let p99 = |latencies: &[Duration]| {
            let mut sorted = latencies.to_vec();
            sorted.sort();
            percentile(&sorted, 0.99)
        };
        println!(
            "p99 of every request: {} in the first minute, {} in minute {} (drift {:+.0}%); plugin calls {} and {}",
            ms(p99(&first.latencies)),
            ms(p99(&last.latencies)),
            *last_index + 1,
            (p99(&last.latencies).as_secs_f64() / p99(&first.latencies).as_secs_f64() - 1.0)
                * 100.0,
            ms(p99(&first.plugin_calls)),
            ms(p99(&last.plugin_calls)),
        );
    }
}

fn expect(answer: Result<(u16, Value), String>, status: u16) -> Result<(), String> {
    match answer {
        Ok((got, _)) if got == status => Ok(()),
        Ok((got, body)) => Err(format!("{got}: {body}")),
        Err(err) => Err(err),
    }
}
