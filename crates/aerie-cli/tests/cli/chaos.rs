//! Chaos: two `aerie serve` replicas on one PostgreSQL database, one bucket and shared key
//! files; one of them killed with SIGKILL at arbitrary moments, again and again, while it takes
//! a stream of publishes and space changes. Nothing it acknowledged is lost, and the survivor
//! serves every space as its lockfile says.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{RunningServer, aerie, http_get, http_get_with, package, package_as_version, temp_dir};

/// How many times the replica is killed: `AERIE_CHAOS_ROUNDS`, 5 unless set (the test command
/// runs that; the long run in BENCHMARKS.md sets 50).
fn rounds() -> usize {
    std::env::var("AERIE_CHAOS_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(5)
}

/// A small, seeded generator of waits: the run can be repeated from its seed.
struct Waits(u64);

impl Waits {
    fn next(&mut self, range: std::ops::Range<u64>) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(range.start + (self.0 >> 33) % (range.end - range.start))
    }
}

/// Waits until `port` answers `/readyz` with 200.
fn ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while http_get(port, "/readyz").is_none_or(|(status, _)| status != 200) {
        assert!(
            Instant::now() < deadline,
            "the replica on {port} never got ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `aerie ARGS` against the registry on `port`, with the configuration in `dir` and, once
/// logged in, the stored token (a login is stored for one registry address; the replicas
/// share their accounts).
fn against(port: u16, dir: &Path, args: &[&str]) -> crate::Aerie {
    let command = aerie(args)
        .current_dir(dir)
        .env("AERIE_REGISTRY", format!("http://127.0.0.1:{port}"))
        .env("AERIE_CONFIG_DIR", dir.join("config"))
        .env("AERIE_PASSWORD", crate::ADMIN_PASSWORD);
    let stored = std::fs::read_to_string(dir.join("config/credentials.toml")).unwrap_or_default();
    match stored
        .lines()
        .find_map(|line| line.strip_prefix("token = \""))
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(token) => command.env("AERIE_TOKEN", token),
        None => command,
    }
}

/// What the stream had acknowledged.
#[derive(Default)]
struct Acknowledged {
    versions: Vec<String>,
    /// The number of the last config change acknowledged; every attempt has a greater one.
    last_config: Option<usize>,
    attempts: usize,
}

#[test]
fn a_replica_killed_again_and_again_loses_nothing_it_acknowledged() {
    let dir = temp_dir();
    let s3 = aerie_test_support::s3();
    let keys = dir.path().join("keys");
    let shared: Vec<(String, String)> = vec![
        (
            "AERIE_DATABASE_URL".into(),
            aerie_test_support::postgres().fresh_database(),
        ),
        // The stream publishes far faster than a namespace's budget allows people to.
        ("AERIE_PUBLISH_BURST".into(), "100000".into()),
        ("AERIE_BLOB_STORE".into(), "s3".into()),
        ("AERIE_S3_BUCKET".into(), s3.fresh_bucket()),
        ("AERIE_S3_ENDPOINT".into(), s3.endpoint()),
        ("AERIE_S3_ALLOW_HTTP".into(), "true".into()),
        ("AERIE_S3_ACCESS_KEY_ID".into(), "test".into()),
        ("AERIE_S3_SECRET_ACCESS_KEY".into(), "test".into()),
        (
            "AERIE_MASTER_KEY_FILE".into(),
            keys.join("master.key").display().to_string(),
        ),
        (
            "AERIE_REGISTRY_KEY_FILE".into(),
            keys.join("registry.key").display().to_string(),
        ),
    ];
    let environment: Vec<(&str, &str)> = shared
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let survivor = RunningServer::start_with(&dir.path().join("b"), &environment);
    let victim_dir = dir.path().join("a");
    let mut victim = RunningServer::start_with(&victim_dir, &environment);
    ready(survivor.port);
    ready(victim.port);
    let run = |args: &[&str]| against(survivor.port, dir.path(), args).success();
    run(&["login", "--admin"]);
    run(&["namespace", "create", "examples", "--allow-unsigned"]);
    for plugin in ["hello", "greeter", "greeter-client"] {
        run(&["publish", package(plugin).to_str().unwrap()]);
    }
    run(&["space", "create", "team"]);
    for plugin in ["examples/greeter-client", "examples/hello"] {
        run(&["install", plugin, "--space", "team", "--yes"]);
    }
    against(
        survivor.port,
        dir.path(),
        &[
            "secret",
            "set",
            "examples/greeter-client",
            "access-token",
            "--space",
            "team",
        ],
    )
    .success_with_input("chaos-secret\n");

    // The stream: publishes and config changes through the victim, one after another.
    let victim_port = Arc::new(AtomicU16::new(victim.port));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let stream = {
        let (victim_port, stop, acknowledged) = (
            Arc::clone(&victim_port),
            Arc::clone(&stop),
            Arc::clone(&acknowledged),
        );
        let dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let mut step = 0usize;
            while !stop.load(Ordering::Relaxed) {
                step += 1;
                let port = victim_port.load(Ordering::Relaxed);
                if step.is_multiple_of(2) {
                    let version = format!("0.5.{step}");
                    let file: PathBuf = dir.join(format!("greeter-{version}.aerie"));
                    package_as_version(package("greeter"), &version, &file);
                    let (_, output) =
                        against(port, &dir, &["publish", file.to_str().unwrap()]).output();
                    if output.status.success() {
                        acknowledged.lock().unwrap().versions.push(version);
                    }
                } else {
                    acknowledged.lock().unwrap().attempts = step;
                    let config = format!(r#"{{"greeting": "Hi {step}"}}"#);
                    let (_, output) = against(
                        port,
                        &dir,
                        &[
                            "config",
                            "set",
                            "examples/hello",
                            &config,
                            "--space",
                            "team",
                        ],
                    )
                    .output();
                    if output.status.success() {
                        acknowledged.lock().unwrap().last_config = Some(step);
                    }
                }
            }
        })
    };

    let mut waits = Waits(0x5eed);
    let started = Instant::now();
    for _ in 0..rounds() {
        std::thread::sleep(waits.next(100..800));
        victim.kill();
        victim = RunningServer::start_with(&victim_dir, &environment);
        victim_port.store(victim.port, Ordering::Relaxed);
        ready(victim.port);
    }
    // Let the stream reach the restarted replica once more, then stop it.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    stream.join().unwrap();
    let elapsed = started.elapsed();
    let acknowledged = acknowledged.lock().unwrap();
    eprintln!(
        "chaos: {} kills in {elapsed:?}; {} publishes and config change {:?} of {} acknowledged",
        rounds(),
        acknowledged.versions.len(),
        acknowledged.last_config,
        acknowledged.attempts
    );

    // Every acknowledged publish downloads, with its digest checked, from the survivor; no
    // version lacks its package.
    let info: Value = serde_json::from_str(&run(&["info", "examples/greeter", "--json"])).unwrap();
    let listed: Vec<String> = info["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_str().unwrap().to_string())
        .collect();
    for version in &acknowledged.versions {
        assert!(listed.contains(version), "{version} was acknowledged");
    }
    for version in &listed {
        run(&[
            "download",
            &format!("examples/greeter@{version}"),
            "--output",
            "check.aerie",
        ]);
    }

    // The stored config is the last acknowledged change or one after it, and both replicas
    // serve it; every installation serves the version the lockfile names.
    let lockfile = run(&["space", "lockfile", "team"]);
    for port in [survivor.port, victim.port] {
        let installations: Value = serde_json::from_str(
            &against(port, dir.path(), &["list", "--space", "team", "--json"]).success(),
        )
        .unwrap();
        for installation in installations.as_array().unwrap() {
            let (plugin, version) = (&installation["plugin"], &installation["version"]);
            assert_eq!(installation["serving"], *version, "{plugin} on {port}");
            assert!(
                lockfile.contains(&format!("name = {plugin}\nversion = {version}")),
                "{plugin} {version} in\n{lockfile}"
            );
            if plugin == "examples/hello" {
                let greeting = installation["config"]["greeting"].as_str().unwrap();
                let number: usize = greeting.trim_start_matches("Hi ").parse().unwrap_or(0);
                assert!(
                    acknowledged.last_config.is_none_or(|last| number >= last)
                        && number <= acknowledged.attempts,
                    "{greeting}, acknowledged {:?}",
                    acknowledged.last_config
                );
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let (_, text) = http_get(port, "/s/team/examples/hello/you").unwrap();
                    if text == format!("{greeting}, you!\n") {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{port} still answers {text}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let (status, _) = http_get_with(
            port,
            "/s/team/examples/greeter-client/private",
            &[("Authorization", "Bearer chaos-secret")],
        )
        .unwrap();
        assert_eq!(status, 200, "the secret opens on {port}");
    }
}
