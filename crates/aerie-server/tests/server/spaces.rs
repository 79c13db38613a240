//! Spaces through the HTTP API with the real example plugins: installs that resolve and
//! pull in dependencies, config checked against the schema, sealed secrets, updates that put
//! the old version back when the new one does not start, rollbacks, uninstalls, restarts, and
//! who may do what.

use std::collections::BTreeMap;
use std::time::Duration;

use aerie_core::package::{PackageFile, write_package};
use aerie_server::{Config, Server};
use aerie_test_support::plugins::example_plugin;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) const ADMIN_PASSWORD: &str = "admin-password-for-tests";

#[derive(Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A server on its own data, with helpers to publish, make spaces and install; shared by the
/// tests of other modules.
pub(crate) struct TestApp {
    pub(crate) server: Option<Server>,
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    config: Config,
    _data_dir: tempfile::TempDir,
    pub(crate) admin: String,
}

impl TestApp {
    pub(crate) async fn start(backend: Backend) -> TestApp {
        TestApp::start_with(backend, |_| {}).await
    }

    /// A server with `adjust` applied to its configuration.
    pub(crate) async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let (config, data_dir) = TestApp::config_for(backend, adjust);
        TestApp::on(config, data_dir).await
    }

    /// The configuration of a test server on a fresh database and data directory, with
    /// `adjust` applied.
    pub(crate) fn config_for(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
    ) -> (Config, tempfile::TempDir) {
        aerie_test_support::logs::capture();
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("aerie.db").display()),
            Backend::Postgres => aerie_test_support::postgres().fresh_database(),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(database_url),
            require_signature: false,
            plugin_rate_limit: 0,
            // Tests call far more often than people do; the limits' own tests set them.
            limits: aerie_server::limits::LimitsConfig {
                reads_per_minute: 100_000,
                searches_per_minute: 100_000,
                writes_per_minute: 100_000,
                logins_per_minute: 100_000,
                ..Default::default()
            },
            ..Config::default()
        };
        adjust(&mut config);
        (config, data_dir)
    }

    /// A server on `config`, whose data directory is `data_dir`, signed in as the admin.
    pub(crate) async fn on(config: Config, data_dir: tempfile::TempDir) -> TestApp {
        let mut app = TestApp {
            server: None,
            base: String::new(),
            client: aerie_test_support::http::client(),
            config,
            _data_dir: data_dir,
            admin: String::new(),
        };
        app.boot().await;
        app.admin = app
            .token(
                "admin",
                ADMIN_PASSWORD,
                &["publish", "download", "read-private", "admin", "spaces"],
            )
            .await;
        app
    }

    /// Starts the server (again) on the same data, and waits until every space is back.
    pub(crate) async fn boot(&mut self) {
        let server = Server::start(self.config.clone(), Some(ADMIN_PASSWORD.to_string()))
            .await
            .unwrap();
        server.restored().await;
        self.base = format!("http://{}", server.address());
        self.server = Some(server);
    }

    /// Another replica of this server: the same configuration (so the same database, blob
    /// store and key files) on a data directory of its own.
    pub(crate) async fn replica(&self) -> TestApp {
        let (config, data_dir) = self.replica_config();
        TestApp::on(config, data_dir).await
    }

    /// This server's configuration on a new data directory of its own.
    pub(crate) fn replica_config(&self) -> (Config, tempfile::TempDir) {
        let data_dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: data_dir.path().to_path_buf(),
            ..self.config.clone()
        };
        (config, data_dir)
    }

    pub(crate) async fn restart(&mut self) {
        self.server.take().unwrap().stop().await.unwrap();
        self.boot().await;
    }

    pub(crate) async fn token(&self, username: &str, password: &str, scopes: &[&str]) -> String {
        let response = self
            .client
            .post(format!("{}/api/v1/tokens", self.base))
            .basic_auth(username, Some(password))
            .json(&json!({ "name": format!("t{}", next()), "scopes": scopes }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A new user and a token to act as them in their spaces.
    pub(crate) async fn user(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&self.admin),
                Some(json!({ "username": name, "password": "a-long-password" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.token(name, "a-long-password", &["spaces", "download"])
            .await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// `path` on the server (see [`crate::url`]).
    pub(crate) fn url(&self, path: &str) -> String {
        crate::url(self.server.as_ref().expect("the server runs"), path)
    }

    /// GET on a plugin endpoint: status and body text.
    pub(crate) async fn endpoint(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// Publishes the example plugin in `plugins/<directory>` as `version`.
    pub(crate) async fn publish(&self, directory: &str, version: &str) {
        self.publish_as(directory, version, |manifest| manifest)
            .await;
    }

    pub(crate) async fn publish_as(
        &self,
        directory: &str,
        version: &str,
        edit: impl FnOnce(String) -> String,
    ) {
        let plugin = example_plugin(directory);
        let manifest = edit(plugin.manifest.replacen(
            "version = \"0.1.0\"",
            &format!("version = \"{version}\""),
            1,
        ));
        let name = manifest
            .lines()
            .find_map(|line| line.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap()
            .to_string();
        let namespace = name.split('/').next().unwrap();
        let _ = self
            .call(
                Method::POST,
                "/api/v1/namespaces",
                Some(&self.admin),
                Some(json!({ "name": namespace, "require_signature": false })),
            )
            .await;
        let bytes = write_package(&[
            PackageFile {
                name: "aerie.toml".into(),
                bytes: manifest.into_bytes(),
            },
            PackageFile {
                name: "plugin.wasm".into(),
                bytes: plugin.component.clone(),
            },
        ])
        .unwrap();
        let response = self
            .client
            .put(format!("{}/api/v1/plugins/{name}/{version}", self.base))
            .bearer_auth(&self.admin)
            .header("content-type", "application/gzip")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "publishing {name} {version}: {}",
            response.text().await.unwrap()
        );
    }

    pub(crate) async fn space(&self, token: &str, name: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/spaces",
                Some(token),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Installs with consent to whatever the server asks.
    pub(crate) async fn install(
        &self,
        token: &str,
        space: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/api/v1/spaces/{space}/installations");
        let (status, answer) = self
            .call(Method::POST, &path, Some(token), Some(body.clone()))
            .await;
        if code(&answer) != "permissions_not_accepted" {
            return (status, answer);
        }
        let mut body = body;
        body["accept"] = answer["error"]["details"]["permissions"].clone();
        self.call(Method::POST, &path, Some(token), Some(body))
            .await
    }

    pub(crate) fn installation_path(space: &str, plugin: &str) -> String {
        format!("/api/v1/spaces/{space}/installations/{plugin}")
    }

    pub(crate) async fn installation(&self, token: &str, space: &str, plugin: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &Self::installation_path(space, plugin),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Moves examples/hello `version` one certification step.
    pub(crate) async fn certify(
        &self,
        token: &str,
        version: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/api/v1/plugins/examples/hello/{version}/certification");
        self.call(Method::POST, &path, Some(token), Some(body))
            .await
    }

    pub(crate) async fn events(&self, token: &str, space: &str, plugin: &str) -> Vec<String> {
        let path = format!("{}/events", Self::installation_path(space, plugin));
        let (status, body) = self.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|event| event["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

fn next() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_pulls_in_dependencies_and_serves_with_config_and_secrets() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;

    // Permissions are shown, and nothing installs until they are accepted.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/spaces/team/installations",
            Some(&ada),
            Some(json!({ "plugin": "examples/greeter-client" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(code(&body), "permissions_not_accepted");
    let asked = &body["error"]["details"]["permissions"]["examples/greeter-client"];
    assert_eq!(asked["secrets"], json!(["access-token"]));
    assert_eq!(asked["services"], json!(["examples/greeter"]));
    let (_, listed) = app
        .call(
            Method::GET,
            "/api/v1/spaces/team/installations",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(listed, json!([]));

    // A config that breaks the schema is refused with the field named.
    let (status, body) = app
        .install(
            &ada,
            "team",
            json!({ "plugin": "examples/greeter-client", "config": { "default-name": 42 } }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "invalid_config");
    assert_eq!(
        body["error"]["details"]["problems"][0]["field"],
        "config.default-name"
    );

    let (status, body) = app
        .install(
            &ada,
            "team",
            json!({ "plugin": "examples/greeter-client", "config": { "default-name": "Ada" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["changed"]["examples/greeter"], "none -> 0.1.0");
    assert_eq!(body["changed"]["examples/greeter-client"], "none -> 0.1.0");
    let (status, text) = app.endpoint("/s/team/examples/greeter-client/", None).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "Hello, Ada!\n"));

    let client = app
        .installation(&ada, "team", "examples/greeter-client")
        .await;
    assert_eq!(client["status"], "active");
    assert_eq!(client["health"], "healthy");
    assert_eq!(client["breaker"], "closed");
    assert_eq!(client["requirement"], "*");
    assert_eq!(client["dependencies"], json!(["examples/greeter"]));
    assert_eq!(client["declared_secrets"], json!(["access-token"]));
    let greeter = app.installation(&ada, "team", "examples/greeter").await;
    assert_eq!(greeter["requirement"], Value::Null);
    // The registry counts where its plugins run.
    let (_, stats) = app
        .call(
            Method::GET,
            "/api/v1/plugins/examples/greeter/stats",
            None,
            None,
        )
        .await;
    assert_eq!(stats["active_installations"], 1, "{stats}");
    assert_eq!(
        stats["installations_by_version"],
        json!([{ "version": "0.1.0", "count": 1 }])
    );
    assert_eq!(greeter["config"], json!({ "greeting": "Hello" }));

    // The lockfile pins both.
    let response = app
        .client
        .get(format!("{}/api/v1/spaces/team/lockfile", app.base))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    let lockfile = aerie_resolve::Lockfile::parse(&response.text().await.unwrap()).unwrap();
    assert_eq!(lockfile.plugins.len(), 2);

    // A secret: set, used by the plugin, listed by name only.
    let secret_path = format!(
        "{}/secrets/access-token",
        TestApp::installation_path("team", "examples/greeter-client")
    );
    let (status, body) = app
        .call(
            Method::PUT,
            &secret_path,
            Some(&ada),
            Some(json!({ "value": "open-sesame" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app
        .endpoint(
            "/s/team/examples/greeter-client/private",
            Some("open-sesame"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .endpoint("/s/team/examples/greeter-client/private", Some("wrong"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let client = app
        .installation(&ada, "team", "examples/greeter-client")
        .await;
    assert_eq!(client["secrets"], json!(["access-token"]));
    let undeclared = format!(
        "{}/secrets/other",
        TestApp::installation_path("team", "examples/greeter-client")
    );
    let (status, body) = app
        .call(
            Method::PUT,
            &undeclared,
            Some(&ada),
            Some(json!({ "value": "x" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "secret_not_declared")
    );

    // Config changes restart the plugin with the new config.
    let config_path = format!(
        "{}/config",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = app
        .call(
            Method::PUT,
            &config_path,
            Some(&ada),
            Some(json!({ "config": { "greeting": "Howdy" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, text) = app
        .endpoint("/s/team/examples/greeter-client/?name=Bo", None)
        .await;
    assert_eq!(text, "Howdy, Bo!\n");
    let (status, body) = app
        .call(
            Method::PUT,
            &config_path,
            Some(&ada),
            Some(json!({ "config": { "greeting": 1 } })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_config")
    );
    let (_, text) = app
        .endpoint("/s/team/examples/greeter-client/?name=Bo", None)
        .await;
    assert_eq!(text, "Howdy, Bo!\n");

    // Installing again is refused; a dependency is not uninstalled on its own.
    let (status, body) = app
        .install(&ada, "team", json!({ "plugin": "examples/greeter-client" }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "already_installed")
    );
    let (status, body) = app
        .call(
            Method::DELETE,
            &TestApp::installation_path("team", "examples/greeter"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "required_by"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_rollback_move_versions_and_record_events() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("greeter", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    let (status, body) = app
        .install(
            &ada,
            "team",
            json!({ "plugin": "examples/greeter", "requirement": "^0.1" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.publish("greeter", "0.1.1").await;
    let update = format!(
        "{}/update",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = app
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"]["examples/greeter"], "0.1.0 -> 0.1.1");
    let greeter = app.installation(&ada, "team", "examples/greeter").await;
    assert_eq!(greeter["version"], "0.1.1");
    assert_eq!(greeter["previous_version"], "0.1.0");
    // Up to date: nothing changes.
    let (status, body) = app
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], json!({}));

    let rollback = format!(
        "{}/rollback",
        TestApp::installation_path("team", "examples/greeter")
    );
    let (status, body) = app.call(Method::POST, &rollback, Some(&ada), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"]["examples/greeter"], "0.1.1 -> 0.1.0");
    let greeter = app.installation(&ada, "team", "examples/greeter").await;
    assert_eq!(greeter["version"], "0.1.0");
    assert_eq!(greeter["previous_version"], "0.1.1");
    assert_eq!(
        app.events(&ada, "team", "examples/greeter").await,
        ["rolled_back", "updated", "installed"]
    );

    // A requirement no version meets is explained.
    let (status, body) = app
        .call(
            Method::POST,
            &update,
            Some(&ada),
            Some(json!({ "requirement": "^2" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "resolution_failed"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no published version of examples/greeter matches (there are 0.1.0, 0.1.1)"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependency_conflict_is_explained_in_plain_sentences() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter", "0.2.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    let (status, body) = app
        .install(
            &ada,
            "team",
            json!({ "plugin": "examples/greeter", "requirement": "^0.2" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .install(&ada, "team", json!({ "plugin": "examples/greeter-client" }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "resolution_failed"),
        "{body}"
    );
    let explanation: Vec<&str> = body["error"]["details"]["explanation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert_eq!(
        explanation,
        [
            "Because examples/greeter-client depends on examples/greeter >=0.1.0, <0.2.0 and the space requires examples/greeter-client, the space requires examples/greeter >=0.1.0, <0.2.0.",
            "And because the space requires examples/greeter >=0.2.0, <0.3.0, the requested plugins cannot be installed together.",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_fails_its_health_check_keeps_the_old_version_answering() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("probe", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    let (status, body) = app
        .install(&ada, "team", json!({ "plugin": "testing/probe" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.publish("probe", "0.2.0").await;
    // The probe's state (shared by its versions) makes every health check fail.
    let (status, _) = app
        .call(Method::POST, "/s/team/testing/probe/sick", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/s/team/testing/probe/overlap?ms=1");
        let stop = stop.clone();
        async move {
            let (mut answered, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match client.get(&url).send().await {
                    Ok(response) if response.status() == StatusCode::OK => answered += 1,
                    Ok(response) => failed.push(response.status().to_string()),
                    Err(err) => failed.push(err.to_string()),
                }
            }
            (answered, failed)
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let update = format!(
        "{}/update",
        TestApp::installation_path("team", "testing/probe")
    );
    let (status, body) = app
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "update_failed"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("told to be sick"),
        "{body}"
    );
    let probe = app.installation(&ada, "team", "testing/probe").await;
    assert_eq!(probe["version"], "0.1.0");
    assert!(
        probe["status_reason"]
            .as_str()
            .unwrap()
            .contains("told to be sick"),
        "{probe}"
    );

    // Well again, the same update takes, still without a failed request.
    app.call(Method::POST, "/s/team/testing/probe/well", None, None)
        .await;
    let (status, body) = app
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (answered, failed) = hammer.await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(answered > 0);
    let probe = app.installation(&ada, "team", "testing/probe").await;
    assert_eq!(probe["version"], "0.2.0");
    assert_eq!(probe["status_reason"], Value::Null);
    assert_eq!(
        app.events(&ada, "team", "testing/probe").await,
        ["updated", "update_failed", "installed"]
    );
}

async fn a_restart_brings_every_space_back(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    app.publish("counter", "0.1.0").await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    for space in ["one", "two"] {
        app.space(&ada, space).await;
        let (status, body) = app
            .install(&ada, space, json!({ "plugin": "examples/counter" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .install(&ada, "two", json!({ "plugin": "examples/greeter-client" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let disable = format!(
        "{}/disable",
        TestApp::installation_path("one", "examples/counter")
    );
    for _ in 0..3 {
        app.call(Method::POST, "/s/one/examples/counter/", None, None)
            .await;
    }
    app.call(Method::POST, "/s/two/examples/counter/", None, None)
        .await;

    app.restart().await;
    // Each space has its own count, kept across the restart.
    let (_, one) = app.endpoint("/s/one/examples/counter/", None).await;
    let (_, two) = app.endpoint("/s/two/examples/counter/", None).await;
    assert_eq!(serde_json::from_str::<Value>(&one).unwrap()["count"], 3);
    assert_eq!(serde_json::from_str::<Value>(&two).unwrap()["count"], 1);
    let (status, text) = app
        .endpoint("/s/two/examples/greeter-client/?name=Al", None)
        .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "Hello, Al!\n"));

    // A disabled installation stays off across a restart.
    let (status, body) = app.call(Method::POST, &disable, Some(&ada), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "disabled");
    app.restart().await;
    let (status, _) = app.endpoint("/s/one/examples/counter/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.endpoint("/s/two/examples/counter/", None).await;
    assert_eq!(status, StatusCode::OK);
    let enable = format!(
        "{}/enable",
        TestApp::installation_path("one", "examples/counter")
    );
    let (status, body) = app.call(Method::POST, &enable, Some(&ada), None).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("active")),
        "{body}"
    );
    let (_, one) = app.endpoint("/s/one/examples/counter/", None).await;
    assert_eq!(serde_json::from_str::<Value>(&one).unwrap()["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_every_space_back_on_sqlite() {
    a_restart_brings_every_space_back(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_brings_every_space_back_on_postgres() {
    a_restart_brings_every_space_back(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_larger_than_the_default_limit_installs_where_the_operator_raised_it() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.max_package_size = 64 * 1024 * 1024;
    })
    .await;
    // hello with a custom section of 51 MiB that does not compress: a package past the
    // default 50 MiB, within the 64 this server takes.
    let hello = example_plugin("hello");
    let mut component = hello.component.clone();
    let mut padding = vec![0u8; 51 * 1024 * 1024];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in padding.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let name = b"padding";
    let mut section = leb128(name.len() as u64);
    section.extend_from_slice(name);
    section.extend_from_slice(&padding);
    component.push(0);
    component.extend(leb128(section.len() as u64));
    component.extend(section);
    let package = write_package(&[
        PackageFile {
            name: "aerie.toml".into(),
            bytes: hello.manifest.clone().into_bytes(),
        },
        PackageFile {
            name: "plugin.wasm".into(),
            bytes: component,
        },
    ])
    .unwrap();
    assert!(package.len() > 50 * 1024 * 1024, "{}", package.len());
    app.call(
        Method::POST,
        "/api/v1/namespaces",
        Some(&app.admin),
        Some(json!({ "name": "examples", "require_signature": false })),
    )
    .await;
    let response = app
        .client
        .put(app.url("/api/v1/plugins/examples/hello/0.1.0"))
        .bearer_auth(&app.admin)
        .body(package)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    let (status, body) = app
        .install(&ada, "team", json!({ "plugin": "examples/hello" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, text) = app.endpoint("/s/team/examples/hello/you", None).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "Hello, you!\n"));
}

/// `value` as an unsigned LEB128 number, as WebAssembly writes sizes.
fn leb128(mut value: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            return bytes;
        }
        bytes.push(byte | 0x80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_package_keeps_only_its_own_installation_from_starting() {
    let mut app = TestApp::start(Backend::Sqlite).await;
    app.publish("hello", "0.1.0").await;
    app.publish("counter", "0.1.0").await;
    let ada = app.user("ada").await;
    for (space, plugins) in [
        ("one", &["examples/counter", "examples/hello"][..]),
        ("two", &["examples/hello"][..]),
    ] {
        app.space(&ada, space).await;
        for plugin in plugins {
            let (status, body) = app.install(&ada, space, json!({ "plugin": plugin })).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    // The counter's package goes missing from the blob store.
    let (_, version) = app
        .call(
            Method::GET,
            "/api/v1/plugins/examples/counter/0.1.0",
            None,
            None,
        )
        .await;
    let hex = version["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let blob = app
        .config
        .data_dir
        .join(format!("blobs/sha256/{}/{}/{hex}", &hex[..2], &hex[2..4]));
    std::fs::remove_file(&blob).unwrap();

    app.restart().await;
    let (status, _) = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for space in ["one", "two"] {
        let (status, text) = app
            .endpoint(&format!("/s/{space}/examples/hello/you"), None)
            .await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, "Hello, you!\n"),
            "{space}"
        );
    }
    let (status, _) = app.endpoint("/s/one/examples/counter/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The space still takes changes: the broken installation can be removed.
    let (status, body) = app
        .call(
            Method::DELETE,
            &TestApp::installation_path("one", "examples/counter"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_deletes_or_keeps_the_data_and_takes_orphaned_dependencies() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("counter", "0.1.0").await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    for plugin in ["examples/counter", "examples/greeter-client"] {
        let (status, body) = app.install(&ada, "team", json!({ "plugin": plugin })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let count = async |app: &TestApp| {
        let (_, text) = app.endpoint("/s/team/examples/counter/", None).await;
        serde_json::from_str::<Value>(&text).unwrap()["count"].clone()
    };
    for _ in 0..2 {
        app.call(Method::POST, "/s/team/examples/counter/", None, None)
            .await;
    }
    let counter = TestApp::installation_path("team", "examples/counter");

    // Kept: a reinstall finds the count.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("{counter}?keep_data=true"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"]["examples/counter"], "0.1.0 -> none");
    let (status, _) = app.endpoint("/s/team/examples/counter/", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.install(&ada, "team", json!({ "plugin": "examples/counter" }))
        .await;
    assert_eq!(count(&app).await, 2);

    // Deleted: a reinstall starts from nothing.
    let (status, body) = app.call(Method::DELETE, &counter, Some(&ada), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.install(&ada, "team", json!({ "plugin": "examples/counter" }))
        .await;
    assert_eq!(count(&app).await, 0);
    assert_eq!(
        app.events(&ada, "team", "examples/counter").await,
        [
            "installed",
            "uninstalled",
            "installed",
            "uninstalled",
            "installed"
        ]
    );

    // Uninstalling the client takes the greeter it pulled in.
    let (status, body) = app
        .call(
            Method::DELETE,
            &TestApp::installation_path("team", "examples/greeter-client"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"]["examples/greeter"], "0.1.0 -> none");
    let plugins: Vec<&str> = body["installations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|view| view["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["examples/counter"]);
    let (_, stats) = app
        .call(
            Method::GET,
            "/api/v1/plugins/examples/greeter/stats",
            None,
            None,
        )
        .await;
    assert_eq!(stats["active_installations"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_absent_from_every_response_and_log_line() {
    let logs = aerie_test_support::logs::capture();
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "vault").await;
    app.install(
        &ada,
        "vault",
        json!({ "plugin": "examples/greeter-client" }),
    )
    .await;
    const SECRET: &str = "zq-secret-value-8f1d2c";
    let installation = TestApp::installation_path("vault", "examples/greeter-client");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("{installation}/secrets/access-token"),
            Some(&ada),
            Some(json!({ "value": SECRET })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The plugin reads it.
    let (status, _) = app
        .endpoint("/s/vault/examples/greeter-client/private", Some(SECRET))
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut responses = String::new();
    for path in [
        "/api/v1/spaces".to_string(),
        "/api/v1/spaces/vault".into(),
        "/api/v1/spaces/vault/installations".into(),
        installation.clone(),
        format!("{installation}/events"),
        "/api/v1/spaces/vault/lockfile".into(),
        "/api/v1/audit?limit=200".into(),
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        responses.push_str(&response.text().await.unwrap());
    }
    assert!(
        responses.contains("access-token"),
        "the secret's name is shown"
    );
    assert!(!responses.contains(SECRET), "a response holds the secret");
    let text = logs.text();
    assert!(
        text.contains("secrets/access-token"),
        "the secret's request was logged"
    );
    assert!(!text.contains(SECRET), "a log line holds the secret");
    // Nor does any file the server keeps (the database and its journal among them).
    fn holds(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .flat_map(|path| {
                if path.is_dir() {
                    holds(&path, needle)
                } else {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    let found = bytes.windows(needle.len()).any(|window| window == needle);
                    if found { vec![path] } else { Vec::new() }
                }
            })
            .collect()
    }
    assert_eq!(
        holds(&app.config.data_dir, SECRET.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_master_key_keeps_every_secret_readable() {
    let mut app = TestApp::start(Backend::Sqlite).await;
    app.publish("greeter", "0.1.0").await;
    app.publish("greeter-client", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    app.install(&ada, "team", json!({ "plugin": "examples/greeter-client" }))
        .await;
    let installation = TestApp::installation_path("team", "examples/greeter-client");
    app.call(
        Method::PUT,
        &format!("{installation}/secrets/access-token"),
        Some(&ada),
        Some(json!({ "value": "before-rotation" })),
    )
    .await;
    let key_file = app.config.data_dir.join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/admin/rotate-master-key",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "admin_required")
    );
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/admin/rotate-master-key",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rewrapped"], 1);
    assert_eq!(body["retired"].as_array().unwrap().len(), 1);
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    let key_lines = |text: &str| text.lines().filter(|line| !line.starts_with('#')).count();
    assert_eq!(key_lines(&new_key), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (status, _) = app
        .endpoint(
            "/s/team/examples/greeter-client/private",
            Some("before-rotation"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // After a restart with only the new key, too.
    app.restart().await;
    let (status, _) = app
        .endpoint(
            "/s/team/examples/greeter-client/private",
            Some("before-rotation"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Every endpoint, for every kind of caller: allowed, refused for a lacking role, or not
/// there at all for a caller outside the space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_for_every_endpoint_and_role() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("probe", "0.1.0").await;
    // The probe again, with one route per guard.
    app.publish_as("probe", "0.1.0", |manifest| {
        manifest
            .replace("testing/probe", "testing/guarded")
            .replace(
                "[[provides.routes]]\npath = \"/*\"\nguard = \"public\"",
                "[[provides.routes]]\npath = \"/public\"\nguard = \"public\"\n\n\
             [[provides.routes]]\npath = \"/viewer\"\nguard = \"viewer\"\n\n\
             [[provides.routes]]\npath = \"/member\"\nguard = \"member\"\n\n\
             [[provides.routes]]\npath = \"/admin\"\nguard = \"admin\"\n\n\
             [[provides.routes]]\npath = \"/owner\"\nguard = \"owner\"",
            )
    })
    .await;
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.space(&owner, "team").await;
    app.space(&stranger, "elsewhere").await;
    let (status, body) = app
        .install(&owner, "team", json!({ "plugin": "testing/guarded" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut callers: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for role in ["viewer", "member", "admin"] {
        let username = format!("a-{role}");
        let token = app.user(&username).await;
        let (status, body) = app
            .call(
                Method::PUT,
                &format!("/api/v1/spaces/team/members/{username}"),
                Some(&owner),
                Some(json!({ "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        callers.insert(role, Some(token));
    }
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/spaces/team/tokens",
            Some(&owner),
            Some(json!({ "name": "ci", "role": "member" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    callers.insert(
        "space token (member)",
        Some(body["token"].as_str().unwrap().to_string()),
    );
    callers.insert("anonymous", None);
    callers.insert("owner", Some(owner.clone()));
    callers.insert("another space's owner", Some(stranger.clone()));
    callers.insert("server admin", Some(app.admin.clone()));
    let rank = |caller: &str| match caller {
        "owner" | "server admin" => Some(0),
        "admin" => Some(1),
        "member" | "space token (member)" => Some(2),
        "viewer" => Some(3),
        _ => None,
    };

    let installation = TestApp::installation_path("team", "testing/guarded");
    let absent = TestApp::installation_path("team", "testing/absent");
    // (method, path, body, least role: 0 owner .. 3 viewer)
    let endpoints: Vec<(Method, String, Option<Value>, usize)> = vec![
        (Method::GET, "/api/v1/spaces/team".into(), None, 3),
        (Method::GET, "/api/v1/spaces/team/members".into(), None, 3),
        (
            Method::GET,
            "/api/v1/spaces/team/installations".into(),
            None,
            3,
        ),
        (Method::GET, installation.clone(), None, 3),
        (Method::GET, format!("{installation}/events"), None, 3),
        (Method::GET, "/api/v1/spaces/team/lockfile".into(), None, 3),
        (
            Method::PUT,
            "/api/v1/spaces/team/members/nobody".into(),
            Some(json!({ "role": "viewer" })),
            1,
        ),
        (
            Method::DELETE,
            "/api/v1/spaces/team/members/nobody".into(),
            None,
            1,
        ),
        (Method::GET, "/api/v1/spaces/team/tokens".into(), None, 1),
        (
            Method::POST,
            "/api/v1/spaces/team/tokens".into(),
            Some(json!({ "name": "bad name!", "role": "viewer" })),
            1,
        ),
        (
            Method::DELETE,
            "/api/v1/spaces/team/tokens/999999".into(),
            None,
            1,
        ),
        (
            Method::POST,
            "/api/v1/spaces/team/installations".into(),
            Some(json!({ "plugin": "testing/absent" })),
            1,
        ),
        (Method::DELETE, absent.clone(), None, 1),
        (Method::POST, format!("{absent}/update"), Some(json!({})), 1),
        (Method::POST, format!("{absent}/rollback"), None, 1),
        (Method::POST, format!("{absent}/disable"), None, 1),
        (Method::POST, format!("{absent}/enable"), None, 1),
        (
            Method::PUT,
            format!("{absent}/config"),
            Some(json!({ "config": {} })),
            1,
        ),
        (
            Method::PUT,
            format!("{absent}/secrets/x"),
            Some(json!({ "value": "v" })),
            1,
        ),
        (Method::DELETE, format!("{absent}/secrets/x"), None, 1),
        (
            Method::PATCH,
            "/api/v1/spaces/team".into(),
            Some(json!({ "name": "team" })),
            0,
        ),
        (
            Method::DELETE,
            "/api/v1/spaces/does-not-matter".into(),
            None,
            0,
        ),
    ];
    let mut failures = Vec::new();
    for (caller, token) in &callers {
        for (method, path, body, least) in &endpoints {
            // Deleting is checked on a space of its own for each caller who may.
            let path = match path.ends_with("does-not-matter") {
                true if rank(caller) == Some(0) => {
                    let throwaway = format!("gone{}", next());
                    app.space(&owner, &throwaway).await;
                    format!("/api/v1/spaces/{throwaway}")
                }
                true => "/api/v1/spaces/team".to_string(),
                false => path.clone(),
            };
            let (status, answer) = app
                .call(method.clone(), &path, token.as_deref(), body.clone())
                .await;
            let got = code(&answer);
            let expected = match rank(caller) {
                None => "space_not_found",
                Some(rank) if rank > *least => "space_role_required",
                Some(_) => "allowed",
            };
            // An authorized call that fails is no proof that it was allowed.
            let outcome = match got {
                "space_not_found" | "space_role_required" | "auth_required" | "token_scope" => got,
                _ if status.is_server_error() => "a server error",
                _ => "allowed",
            };
            if outcome != expected {
                failures.push(format!(
                    "{caller}: {method} {path} -> {status} {got}, expected {expected}"
                ));
            }
        }
        // The plugin's own routes, by guard.
        for (route, least) in [
            ("public", 4),
            ("viewer", 3),
            ("member", 2),
            ("admin", 1),
            ("owner", 0),
        ] {
            let (status, text) = app
                .endpoint(
                    &format!("/s/team/testing/guarded/{route}"),
                    token.as_deref(),
                )
                .await;
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let got = code(&body);
            let expected = match rank(caller) {
                _ if least == 4 => "allowed",
                None => "plugin_not_running",
                Some(rank) if rank > least => "space_role_required",
                Some(_) => "allowed",
            };
            let outcome = match got {
                "plugin_not_running" | "space_role_required" => got,
                _ if status.is_server_error() => "a server error",
                _ => "allowed",
            };
            if outcome != expected {
                failures.push(format!(
                    "{caller}: /{route} -> {status} {got}, expected {expected}"
                ));
            }
        }
    }
    // The endpoints outside any one space: listing and creating spaces need a user (a space
    // token acts in its own space only); rotating the master key needs a server administrator.
    for (caller, token) in &callers {
        let user = !matches!(*caller, "anonymous" | "space token (member)");
        let name = format!("made{}", next());
        let cases = [
            (
                Method::GET,
                "/api/v1/spaces".to_string(),
                None,
                *caller != "anonymous",
            ),
            (
                Method::POST,
                "/api/v1/spaces".to_string(),
                Some(json!({ "name": name })),
                user,
            ),
            (
                Method::POST,
                "/api/v1/admin/rotate-master-key".to_string(),
                None,
                *caller == "server admin",
            ),
        ];
        for (method, path, body, allowed) in cases {
            let (status, answer) = app
                .call(method.clone(), &path, token.as_deref(), body)
                .await;
            if status.is_success() != allowed {
                failures.push(format!(
                    "{caller}: {method} {path} -> {status} {}, expected {}",
                    code(&answer),
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A space token lists only its own space.
    let (_, listed) = app
        .call(
            Method::GET,
            "/api/v1/spaces",
            callers["space token (member)"].as_deref(),
            None,
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "team");
    // A space nobody may see answers exactly like one that does not exist.
    let (status, hidden) = app
        .call(Method::GET, "/api/v1/spaces/elsewhere", Some(&owner), None)
        .await;
    let (_, missing) = app
        .call(Method::GET, "/api/v1/spaces/nowhere", Some(&owner), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .replace("elsewhere", "X"),
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nowhere", "X")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_certify_and_a_space_that_requires_it_runs_only_certified_versions() {
    let mut app = TestApp::start(Backend::Sqlite).await;
    app.publish("hello", "0.1.0").await;
    app.publish("hello", "0.2.0").await;
    let certification =
        |version: &str| format!("/api/v1/plugins/examples/hello/{version}/certification");
    let step = |action: &str| json!({ "action": action });
    // maya maintains the namespace; sam has no role in it.
    app.user("maya").await;
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/namespaces/examples/members/maya",
            Some(&app.admin),
            Some(json!({ "role": "maintainer" })),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let maya = app
        .token(
            "maya",
            "a-long-password",
            &["publish", "spaces", "download"],
        )
        .await;
    let sam = app.user("sam").await;

    let (status, body) = app
        .call(Method::GET, &certification("0.1.0"), None, None)
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("not_submitted"))
    );
    let (status, _) = app.certify(&sam, "0.1.0", step("submit")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the namespace's maintainers submit"
    );
    let (status, body) = app.certify(&maya, "0.1.0", step("submit")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("submitted")),
        "{body}"
    );
    let (status, body) = app.certify(&maya, "0.1.0", step("submit")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "invalid_certification_step")
    );
    // Only admins move it on, whatever the publisher tries.
    for action in ["start_review", "certify", "reject"] {
        let (status, body) = app
            .certify(
                &maya,
                "0.1.0",
                json!({ "action": action, "reason": "mine is fine" }),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "admin_required"),
            "{action}"
        );
    }
    let admin = app.admin.clone();
    let (status, body) = app.certify(&admin, "0.1.0", step("certify")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "invalid_certification_step")
    );
    assert_eq!(
        body["error"]["message"],
        "cannot certify this version: it is submitted; only a version in review is certified"
    );
    // Bad steps are refused with their reason, and change nothing.
    for (token, version, body, expected) in [
        (
            &admin,
            "0.1.0",
            step("reject"),
            (StatusCode::BAD_REQUEST, "reason_required"),
        ),
        (
            &admin,
            "0.1.0",
            step("approve"),
            (StatusCode::BAD_REQUEST, "invalid_action"),
        ),
        (
            &admin,
            "0.1.0",
            json!({ "action": "reject", "reason": "x".repeat(2001) }),
            (StatusCode::BAD_REQUEST, "reason_too_long"),
        ),
        (
            &maya,
            "9.9.9",
            step("submit"),
            (StatusCode::NOT_FOUND, "version_not_found"),
        ),
        (
            &maya,
            "0.1.0",
            json!({ "reason": 7 }),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ),
    ] {
        let (status, answer) = app.certify(token, version, body.clone()).await;
        assert_eq!((status, code(&answer)), expected, "{body}: {answer}");
    }
    let (_, unchanged) = app
        .call(Method::GET, &certification("0.1.0"), None, None)
        .await;
    assert_eq!(unchanged["state"], "submitted");
    // A yanked version is not submitted.
    let yank = "/api/v1/plugins/examples/hello/0.2.0/yank";
    let yanker = app.token("admin", ADMIN_PASSWORD, &["yank"]).await;
    let (status, _) = app.call(Method::PUT, yank, Some(&yanker), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.certify(&maya, "0.2.0", step("submit")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "version_yanked")
    );
    let (status, _) = app.call(Method::DELETE, yank, Some(&yanker), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::GET,
            "/api/v1/admin/certifications",
            Some(&maya),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/admin/certifications",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["versions"][0]["plugin"], "examples/hello");
    assert_eq!(body["versions"][0]["submitted_by"], "maya");

    let (status, body) = app.certify(&admin, "0.1.0", step("start_review")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("in_review"))
    );
    let (status, body) = app.certify(&admin, "0.1.0", step("certify")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("certified")),
        "{body}"
    );
    // The signature is the registry's, over exactly this package.
    let (_, key) = app
        .call(Method::GET, "/api/v1/registry/key", None, None)
        .await;
    let key = aerie_core::signature::PublicKey::parse(key["public_key"].as_str().unwrap()).unwrap();
    let name: aerie_core::name::PluginName = "examples/hello".parse().unwrap();
    let digest: aerie_core::digest::Digest = body["digest"].as_str().unwrap().parse().unwrap();
    let signature = body["signature"].as_str().unwrap();
    aerie_core::certification::verify(&name, &"0.1.0".parse().unwrap(), &digest, signature, &key)
        .unwrap();
    assert!(
        aerie_core::certification::verify(
            &name,
            &"0.2.0".parse().unwrap(),
            &digest,
            signature,
            &key
        )
        .is_err()
    );
    let history: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["submitted", "in_review", "certified"]);
    let (_, version) = app
        .call(
            Method::GET,
            "/api/v1/plugins/examples/hello/0.1.0",
            None,
            None,
        )
        .await;
    assert_eq!(version["certification"], "certified");
    let (_, found) = app
        .call(
            Method::GET,
            "/api/v1/search?q=hello&certified=true",
            None,
            None,
        )
        .await;
    assert_eq!(found["hits"][0]["name"], "examples/hello", "{found}");

    // A space that requires certification installs the certified 0.1.0, not the newer 0.2.0.
    app.space(&sam, "strict").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/spaces/strict",
            Some(&maya),
            Some(json!({ "require_certified": true })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only the space's owner sets its policy: {body}"
    );
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/spaces/strict",
            Some(&sam),
            Some(json!({ "require_certified": true })),
        )
        .await;
    assert_eq!(
        (status, &body["require_certified"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    let (status, body) = app
        .install(&sam, "strict", json!({ "plugin": "examples/hello" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let installed = app.installation(&sam, "strict", "examples/hello").await;
    assert_eq!(installed["version"], "0.1.0");
    let (status, body) = app
        .call(
            Method::POST,
            &format!(
                "{}/update",
                TestApp::installation_path("strict", "examples/hello")
            ),
            Some(&sam),
            Some(json!({ "requirement": "=0.2.0" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "resolution_failed"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("examples/hello 0.2.0 is not certified"),
        "{body}"
    );
    let (status, _) = app.endpoint("/s/strict/examples/hello/you", None).await;
    assert_eq!(status, StatusCode::OK);

    // Withdrawn: the signature goes, and the space no longer runs the version after a restart.
    let (status, body) = app
        .certify(
            &admin,
            "0.1.0",
            json!({ "action": "reject", "reason": "it leaks its config" }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );
    assert_eq!(body["signature"], Value::Null);
    let (_, found) = app
        .call(
            Method::GET,
            "/api/v1/search?q=hello&certified=true",
            None,
            None,
        )
        .await;
    assert_eq!(found["total"], 0, "{found}");
    app.restart().await;
    let installed = app.installation(&sam, "strict", "examples/hello").await;
    assert_eq!(installed["status"], "failed");
    assert!(
        installed["status_reason"]
            .as_str()
            .unwrap()
            .contains("is not certified by this registry"),
        "{installed}"
    );
    let (status, _) = app.endpoint("/s/strict/examples/hello/you", None).await;
    assert_ne!(status, StatusCode::OK);
    // The publisher may submit again after a rejection.
    let (status, body) = app.certify(&maya, "0.1.0", step("submit")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::OK, Some("submitted"))
    );
}
