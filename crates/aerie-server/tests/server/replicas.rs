//! Two replicas of one server on one PostgreSQL database, one S3 bucket and one pair of key
//! files: what is done through one is served by the other without a restart, and changes to one
//! space made through both at once end in one state.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::spaces::{Backend, TestApp};

/// A configuration every replica of one deployment shares: one PostgreSQL database, one
/// bucket, one pair of key files (in the directory returned), each replica on a data
/// directory of its own.
fn shared_config() -> (aerie_server::Config, tempfile::TempDir, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let s3 = aerie_test_support::s3();
    let (bucket, endpoint) = (s3.fresh_bucket(), s3.endpoint());
    let (config, data_dir) = TestApp::config_for(Backend::Postgres, |config| {
        config.blobs.store = "s3".into();
        config.blobs.s3_bucket = Some(bucket);
        config.blobs.s3_endpoint = Some(endpoint);
        config.blobs.s3_allow_http = true;
        config.blobs.s3_access_key_id = Some("test".into());
        config.blobs.s3_secret_access_key = Some("test".into());
        config.master_key_file = Some(keys.path().join("master.key"));
        config.registry_key_file = Some(keys.path().join("registry.key"));
    });
    (config, data_dir, keys)
}

/// Two replicas sharing everything a deployment shares.
async fn replicas() -> (TestApp, TestApp, tempfile::TempDir) {
    let (config, data_dir, keys) = shared_config();
    let a = TestApp::on(config, data_dir).await;
    let b = a.replica().await;
    (a, b, keys)
}

/// How many keys a master key file holds.
fn master_keys(text: &str) -> usize {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .count()
}

