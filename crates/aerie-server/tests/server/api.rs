//! The registry API over HTTP, against a real server on 127.0.0.1, on SQLite and on a real
//! PostgreSQL. Every bad input gets its status and stable code, and leaves nothing stored.

use std::time::Duration;

use aerie_core::digest::Digest;
use aerie_core::signature::{GeneratedKeys, SecretKey, generate_keys, sign_package};
use aerie_server::{Config, Server};
use aerie_test_support::archive::{RawEntry, gzip, http_component, manifest, package, raw_archive};
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A server with its own data directory and database, and an HTTP client.
struct TestApp {
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
    database_url: String,
    data_dir: tempfile::TempDir,
}

#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl TestApp {
    async fn start(backend: Backend) -> TestApp {
        TestApp::with_config(backend, |_| {}).await
    }

    async fn with_config(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        // One subscriber for the whole test binary: the spaces tests read what it captures.
        aerie_test_support::logs::capture();
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", data_dir.path().join("aerie.db").display()),
            Backend::Postgres => aerie_test_support::postgres().fresh_database(),
        };
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            database_url: Some(database_url.clone()),
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
        let server = Server::start(config, Some(ADMIN_PASSWORD.to_string()))
            .await
            .unwrap();
        TestApp {
            base: format!("http://{}", server.address()),
            server: Some(server),
            client: reqwest::Client::new(),
            database_url,
            data_dir,
        }
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// A token for `username` with `scopes`, minted with HTTP Basic credentials.
    async fn token(
        &self,
        username: &str,
        password: &str,
        scopes: &[&str],
        namespaces: Option<&[&str]>,
    ) -> String {
        let response = self
            .request(Method::POST, "/api/v1/tokens", None)
            .basic_auth(username, Some(password))
            .json(&json!({ "name": format!("t{}", rand_suffix()), "scopes": scopes, "namespaces": namespaces }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn admin(&self) -> String {
        self.token(
            "admin",
            ADMIN_PASSWORD,
            &["publish", "yank", "read-private", "download", "admin"],
            None,
        )
        .await
    }

    /// A new user (created by the admin) and a token with every scope but admin.
    async fn user(&self, name: &str) -> String {
        let admin = self.admin().await;
        let (status, body) = self
            .json(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({ "username": name, "password": "a-long-password" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.token(
            name,
            "a-long-password",
            &["publish", "yank", "read-private", "download", "owner"],
            None,
        )
        .await
    }

    async fn namespace(&self, token: &str, name: &str, require_signature: bool) {
        let (status, body) = self
            .json(
                Method::POST,
                "/api/v1/namespaces",
                Some(token),
                Some(json!({ "name": name, "require_signature": require_signature })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    async fn publish(
        &self,
        token: Option<&str>,
        path: &str,
        bytes: Vec<u8>,
        signature: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .request(Method::PUT, &format!("/api/v1/plugins/{path}"), token)
            .header("content-type", "application/gzip")
            .body(bytes);
        if let Some(signature) = signature {
            request = request.header(
                "x-aerie-signature",
                base64::engine::general_purpose::STANDARD.encode(signature),
            );
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Files in the blob directory.
    fn stored_blobs(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .map(|entry| entry.unwrap().path())
                    .map(|path| if path.is_dir() { count(&path) } else { 1 })
                    .sum()
            })
        }
        count(&self.data_dir.path().join("blobs"))
    }

    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.unwrap();
        }
    }

    /// Starts the server again (after `stop`) on the same data.
    async fn restart(&mut self) {
        self.stop().await;
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: self.data_dir.path().to_path_buf(),
            database_url: Some(self.database_url.clone()),
            ..Config::default()
        };
        let server = Server::start(config, Some(ADMIN_PASSWORD.to_string()))
            .await
            .unwrap();
        self.base = format!("http://{}", server.address());
        self.server = Some(server);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// Runs each named test against both back ends.
macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

suite!(
    the_first_administrator_signs_in_with_a_session,
    sign_up_is_closed_unless_configured,
    tokens_are_shown_once_and_every_bad_token_is_refused_precisely,
    token_scopes_and_namespaces_limit_what_a_token_does,
    a_published_version_is_read_and_downloaded_with_cache_headers,
    versions_are_immutable_and_concurrent_publishes_create_one,
    every_bad_package_is_refused_and_nothing_is_stored,
    bodies_over_the_limit_are_refused_while_streaming,
    signatures_are_checked_against_registered_keys,
    yanked_versions_are_skipped_by_resolution_but_downloadable_by_version,
    names_differing_by_case_or_underscore_cannot_exist,
    private_namespaces_look_missing_to_outsiders,
    downloads_are_counted_off_the_hot_path,
    the_audit_log_records_changes_for_administrators,
    published_plugins_are_searchable_at_once_and_the_index_follows_changes,
    reviews_are_one_per_user_and_the_rating_follows_every_change,
    a_plugin_page_has_a_sanitised_readme_permissions_in_words_and_its_dependents,
);

async fn the_first_administrator_signs_in_with_a_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let response = app
        .request(Method::POST, "/api/v1/sessions", None)
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let me: Value = app
        .request(Method::GET, "/api/v1/me", None)
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["is_admin"], true);
    // A cookie alone cannot change anything: cross-site forms cannot add this header.
    let response = app
        .request(Method::POST, "/api/v1/namespaces", None)
        .header("cookie", &session)
        .json(&json!({ "name": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Nor can a page of another origin, same-site or not (a plugin origin): browsers say
    // where a request comes from, and pages cannot change it.
    for (header, value) in [
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "http://team.localhost:7878"),
    ] {
        let response = app
            .request(Method::POST, "/api/v1/namespaces", None)
            .header("cookie", &session)
            .header("x-requested-with", "aerie")
            .header(header, value)
            .json(&json!({ "name": "acme" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{header}: {value}"
        );
    }
    let response = app
        .request(Method::POST, "/api/v1/namespaces", None)
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({ "name": "acme-browser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = app
        .request(Method::POST, "/api/v1/namespaces", None)
        .header("cookie", &session)
        .header("x-requested-with", "aerie")
        .json(&json!({ "name": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    for (username, password) in [("admin", "wrong-password"), ("nobody", ADMIN_PASSWORD)] {
        let (status, body) = app
            .json(
                Method::POST,
                "/api/v1/sessions",
                None,
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "login_failed")
        );
    }
    let response = app
        .request(Method::DELETE, "/api/v1/sessions", None)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .request(Method::GET, "/api/v1/me", None)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn sign_up_is_closed_unless_configured(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, body) = app
        .json(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({ "username": "ada", "password": "a-long-password" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "signup_closed")
    );
    let open = TestApp::with_config(backend, |config| config.open_signup = true).await;
    let (status, _) = open
        .json(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({ "username": "ada", "password": "a-long-password" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (body, expected) in [
        (
            json!({ "username": "ada", "password": "a-long-password" }),
            (StatusCode::CONFLICT, "conflict"),
        ),
        (
            json!({ "username": "Ada", "password": "a-long-password" }),
            (StatusCode::BAD_REQUEST, "invalid_username"),
        ),
        (
            json!({ "username": "bob", "password": "short" }),
            (StatusCode::BAD_REQUEST, "weak_password"),
        ),
    ] {
        let (status, response) = open
            .json(Method::POST, "/api/v1/users", None, Some(body))
            .await;
        assert_eq!((status, code(&response)), expected, "{response}");
    }
    let (status, _) = open
        .json(
            Method::POST,
            "/api/v1/users",
            None,
            Some(json!({ "username": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn tokens_are_shown_once_and_every_bad_token_is_refused_precisely(backend: Backend) {
    let app = TestApp::start(backend).await;
    let token = app.user("ada").await;
    let (status, listed) = app
        .json(Method::GET, "/api/v1/tokens", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(token.starts_with(listed[0]["prefix"].as_str().unwrap()));
    assert!(
        !listed[0].to_string().contains(&token),
        "the secret is never listed"
    );
    let id = listed[0]["id"].as_i64().unwrap();

    // An expired token, written straight into the database.
    let db = aerie_db::Database::connect(&app.database_url)
        .await
        .unwrap();
    let ada = db.user_by_name("ada").await.unwrap().unwrap();
    let expired = format!("aerie_{}", "e".repeat(64));
    db.create_token(
        &aerie_db::Actor::system(),
        &aerie_db::NewToken {
            user_id: ada.id,
            name: "old".into(),
            hash: aerie_server::auth::sha256(expired.as_bytes()),
            prefix: "aerie_eeeeee".into(),
            scopes: vec!["publish".into()],
            namespaces: None,
            expires_at: Some(1),
        },
    )
    .await
    .unwrap();

    let unknown = format!("aerie_{}", "0".repeat(64));
    for (authorization, expected) in [
        (None, "auth_required"),
        (Some("Bearer not-a-token".to_string()), "token_malformed"),
        (Some(format!("Bearer {}", &token[..20])), "token_malformed"),
        (Some("Token abc".to_string()), "auth_malformed"),
        (Some(format!("Bearer {unknown}")), "token_invalid"),
        (Some(format!("Bearer {expired}")), "token_expired"),
    ] {
        let mut request = app
            .request(Method::POST, "/api/v1/namespaces", None)
            .json(&json!({ "name": "acme" }));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), expected);
    }
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .json(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "token_revoked")
    );
    // Tokens cannot mint tokens, and nothing mints one without credentials.
    let other = app.user("bob").await;
    let (status, body) = app
        .json(
            Method::POST,
            "/api/v1/tokens",
            Some(&other),
            Some(json!({ "name": "x", "scopes": ["publish"] })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "token_cannot_create_tokens")
    );
    let (status, body) = app
        .json(
            Method::POST,
            "/api/v1/tokens",
            None,
            Some(json!({ "name": "x", "scopes": ["publish"] })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "auth_required")
    );
    let response = app
        .request(Method::POST, "/api/v1/tokens", None)
        .basic_auth("bob", Some("a-long-password"))
        .json(&json!({ "name": "x", "scopes": ["fly"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = app
        .request(Method::POST, "/api/v1/tokens", None)
        .basic_auth("bob", Some("a-long-password"))
        .json(&json!({ "name": "x", "scopes": ["admin"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

async fn token_scopes_and_namespaces_limit_what_a_token_does(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    app.namespace(&ada, "other", false).await;
    let read_only = app
        .token("ada", "a-long-password", &["download"], None)
        .await;
    let (status, body) = app
        .publish(
            Some(&read_only),
            "acme/hello/1.0.0",
            package("acme/hello", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "token_scope")
    );
    let acme_only = app
        .token("ada", "a-long-password", &["publish"], Some(&["acme"]))
        .await;
    let (status, body) = app
        .publish(
            Some(&acme_only),
            "other/hello/1.0.0",
            package("other/hello", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "token_namespace")
    );
    let (status, _) = app
        .publish(
            Some(&acme_only),
            "acme/hello/1.0.0",
            package("acme/hello", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Publishing into someone else's namespace.
    let bob = app.user("bob").await;
    let (status, body) = app
        .publish(
            Some(&bob),
            "acme/hello/2.0.0",
            package("acme/hello", "2.0.0"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "role_required")
    );
    let (status, body) = app
        .publish(
            Some(&bob),
            "nowhere/hello/1.0.0",
            package("nowhere/hello", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "namespace_not_found")
    );
    // A maintainer may publish; only owners manage members.
    let (status, _) = app
        .json(
            Method::PUT,
            "/api/v1/namespaces/acme/members/bob",
            Some(&ada),
            Some(json!({ "role": "maintainer" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .publish(
            Some(&bob),
            "acme/hello/2.0.0",
            package("acme/hello", "2.0.0"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .json(
            Method::PUT,
            "/api/v1/namespaces/acme/members/bob",
            Some(&bob),
            Some(json!({ "role": "owner" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "role_required")
    );
    let (status, body) = app
        .json(
            Method::DELETE,
            "/api/v1/namespaces/acme/members/ada",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "conflict"));
}

async fn a_published_version_is_read_and_downloaded_with_cache_headers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let bytes = package("acme/hello", "1.0.0");
    let digest = Digest::of(&bytes).to_string();
    let (status, body) = app
        .publish(Some(&ada), "acme/hello/1.0.0", bytes.clone(), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    assert_eq!(body["version"]["digest"], digest.as_str());
    assert_eq!(body["version"]["publisher"], "ada");
    assert_eq!(body["version"]["manifest"]["plugin"]["name"], "acme/hello");

    let (status, plugin) = app
        .json(Method::GET, "/api/v1/plugins/acme/hello", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plugin["latest"], "1.0.0");
    assert_eq!(plugin["description"], "Says hello");
    let (status, version) = app
        .json(Method::GET, "/api/v1/plugins/acme/hello/1.0.0", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(version["size"], bytes.len() as i64);

    for path in [
        "/api/v1/plugins/acme/hello/1.0.0/download".to_string(),
        format!("/api/v1/blobs/{digest}"),
    ] {
        let response = app.request(Method::GET, &path, None).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers["etag"], format!("\"{digest}\"").as_str());
        assert_eq!(
            headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(headers["content-type"], "application/gzip");
        assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
        let response = app
            .request(Method::GET, &path, None)
            .header("if-none-match", format!("\"{digest}\""))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let response = app
            .request(Method::GET, &path, None)
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes 10-19/{}", bytes.len()).as_str()
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), &bytes[10..20]);
        let response = app
            .request(Method::GET, &path, None)
            .header("range", "bytes=999999-")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }
    let (status, body) = app
        .json(Method::GET, "/api/v1/blobs/sha256:nope", None, None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_digest")
    );
    let missing = format!("/api/v1/blobs/{}", Digest::of(b"missing"));
    let (status, body) = app.json(Method::GET, &missing, None, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "blob_not_found")
    );
    let (status, body) = app
        .json(Method::GET, "/api/v1/plugins/acme/hello/9.9.9", None, None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "version_not_found")
    );
    let (status, openapi) = app.json(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(openapi["paths"]["/api/v1/plugins/{namespace}/{name}/{version}"]["put"].is_object());
    // Every operation documents the answers any may give, in the error envelope: a malformed
    // parameter, a missing thing the path names, a token that does not authenticate, a budget.
    let delete_token = &openapi["paths"]["/api/v1/tokens/{id}"]["delete"]["responses"];
    for status in ["400", "401", "404", "429"] {
        assert_eq!(
            delete_token[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{status}: {delete_token}"
        );
    }
    let create_space = &openapi["paths"]["/api/v1/spaces"]["post"]["responses"];
    for status in ["415", "422"] {
        assert!(create_space[status].is_object(), "{status}: {create_space}");
    }
    // Limits the server enforces are in the document, so a client knows them beforehand.
    let per_page = openapi["paths"]["/api/v1/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "per_page")
        .unwrap()
        .clone();
    assert_eq!(per_page["schema"]["maximum"], 100, "{per_page}");
}

async fn versions_are_immutable_and_concurrent_publishes_create_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let bytes = package("acme/hello", "1.0.0");
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let request = app
                .request(Method::PUT, "/api/v1/plugins/acme/hello/1.0.0", Some(&ada))
                .body(bytes.clone());
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        7,
        "{statuses:?}"
    );
    // Other bytes for the same version: a different README changes the digest.
    let other = raw_archive(&[
        RawEntry::file("aerie.toml", manifest("acme/hello", "1.0.0").as_bytes()),
        RawEntry::file("plugin.wasm", &http_component(&[])),
        RawEntry::file("README.md", b"# Different"),
    ]);
    let (status, body) = app
        .publish(Some(&ada), "acme/hello/1.0.0", other, None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "version_exists")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("versions are immutable")
    );
    // The published blob, and the one the refused publish stored first, left for `aerie gc`.
    assert_eq!(app.stored_blobs(), 2);
}

async fn every_bad_package_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let manifest_bytes = manifest("acme/hello", "1.0.0");
    let component = http_component(&[]);
    let module = wat_module();
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let mut truncated = package("acme/hello", "1.0.0");
    truncated.truncate(truncated.len() / 2);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("gzip bomb", bomb, "package_expansion_ratio"),
        (
            "parent path",
            raw_archive(&[
                RawEntry::file("aerie.toml", manifest_bytes.as_bytes()),
                RawEntry::file("../x", b"x"),
            ]),
            "package_unsafe_path",
        ),
        (
            "absolute path",
            raw_archive(&[RawEntry::file("/etc/passwd", b"x")]),
            "package_unsafe_path",
        ),
        (
            "symlink",
            raw_archive(&[RawEntry::link(
                "README.md",
                tar::EntryType::Symlink,
                "/etc/passwd",
            )]),
            "package_link_entry",
        ),
        (
            "hard link",
            raw_archive(&[RawEntry::link(
                "README.md",
                tar::EntryType::Link,
                "aerie.toml",
            )]),
            "package_link_entry",
        ),
        (
            "duplicate",
            raw_archive(&[
                RawEntry::file("aerie.toml", manifest_bytes.as_bytes()),
                RawEntry::file("aerie.toml", manifest_bytes.as_bytes()),
            ]),
            "package_duplicate_entry",
        ),
        (
            "missing component",
            raw_archive(&[RawEntry::file("aerie.toml", manifest_bytes.as_bytes())]),
            "package_missing_file",
        ),
        (
            "core module",
            raw_archive(&[
                RawEntry::file("aerie.toml", manifest_bytes.as_bytes()),
                RawEntry::file("plugin.wasm", &module),
            ]),
            "component_core_module",
        ),
        (
            "random bytes",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "package_not_gzip",
        ),
        ("truncated", truncated, "package_truncated"),
        (
            "invalid manifest",
            raw_archive(&[
                RawEntry::file("aerie.toml", b"[plugin]\nname = \"acme/hello\"\n"),
                RawEntry::file("plugin.wasm", &component),
            ]),
            "manifest_invalid",
        ),
        (
            "unpermitted import",
            raw_archive(&[
                RawEntry::file("aerie.toml", manifest_bytes.as_bytes()),
                RawEntry::file(
                    "plugin.wasm",
                    &http_component(&["wasi:keyvalue/store@0.2.0-draft"]),
                ),
            ]),
            "component_import_not_permitted",
        ),
        (
            "version mismatch",
            package("acme/hello", "2.0.0"),
            "manifest_mismatch",
        ),
        (
            "name mismatch",
            package("acme/other", "1.0.0"),
            "manifest_mismatch",
        ),
    ];
    for (what, bytes, expected) in cases {
        let (status, body) = app
            .publish(Some(&ada), "acme/hello/1.0.0", bytes, None)
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{what}: {body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/hello/1.0.0",
            raw_archive(&[
                RawEntry::file("aerie.toml", b"[plugin]\nname = 3\n"),
                RawEntry::file("plugin.wasm", &component),
            ]),
            None,
        )
        .await;
    assert_eq!(code(&body), "manifest_invalid");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["error"]["details"]["problems"][0]["path"],
        "plugin.name"
    );
    let (status, _) = app
        .json(Method::GET, "/api/v1/plugins/acme/hello", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was published");
    assert_eq!(app.stored_blobs(), 0, "nothing was stored");
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/hello/one",
            package("acme/hello", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_version")
    );
}

fn wat_module() -> Vec<u8> {
    // The smallest core module: the magic number and version 1.
    b"\0asm\x01\0\0\0".to_vec()
}

async fn bodies_over_the_limit_are_refused_while_streaming(backend: Backend) {
    let app = TestApp::with_config(backend, |config| config.max_package_size = 1 << 20).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    // A declared length over the limit is refused before the body is read.
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/hello/1.0.0",
            vec![0x1f; (1 << 20) + 1],
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "package_too_large")
    );
    // A streamed body with no declared length is cut off once it passes the limit: the
    // client is stopped long before the 64 MiB it would send.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&sent);
    let chunks = futures::stream::iter(0..1024).then(move |_| {
        let counter = std::sync::Arc::clone(&counter);
        async move {
            counter.fetch_add(64 * 1024, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0x1f; 64 * 1024]))
        }
    });
    let response = app
        .request(Method::PUT, "/api/v1/plugins/acme/hello/1.0.0", Some(&ada))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    match response {
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let body: Value = response.json().await.unwrap();
            assert_eq!(code(&body), "package_too_large");
        }
        // The server may close the connection while the client is still sending.
        Err(err) => assert!(err.is_request() || err.is_body(), "{err}"),
    }
    assert!(
        sent < 16 << 20,
        "the server read {sent} bytes before refusing"
    );
    assert_eq!(app.stored_blobs(), 0);
}

use futures::StreamExt as _;

fn keys() -> (GeneratedKeys, SecretKey) {
    let keys = generate_keys(None).unwrap();
    let secret = SecretKey::parse(&keys.secret_text, None).unwrap();
    (keys, secret)
}

fn sign(bytes: &[u8], name: &str, version: &str, key: &SecretKey) -> String {
    sign_package(
        bytes,
        &name.parse().unwrap(),
        &version.parse().unwrap(),
        key,
    )
    .unwrap()
}

async fn signatures_are_checked_against_registered_keys(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", true).await;
    // A token made for publishing (a CI job's) cannot register keys or turn signatures off:
    // those are the owner's, by session or a token with the `owner` scope.
    let publisher = app
        .token("ada", "a-long-password", &["publish"], None)
        .await;
    let stranger_key = generate_keys(None).unwrap();
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/namespaces/acme/keys",
            json!({ "public_key": stranger_key.public_text }),
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/acme",
            json!({ "require_signature": false }),
        ),
    ] {
        let (status, answer) = app.json(method, path, Some(&publisher), Some(body)).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::FORBIDDEN, "token_scope"),
            "{path}: {answer}"
        );
    }
    let bytes = package("acme/hello", "1.0.0");
    let (status, body) = app
        .publish(Some(&ada), "acme/hello/1.0.0", bytes.clone(), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_required")
    );
    let (keys, secret) = keys();
    let signature = sign(&bytes, "acme/hello", "1.0.0", &secret);
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/hello/1.0.0",
            bytes.clone(),
            Some(&signature),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_key_unknown"),
        "{body}"
    );
    let (status, body) = app
        .json(
            Method::POST,
            "/api/v1/namespaces/acme/keys",
            Some(&ada),
            Some(json!({ "public_key": keys.public_text })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key_id"], keys.public.key_id().as_str());
    let (status, body) = app
        .json(
            Method::POST,
            "/api/v1/namespaces/acme/keys",
            Some(&ada),
            Some(json!({ "public_key": "RWQ not a key" })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_key_malformed")
    );
    // A signature over other bytes.
    let other = package("acme/hello", "1.0.1");
    let wrong = sign(&other, "acme/hello", "1.0.0", &secret);
    let (status, body) = app
        .publish(Some(&ada), "acme/hello/1.0.0", bytes.clone(), Some(&wrong))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_mismatch")
    );
    let response = app
        .request(Method::PUT, "/api/v1/plugins/acme/hello/1.0.0", Some(&ada))
        .header("x-aerie-signature", "%%% not base64")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/hello/1.0.0",
            bytes.clone(),
            Some(&signature),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["version"]["signing_key_id"],
        keys.public.key_id().as_str()
    );
    let text = app
        .request(
            Method::GET,
            "/api/v1/plugins/acme/hello/1.0.0/signature",
            None,
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, signature);
    // A revoked key signs nothing new.
    let (status, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/namespaces/acme/keys/{}", keys.public.key_id()),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let next = package("acme/hello", "1.1.0");
    let signature = sign(&next, "acme/hello", "1.1.0", &secret);
    let (status, body) = app
        .publish(Some(&ada), "acme/hello/1.1.0", next, Some(&signature))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_key_unknown")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

async fn yanked_versions_are_skipped_by_resolution_but_downloadable_by_version(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    for version in ["1.0.0", "1.1.0", "2.0.0-beta.1"] {
        let (status, _) = app
            .publish(
                Some(&ada),
                &format!("acme/hello/{version}"),
                package("acme/hello", version),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let resolve = |requirement: &str| {
        let path = format!("/api/v1/plugins/acme/hello/resolve?requirement={requirement}");
        let app = &app;
        async move { app.json(Method::GET, &path, None, None).await }
    };
    assert_eq!(resolve("^1").await.1["version"], "1.1.0");
    let (status, body) = app
        .json(
            Method::PUT,
            "/api/v1/plugins/acme/hello/1.1.0/yank",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["yanked"], true);
    assert_eq!(resolve("^1").await.1["version"], "1.0.0");
    let (status, body) = resolve("^1.1").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "no_matching_version")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("except yanked ones (1.1.0)"),
        "{body}"
    );
    let response = app
        .request(
            Method::GET,
            "/api/v1/plugins/acme/hello/1.1.0/download",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "an exact version stays downloadable"
    );
    let (_, plugin) = app
        .json(Method::GET, "/api/v1/plugins/acme/hello", None, None)
        .await;
    assert_eq!(plugin["latest"], "1.0.0");
    let (status, _) = app
        .json(
            Method::DELETE,
            "/api/v1/plugins/acme/hello/1.1.0/yank",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resolve("^1.1").await.1["version"], "1.1.0");
    let (status, body) = resolve("not-a-requirement").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_requirement")
    );
    let (status, body) = app
        .json(
            Method::PUT,
            "/api/v1/plugins/acme/hello/1.0.0/deprecation",
            Some(&ada),
            Some(json!({ "message": "use 1.1" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deprecated"], "use 1.1");
    let no_yank = app
        .token("ada", "a-long-password", &["publish"], None)
        .await;
    let (status, body) = app
        .json(
            Method::PUT,
            "/api/v1/plugins/acme/hello/1.0.0/yank",
            Some(&no_yank),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "token_scope")
    );
}

async fn names_differing_by_case_or_underscore_cannot_exist(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    for name in ["Acme", "ac_me", "-acme", ""] {
        let (status, body) = app
            .json(
                Method::POST,
                "/api/v1/namespaces",
                Some(&ada),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_namespace"),
            "{name:?}"
        );
    }
    app.namespace(&ada, "acme", false).await;
    for path in ["acme/Hello/1.0.0", "acme/hello_world/1.0.0"] {
        let (status, body) = app
            .publish(Some(&ada), path, package("acme/hello", "1.0.0"), None)
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_name"),
            "{path}"
        );
    }
}

async fn private_namespaces_look_missing_to_outsiders(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    let (status, _) = app
        .json(
            Method::POST,
            "/api/v1/namespaces",
            Some(&ada),
            Some(json!({ "name": "secret", "private": true, "require_signature": false })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .publish(
            Some(&ada),
            "secret/tool/1.0.0",
            package("secret/tool", "1.0.0"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let bob = app.user("bob").await;
    let missing = app
        .json(Method::GET, "/api/v1/namespaces/nothing-here", None, None)
        .await;
    for token in [None, Some(bob.as_str())] {
        let hidden = app
            .json(Method::GET, "/api/v1/namespaces/secret", token, None)
            .await;
        assert_eq!(hidden.0, missing.0);
        assert_eq!(code(&hidden.1), code(&missing.1));
        let (status, _) = app
            .json(
                Method::GET,
                "/api/v1/plugins/secret/tool/1.0.0/download",
                token,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = app
        .json(Method::GET, "/api/v1/plugins/secret/tool", Some(&ada), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // A host token (download scope only) downloads but does not read metadata.
    let host = app
        .token("ada", "a-long-password", &["download"], None)
        .await;
    let response = app
        .request(
            Method::GET,
            "/api/v1/plugins/secret/tool/1.0.0/download",
            Some(&host),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No shared cache may keep a private package, and a browser keeps it per credential.
    assert_eq!(
        response.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    assert_eq!(response.headers()["vary"], "Authorization, Cookie");
    let (status, _) = app
        .json(
            Method::GET,
            "/api/v1/plugins/secret/tool",
            Some(&host),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn downloads_are_counted_off_the_hot_path(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    app.publish(
        Some(&ada),
        "acme/hello/1.0.0",
        package("acme/hello", "1.0.0"),
        None,
    )
    .await;
    for _ in 0..3 {
        let response = app
            .request(
                Method::GET,
                "/api/v1/plugins/acme/hello/1.0.0/download",
                None,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Not counted: a conditional hit and a range from the middle.
    let digest = Digest::of(&package("acme/hello", "1.0.0")).to_string();
    app.request(
        Method::GET,
        "/api/v1/plugins/acme/hello/1.0.0/download",
        None,
    )
    .header("if-none-match", format!("\"{digest}\""))
    .send()
    .await
    .unwrap();
    app.request(
        Method::GET,
        "/api/v1/plugins/acme/hello/1.0.0/download",
        None,
    )
    .header("range", "bytes=5-")
    .send()
    .await
    .unwrap();
    // Stopping flushes the counts.
    let database_url = app.database_url.clone();
    app.stop().await;
    let db = aerie_db::Database::connect(&database_url).await.unwrap();
    let plugin = db.plugin("acme", "hello").await.unwrap().unwrap();
    assert_eq!(plugin.downloads, 3);
}

async fn the_audit_log_records_changes_for_administrators(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    app.publish(
        Some(&ada),
        "acme/hello/1.0.0",
        package("acme/hello", "1.0.0"),
        None,
    )
    .await;
    let (status, body) = app
        .json(Method::GET, "/api/v1/audit", Some(&ada), None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "admin_required")
    );
    let admin = app.admin().await;
    let (status, entries) = app
        .json(
            Method::GET,
            "/api/v1/audit?target=plugin:acme/",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "version.publish");
    assert_eq!(entries[0]["actor"], "ada");
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    assert!(entries[0]["token_id"].is_i64());

    // By actor and by time: ada's publish, within the hour around it and not after it.
    let published_at = entries[0]["at"].as_str().unwrap().to_string();
    let by = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let (status, entries) = app
                .json(
                    Method::GET,
                    &format!("/api/v1/audit?{query}"),
                    Some(admin),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {entries}");
            entries
                .as_array()
                .unwrap()
                .iter()
                .map(|entry| entry["action"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        by("actor=ada".into())
            .await
            .contains(&"version.publish".to_string())
    );
    assert!(by("actor=nobody".into()).await.is_empty());
    assert!(by("actor=ada&action=version.publish".into()).await.len() == 1);
    assert_eq!(
        by(format!(
            "actor=ada&action=version.publish&since={published_at}"
        ))
        .await,
        ["version.publish"]
    );
    assert!(
        by(format!(
            "actor=ada&action=version.publish&until={published_at}"
        ))
        .await
        .is_empty()
    );
    assert!(by("since=2999-01-01T00:00:00Z".into()).await.is_empty());
    for (query, expected) in [
        ("since=yesterday", "invalid_time"),
        ("until=2026-13-45T00:00:00Z", "invalid_time"),
        ("limit=0", "invalid_limit"),
        ("limit=abc", "invalid_query"),
    ] {
        let (status, body) = app
            .json(
                Method::GET,
                &format!("/api/v1/audit?{query}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{query}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_path_and_query_parameters_are_answered_in_the_error_envelope() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    for (method, path, expected) in [
        (Method::GET, "/api/v1/search?page=abc", "invalid_query"),
        (
            Method::GET,
            "/api/v1/search?certified=maybe",
            "invalid_query",
        ),
        (
            Method::DELETE,
            "/api/v1/tokens/not-a-number",
            "invalid_path_parameter",
        ),
        (
            Method::DELETE,
            "/api/v1/spaces/team/installations/acme/hello?keep_data=maybe",
            "invalid_query",
        ),
        (Method::GET, "/api/v1/audit?limit=abc", "invalid_query"),
    ] {
        let (status, body) = app.json(method.clone(), path, Some(&admin), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{method} {path}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let (_, body) = app
        .json(Method::GET, "/api/v1/search?page=abc", None, None)
        .await;
    insta::assert_json_snapshot!(body, @r#"
    {
      "error": {
        "code": "invalid_query",
        "message": "a query parameter is not valid: page: invalid digit found in string"
      }
    }
    "#);
    let (_, body) = app
        .json(
            Method::DELETE,
            "/api/v1/tokens/not-a-number",
            Some(&admin),
            None,
        )
        .await;
    insta::assert_json_snapshot!(body, @r#"
    {
      "error": {
        "code": "invalid_path_parameter",
        "message": "a path parameter is not valid: Invalid URL: Cannot parse `not-a-number` to a `i64`"
      }
    }
    "#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_must_be_a_json_object_not_an_array_of_its_fields() {
    let app = TestApp::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let (status, _) = app
        .json(
            Method::POST,
            "/api/v1/namespaces",
            Some(&admin),
            Some(serde_json::json!({"name": "acme", "require_signature": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // serde reads a struct from a sequence of its fields; every field here is optional.
    let (status, body) = app
        .json(
            Method::PATCH,
            "/api/v1/namespaces/acme",
            Some(&admin),
            Some(serde_json::json!([true, true])),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        "{body}"
    );
    let (_, body) = app
        .json(Method::GET, "/api/v1/namespaces/acme", Some(&admin), None)
        .await;
    assert_eq!(body["private"], false, "nothing changed: {body}");
    // Nested fields still name their path.
    let (_, body) = app
        .json(
            Method::PATCH,
            "/api/v1/namespaces/acme",
            Some(&admin),
            Some(serde_json::json!({"private": "yes"})),
        )
        .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("private")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_envelope_is_one_shape() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (status, body) = app.json(Method::GET, "/api/v1/nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_json_snapshot!(body, @r#"
    {
      "error": {
        "code": "no_route",
        "message": "there is nothing at this path"
      }
    }
    "#);
    let (status, _) = app.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_backed_registry_stores_and_serves_packages() {
    let server = aerie_test_support::s3();
    let bucket = server.fresh_bucket();
    let endpoint = server.endpoint();
    let app = TestApp::with_config(Backend::Sqlite, |config| {
        config.blobs.store = "s3".into();
        config.blobs.s3_bucket = Some(bucket);
        config.blobs.s3_endpoint = Some(endpoint);
        config.blobs.s3_allow_http = true;
        config.blobs.s3_access_key_id = Some("test".into());
        config.blobs.s3_secret_access_key = Some("test".into());
    })
    .await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let bytes = package("acme/hello", "1.0.0");
    let (status, _) = app
        .publish(Some(&ada), "acme/hello/1.0.0", bytes.clone(), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let downloaded = app
        .request(
            Method::GET,
            "/api/v1/plugins/acme/hello/1.0.0/download",
            None,
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.as_ref(), bytes.as_slice());
    assert_eq!(app.stored_blobs(), 0, "nothing went to the local directory");
}

/// A package whose manifest has its own description, tags and categories.
fn described_package(
    name: &str,
    version: &str,
    description: &str,
    tags: &[&str],
    category: &str,
) -> Vec<u8> {
    let manifest = aerie_test_support::archive::manifest(name, version)
        .replace(
            "description = \"Says hello\"",
            &format!("description = \"{description}\"\ntags = {tags:?}"),
        )
        .replace(
            "categories = [\"other\"]",
            &format!("categories = [\"{category}\"]"),
        );
    raw_archive(&[
        RawEntry::file("aerie.toml", manifest.as_bytes()),
        RawEntry::file("plugin.wasm", &http_component(&[])),
    ])
}

async fn published_plugins_are_searchable_at_once_and_the_index_follows_changes(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let plugins = [
        (
            "acme/hello",
            "Greets whoever calls it",
            vec!["example"],
            "developer-tools",
        ),
        (
            "acme/postgres-sync",
            "Copies tables into PostgreSQL",
            vec!["database"],
            "data-integration",
        ),
        ("acme/vault", "Keeps secrets", vec!["secrets"], "security"),
    ];
    for (name, description, tags, category) in &plugins {
        let (status, body) = app
            .publish(
                Some(&ada),
                &format!("{name}/1.0.0"),
                described_package(name, "1.0.0", description, tags, category),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let search = async |app: &TestApp, query: &str| {
        let (status, body) = app
            .json(Method::GET, &format!("/api/v1/search?{query}"), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body
    };
    let names = |body: &Value| -> Vec<String> {
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Searchable as soon as the publish answered; typos and prefixes forgiven.
    assert_eq!(names(&search(&app, "q=hello").await)[0], "acme/hello");
    assert_eq!(
        names(&search(&app, "q=postgers").await),
        ["acme/postgres-sync"]
    );
    assert_eq!(names(&search(&app, "q=vau").await), ["acme/vault"]);
    let all = search(&app, "").await;
    assert_eq!(all["total"], 3);
    assert!(all["took_ms"].as_f64().unwrap() >= 0.0);
    let categories = &all["facets"]["categories"];
    assert_eq!(categories.as_array().unwrap().len(), 3, "{all}");
    assert_eq!(
        names(&search(&app, "category=security").await),
        ["acme/vault"]
    );

    // Yanked, it stays findable but not installable.
    let (status, _) = app
        .json(
            Method::PUT,
            "/api/v1/plugins/acme/vault/1.0.0/yank",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let vault = search(&app, "q=vault").await;
    assert_eq!(vault["hits"][0]["installable"], false);
    // A new version is searchable at once too.
    let (status, _) = app
        .publish(
            Some(&ada),
            "acme/vault/1.1.0",
            described_package(
                "acme/vault",
                "1.1.0",
                "Keeps secrets in a safe",
                &["secrets"],
                "security",
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let vault = search(&app, "q=safe").await;
    assert_eq!(
        (
            vault["hits"][0]["version"].as_str(),
            vault["hits"][0]["installable"].as_bool()
        ),
        (Some("1.1.0"), Some(true))
    );

    // A namespace made private leaves search at once; made public, it is back.
    for (private, expected) in [(true, 0), (false, 3)] {
        let (status, body) = app
            .json(
                Method::PATCH,
                "/api/v1/namespaces/acme",
                Some(&ada),
                Some(json!({ "private": private })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            search(&app, "").await["total"],
            expected,
            "private: {private}"
        );
    }

    // Bad parameters are named.
    for (query, code_expected) in [
        ("sort=loudest", "invalid_sort"),
        ("per_page=0", "invalid_page_size"),
        ("per_page=101", "invalid_page_size"),
        ("page=0", "invalid_page"),
        ("page=999999", "invalid_page"),
    ] {
        let (status, body) = app
            .json(Method::GET, &format!("/api/v1/search?{query}"), None, None)
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, code_expected),
            "{query}"
        );
    }

    // The index on disk survives a restart; deleted, it is rebuilt with the same answers.
    let before = names(&search(&app, "q=secrets&sort=downloads").await);
    app.restart().await;
    assert_eq!(
        names(&search(&app, "q=secrets&sort=downloads").await),
        before
    );
    app.stop().await;
    std::fs::remove_dir_all(app.data_dir.path().join("search")).unwrap();
    app.restart().await;
    assert_eq!(
        names(&search(&app, "q=secrets&sort=downloads").await),
        before
    );
    assert_eq!(search(&app, "").await["total"], 3);
    // Over another (empty) database the index is stale: it is rebuilt, not trusted.
    app.stop().await;
    app.database_url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            app.data_dir.path().join("other.db").display()
        ),
        Backend::Postgres => aerie_test_support::postgres().fresh_database(),
    };
    app.restart().await;
    assert_eq!(search(&app, "").await["total"], 0);
}

async fn reviews_are_one_per_user_and_the_rating_follows_every_change(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    let bob = app.user("bob").await;
    app.namespace(&ada, "acme", false).await;
    for name in ["acme/hello", "acme/other"] {
        let (status, _) = app
            .publish(
                Some(&ada),
                &format!("{name}/1.0.0"),
                package(name, "1.0.0"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mine = "/api/v1/plugins/acme/hello/reviews/mine";
    let review = async |token: &str, stars: i64, text: &str| {
        app.json(
            Method::PUT,
            mine,
            Some(token),
            Some(json!({ "stars": stars, "text": text })),
        )
        .await
    };
    let reviews = async || {
        app.json(
            Method::GET,
            "/api/v1/plugins/acme/hello/reviews",
            None,
            None,
        )
        .await
        .1
    };
    assert_eq!(reviews().await["ratings"], 0);

    assert_eq!(
        review(&ada, 5, "Works <b>great</b>").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        review(
            &bob,
            2,
            "<script>alert(1)</script><a href=\"javascript:x\">x</a>"
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let listed = reviews().await;
    assert_eq!(
        (listed["rating"].as_f64(), listed["ratings"].as_i64()),
        (Some(3.5), Some(2))
    );
    // Markup in a review is shown, never run.
    let bobs = &listed["reviews"][0];
    assert_eq!(bobs["user"], "bob");
    let html = bobs["text_html"].as_str().unwrap();
    assert!(
        !html.contains('<') && !html.contains('>') && html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(bobs["text"].as_str().unwrap().starts_with("<script>"));

    // One per user: a second review replaces the first.
    assert_eq!(review(&ada, 3, "Fine").await.0, StatusCode::NO_CONTENT);
    let listed = reviews().await;
    assert_eq!(
        (listed["rating"].as_f64(), listed["ratings"].as_i64()),
        (Some(2.5), Some(2))
    );
    // Search sorts by it at once.
    let (_, found) = app
        .json(Method::GET, "/api/v1/search?sort=rating", None, None)
        .await;
    assert_eq!(found["hits"][0]["name"], "acme/hello");
    assert_eq!(found["hits"][0]["rating"].as_f64(), Some(2.5));
    assert_eq!(found["hits"][0]["ratings"], 2);

    let (status, _) = app.json(Method::DELETE, mine, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = reviews().await;
    assert_eq!(
        (listed["rating"].as_f64(), listed["ratings"].as_i64()),
        (Some(3.0), Some(1))
    );
    let (status, body) = app.json(Method::DELETE, mine, Some(&bob), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "review_not_found")
    );

    for (stars, text, expected) in [
        (0, "x", "invalid_stars"),
        (6, "x", "invalid_stars"),
        (4, &"x".repeat(4001)[..], "review_too_long"),
    ] {
        let (status, body) = review(&ada, stars, text).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, expected));
    }
    let (status, body) = app
        .json(Method::PUT, mine, None, Some(json!({ "stars": 4 })))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "auth_required")
    );
    let (status, body) = app
        .json(
            Method::PUT,
            "/api/v1/plugins/acme/absent/reviews/mine",
            Some(&ada),
            Some(json!({ "stars": 4 })),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "plugin_not_found")
    );
    // Nothing else changed: the other plugin is unrated, the rating unchanged.
    assert_eq!(
        app.json(
            Method::GET,
            "/api/v1/plugins/acme/other/reviews",
            None,
            None
        )
        .await
        .1["ratings"],
        0
    );
    assert_eq!(reviews().await["rating"].as_f64(), Some(3.0));
}

async fn a_plugin_page_has_a_sanitised_readme_permissions_in_words_and_its_dependents(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    let readme = "# Base\n\n<script>alert(1)</script>\n\n[docs](https://example.com) \
                  [bad](javascript:alert(1)) <a href=\"#\" onclick=\"alert(2)\">x</a>\n";
    let base = raw_archive(&[
        RawEntry::file(
            "aerie.toml",
            aerie_test_support::archive::manifest("acme/base", "1.0.0").as_bytes(),
        ),
        RawEntry::file("plugin.wasm", &http_component(&[])),
        RawEntry::file("README.md", readme.as_bytes()),
    ]);
    let (status, body) = app.publish(Some(&ada), "acme/base/1.0.0", base, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let app_manifest = aerie_test_support::archive::manifest("acme/app", "1.0.0").replace(
        "[[provides.routes]]",
        "[dependencies]\n\"acme/base\" = \"^1\"\n\n[permissions]\noutbound = [\"api.example.com\"]\n\n[[provides.routes]]",
    );
    let dependent = raw_archive(&[
        RawEntry::file("aerie.toml", app_manifest.as_bytes()),
        RawEntry::file("plugin.wasm", &http_component(&[])),
    ]);
    let (status, body) = app
        .publish(Some(&ada), "acme/app/1.0.0", dependent, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, page) = app
        .json(Method::GET, "/api/v1/plugins/acme/base/page", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let html = page["readme_html"].as_str().unwrap();
    for forbidden in ["<script", "onclick", "javascript:"] {
        assert!(!html.contains(forbidden), "{forbidden} in {html}");
    }
    assert!(
        html.contains("<h1>Base</h1>") && html.contains("https://example.com"),
        "{html}"
    );
    assert_eq!(page["dependents"], json!(["acme/app"]));
    // The page says what consent will ask: here only its one public route.
    assert_eq!(
        page["permissions"]["sentences"],
        json!(["answer anyone on /*"])
    );

    let (_, page) = app
        .json(Method::GET, "/api/v1/plugins/acme/app/page", None, None)
        .await;
    assert_eq!(
        page["dependencies"],
        json!([{ "name": "acme/base", "requirement": "^1" }])
    );
    assert_eq!(
        page["permissions"]["sentences"],
        json!([
            "send HTTP requests to api.example.com",
            "answer anyone on /*"
        ])
    );
    assert_eq!(page["readme_html"], Value::Null);
    assert_eq!(page["versions"][0]["version"], "1.0.0");
    let (status, body) = app
        .json(Method::GET, "/api/v1/plugins/acme/absent/page", None, None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "plugin_not_found")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_naming_the_operators_network_is_refused_unless_the_operator_allows_it() {
    let with_outbound = |hosts: &str| {
        let text = manifest("acme/probe", "1.0.0").replace(
            "[[provides.routes]]",
            &format!("[permissions]\noutbound = [{hosts}]\n\n[[provides.routes]]"),
        );
        raw_archive(&[
            RawEntry::file("aerie.toml", text.as_bytes()),
            RawEntry::file("plugin.wasm", &http_component(&[])),
        ])
    };
    let app = TestApp::start(Backend::Sqlite).await;
    let ada = app.user("ada").await;
    app.namespace(&ada, "acme", false).await;
    for hosts in [
        r#""169.254.169.254""#,
        r#""api.example.com", "127.0.0.1:6379""#,
        r#""[::1]""#,
        r#""localhost:5432""#,
        r#""db.localhost""#,
    ] {
        let (status, body) = app
            .publish(Some(&ada), "acme/probe/1.0.0", with_outbound(hosts), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{hosts}: {body}");
        assert_eq!(code(&body), "outbound_host_local", "{hosts}: {body}");
    }
    let (status, body) = app
        .publish(
            Some(&ada),
            "acme/probe/1.0.0",
            with_outbound(r#""api.example.com""#),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let open = TestApp::with_config(Backend::Sqlite, |config| {
        config.outbound.allow_local_hosts = true;
    })
    .await;
    let ada = open.user("ada").await;
    open.namespace(&ada, "acme", false).await;
    let (status, body) = open
        .publish(
            Some(&ada),
            "acme/probe/1.0.0",
            with_outbound(r#""10.0.0.7:8080""#),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_see_their_sessions_change_their_password_and_sign_out_everywhere() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.user("ada").await;
    let sign_in = |password: &'static str, agent: &'static str| {
        let request = app
            .request(Method::POST, "/api/v1/sessions", None)
            .header("user-agent", agent)
            .json(&json!({ "username": "ada", "password": password }));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let cookie = response.headers().get("set-cookie").map(|value| {
                value
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string()
            });
            (status, cookie)
        }
    };
    let (_, laptop) = sign_in("a-long-password", "laptop").await;
    let (_, phone) = sign_in("a-long-password", "phone").await;
    let (laptop, phone) = (laptop.unwrap(), phone.unwrap());
    let with = |cookie: &str, method: Method, path: &str| {
        app.request(method, path, None)
            .header("cookie", cookie.to_string())
            .header("sec-fetch-site", "same-origin")
    };
    let sessions: Value = with(&laptop, Method::GET, "/api/v1/me/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "laptop");
    assert_eq!(current[0]["ip"], "127.0.0.1");

    // A new password needs the current one, and ends every other session.
    let response = with(&laptop, Method::PUT, "/api/v1/me/password")
        .json(&json!({ "current_password": "wrong-password", "new_password": "another-long-one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = with(&laptop, Method::PUT, "/api/v1/me/password")
        .json(&json!({ "current_password": "a-long-password", "new_password": "another-long-one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = |cookie: &str| with(cookie, Method::GET, "/api/v1/me").send();
    assert_eq!(me(&phone).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&laptop).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        sign_in("a-long-password", "x").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, tablet) = sign_in("another-long-one", "tablet").await;
    assert_eq!(status, StatusCode::OK);

    // Signing out everywhere ends this session too.
    let response = with(&laptop, Method::DELETE, "/api/v1/me/sessions")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&laptop).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&tablet.unwrap()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Every change is in the audit log.
    let admin = app.admin().await;
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/v1/audit?action=user.password",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
}