/// Asks `check` until it holds, at most a minute (a bound for a broken build, not a figure:
/// the convergence time is measured by `bench/replicas.sh`); panics with its last answer.
async fn eventually<T: std::fmt::Debug>(
    what: &str,
    mut check: impl AsyncFnMut() -> (bool, T),
) -> Duration {
    let started = Instant::now();
    loop {
        let (done, seen) = check().await;
        if done {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: still {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The version `app` serves of `plugin` in `space`, as its installation says.
async fn serving(app: &TestApp, token: &str, space: &str, plugin: &str) -> Value {
    app.installation(token, space, plugin).await["serving"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_changes_the_other_serves_without_a_restart() {
    let (a, b, _keys) = replicas().await;
    a.publish("greeter", "0.1.0").await;
    a.publish("greeter-client", "0.1.0").await;
    // Published through A: searchable and downloadable through B.
    eventually("B finds what A published", async || {
        let (_, found) = b
            .call(Method::GET, "/api/v1/search?q=greeter", None, None)
            .await;
        (found["total"] == 2, found)
    })
    .await;
    let (status, _) = b
        .call(
            Method::GET,
            "/api/v1/plugins/examples/greeter-client/0.1.0/download",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ada = a.user("ada").await;
    // The space made through A; its secrets sealed through B with the shared master key.
    a.space(&ada, "team").await;
    let (status, body) = b
        .install(&ada, "team", json!({ "plugin": "examples/greeter-client" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("A serves what B installed", async || {
        let (status, text) = a
            .endpoint("/s/team/examples/greeter-client/?name=Al", None)
            .await;
        (status == StatusCode::OK, (status, text))
    })
    .await;
    let secret = format!(
        "{}/secrets/access-token",
        TestApp::installation_path("team", "examples/greeter-client")
    );
    let (status, body) = b
        .call(
            Method::PUT,
            &secret,
            Some(&ada),
            Some(json!({ "value": "s3cr3t" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for app in [&a, &b] {
        let (status, text) = app
            .endpoint("/s/team/examples/greeter-client/private", Some("s3cr3t"))
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }

    // A config change through B reaches A's running plugin.
    let config = format!(
        "{}/config",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = b
        .call(
            Method::PUT,
            &config,
            Some(&ada),
            Some(json!({ "config": { "greeting": "Ahoy" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("A greets with the config set through B", async || {
        let (_, text) = a
            .endpoint("/s/team/examples/greeter-client/?name=Al", None)
            .await;
        (text == "Ahoy, Al!\n", text)
    })
    .await;

    // An update through B and a rollback through A leave both serving one version.
    a.publish("greeter", "0.1.1").await;
    let update = format!(
        "{}/update",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = b
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("A serves the version B updated to", async || {
        let seen = serving(&a, &ada, "team", "examples/greeter").await;
        (seen == "0.1.1", seen)
    })
    .await;
    let rollback = format!(
        "{}/rollback",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = a.call(Method::POST, &rollback, Some(&ada), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("B serves the version A rolled back to", async || {
        let seen = serving(&b, &ada, "team", "examples/greeter").await;
        (seen == "0.1.0", seen)
    })
    .await;
    assert_eq!(serving(&a, &ada, "team", "examples/greeter").await, "0.1.0");
    // Each replica says where it stands: every space current, once it caught up.
    for app in [&a, &b] {
        eventually("the replica runs every space as stored", async || {
            let (_, stands) = app
                .call(Method::GET, "/api/v1/admin/replica", Some(&app.admin), None)
                .await;
            (
                stands == json!({ "spaces": 1, "current": 1, "behind": [] }),
                stands,
            )
        })
        .await;
    }
    let (status, _) = b
        .call(Method::GET, "/api/v1/admin/replica", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An uninstall through A stops the plugin on B.
    let (status, body) = a
        .call(
            Method::DELETE,
            &TestApp::installation_path("team", "examples/greeter-client"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("B stops what A uninstalled", async || {
        let (status, _) = b.endpoint("/s/team/examples/greeter-client/", None).await;
        (status == StatusCode::NOT_FOUND, status)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_to_one_space_through_two_replicas_at_once_end_in_one_state() {
    let (a, b, _keys) = replicas().await;
    for plugin in ["hello", "counter", "greeter"] {
        a.publish(plugin, "0.1.0").await;
    }
    let ada = a.user("ada").await;
    a.space(&ada, "team").await;
    // Each replica installs its own plugin at the same moment, planned from the same
    // revision: the one that writes second is planned again from the first one's result.
    let (through_a, through_b) = tokio::join!(
        a.install(&ada, "team", json!({ "plugin": "examples/hello" })),
        b.install(&ada, "team", json!({ "plugin": "examples/counter" })),
    );
    assert_eq!(through_a.0, StatusCode::CREATED, "{}", through_a.1);
    assert_eq!(through_b.0, StatusCode::CREATED, "{}", through_b.1);
    let (_, lockfile) = a
        .call(
            Method::GET,
            "/api/v1/spaces/team/lockfile",
            Some(&ada),
            None,
        )
        .await;
    let lockfile = lockfile.to_string();
    assert!(
        lockfile.contains("examples/hello") && lockfile.contains("examples/counter"),
        "{lockfile}"
    );
    for app in [&a, &b] {
        for plugin in ["examples/hello", "examples/counter"] {
            eventually("both replicas serve both installs", async || {
                let seen = serving(app, &ada, "team", plugin).await;
                (seen == "0.1.0", seen)
            })
            .await;
        }
    }

    // A burst of config changes through both: every one is written, none over another, and
    // both replicas end serving the last one written.
    let config = format!(
        "{}/config",
        TestApp::installation_path("team", "examples/hello")
    );
    let mut changes = Vec::new();
    for round in 0..4 {
        for (replica, app) in [("a", &a), ("b", &b)] {
            let greeting = format!("Hi {replica}{round}");
            let config = config.clone();
            let ada = ada.clone();
            changes.push(async move {
                app.call(
                    Method::PUT,
                    &config,
                    Some(&ada),
                    Some(json!({ "config": { "greeting": greeting } })),
                )
                .await
            });
        }
    }
    for (status, body) in futures::future::join_all(changes).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let stored = a.installation(&ada, "team", "examples/hello").await["config"]["greeting"]
        .as_str()
        .unwrap()
        .to_string();
    let events = a.events(&ada, "team", "examples/hello").await;
    assert_eq!(
        events
            .iter()
            .filter(|kind| *kind == "config_changed")
            .count(),
        8,
        "{events:?}"
    );
    for app in [&a, &b] {
        eventually("both replicas serve the config written last", async || {
            let (_, text) = app.endpoint("/s/team/examples/hello/you", None).await;
            (text.starts_with(&stored), text)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_together_share_one_key_and_a_rotation_loses_no_secret() {
    // Two replicas start at the same moment on an empty database and key files neither has
    // made: one administrator, one master key, one registry key.
    let (config, data_dir, keys) = shared_config();
    let second_dir = tempfile::tempdir().unwrap();
    let second = aerie_server::Config {
        data_dir: second_dir.path().to_path_buf(),
        ..config.clone()
    };
    let (mut a, mut b) = tokio::join!(
        TestApp::on(config, data_dir),
        TestApp::on(second, second_dir)
    );
    let master = std::fs::read_to_string(keys.path().join("master.key")).unwrap();
    assert_eq!(master_keys(&master), 1, "{master}");
    let (_, a_key) = a
        .call(Method::GET, "/api/v1/registry/key", None, None)
        .await;
    let (_, b_key) = b
        .call(Method::GET, "/api/v1/registry/key", None, None)
        .await;
    assert_eq!(a_key, b_key);

    a.publish("greeter", "0.1.0").await;
    a.publish("greeter-client", "0.1.0").await;
    let ada = a.user("ada").await;
    let secret = |space: &str| {
        format!(
            "{}/secrets/access-token",
            TestApp::installation_path(space, "examples/greeter-client")
        )
    };
    let make = async |app: &TestApp, space: String| {
        app.space(&ada, &space).await;
        let (status, body) = app
            .install(&ada, &space, json!({ "plugin": "examples/greeter-client" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = app
            .call(
                Method::PUT,
                &secret(&space),
                Some(&ada),
                Some(json!({ "value": format!("token-{space}") })),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    };
    make(&a, "before".into()).await;
    // A rotation through A while B makes spaces and seals their secrets.
    let rotation = a.call(
        Method::POST,
        "/api/v1/admin/rotate-master-key",
        Some(&a.admin),
        None,
    );
    let making = async {
        for round in 0..4 {
            make(&b, format!("during{round}")).await;
        }
    };
    let ((status, body), ()) = tokio::join!(rotation, making);
    assert_eq!(status, StatusCode::OK, "{body}");

    a.restart().await;
    b.restart().await;
    let spaces = ["before", "during0", "during1", "during2", "during3"];
    for app in [&a, &b] {
        for space in spaces {
            let (status, text) = app
                .endpoint(
                    &format!("/s/{space}/examples/greeter-client/private"),
                    Some(&format!("token-{space}")),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{space}: {text}");
        }
    }
    // A second rotation retires every key but the new one: no space still uses them.
    let (status, body) = b
        .call(
            Method::POST,
            "/api/v1/admin/rotate-master-key",
            Some(&b.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rewrapped"], spaces.len(), "{body}");
    let master = std::fs::read_to_string(keys.path().join("master.key")).unwrap();
    assert_eq!(master_keys(&master), 1, "{master}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_recover_from_a_database_restart_under_load_without_restarting() {
    let database = std::sync::Arc::new(aerie_test_support::own_postgres());
    let (mut config, data_dir, _keys) = shared_config();
    config.database_url = Some(database.fresh_database());
    let a = TestApp::on(config, data_dir).await;
    let b = a.replica().await;
    a.publish("hello", "0.1.0").await;
    let ada = a.user("ada").await;
    a.space(&ada, "team").await;
    let (status, body) = a
        .install(&ada, "team", json!({ "plugin": "examples/hello" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    eventually("B serves hello", async || {
        let (status, _) = b.endpoint("/s/team/examples/hello/", None).await;
        (status == StatusCode::OK, status)
    })
    .await;

    // Requests keep coming to both replicas while the database restarts.
    let restarting = std::sync::atomic::AtomicBool::new(true);
    let restart = async {
        let database = std::sync::Arc::clone(&database);
        tokio::task::spawn_blocking(move || database.restart())
            .await
            .unwrap();
        restarting.store(false, std::sync::atomic::Ordering::Relaxed);
    };
    let load = async {
        let (mut answered, mut failed) = (0, 0);
        while restarting.load(std::sync::atomic::Ordering::Relaxed) {
            for app in [&a, &b] {
                let (plugin, _) = app.endpoint("/s/team/examples/hello/", None).await;
                let (api, _) = app
                    .call(Method::GET, "/api/v1/plugins/examples/hello", None, None)
                    .await;
                for status in [plugin, api] {
                    if status == StatusCode::OK {
                        answered += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
        }
        (answered, failed)
    };
    let ((), (answered, failed)) = tokio::join!(restart, load);
    eprintln!("during the database's restart: {answered} answered, {failed} failed");

    // Afterwards both replicas write, read and follow each other again, as they are.
    let config = format!(
        "{}/config",
        TestApp::installation_path("team", "examples/hello")
    );
    eventually("A takes a config change again", async || {
        let (status, body) = a
            .call(
                Method::PUT,
                &config,
                Some(&ada),
                Some(json!({ "config": { "greeting": "Back" } })),
            )
            .await;
        (status == StatusCode::OK, (status, body))
    })
    .await;
    eventually("B serves the change made through A", async || {
        let (_, text) = b.endpoint("/s/team/examples/hello/you", None).await;
        (text == "Back, you!\n", text)
    })
    .await;
    eventually("B publishes again", async || {
        let (status, body) = b.call(Method::GET, "/readyz", None, None).await;
        (status == StatusCode::OK, (status, body))
    })
    .await;
    b.publish("hello", "0.1.1").await;
    let (status, body) = a
        .call(
            Method::GET,
            "/api/v1/plugins/examples/hello/0.1.1",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
