//! The trust boundaries, each tried as an attacker would: a hostile plugin's page in a real
//! browser, requests that try to carry Aerie's credentials to a plugin or take its cookies,
//! encoded paths that try to step around a guard, outsiders probing what a space runs, and
//! clients that hold connections open. Each test performs the attack and fails if it works.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::spaces::{ADMIN_PASSWORD, Backend, TestApp};

/// A space `name` owned by a new user, with `testing/hostile` installed; returns the owner's
/// token.
async fn hostile_space(app: &TestApp, owner: &str, name: &str) -> String {
    let token = app.user(owner).await;
    app.space(&token, name).await;
    let (status, body) = app
        .install(&token, name, json!({ "plugin": "testing/hostile" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    token
}

fn server(app: &TestApp) -> &aerie_server::Server {
    app.server.as_ref().expect("the server runs")
}

/// One HTTP/1.1 request written byte for byte (no client library normalises the path), on a
/// connection to the server: its status and body.
fn raw_request(app: &TestApp, host: &str, method: &str, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server(app).address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The `Host` of `space`'s plugin origin.
fn origin_host(app: &TestApp, space: &str) -> String {
    server(app)
        .plugin_origin(space)
        .trim_start_matches("http://")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_page_cannot_act_with_a_visitors_aerie_credentials() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("hostile", "0.1.0").await;
    app.publish("hello", "0.1.0").await;
    hostile_space(&app, "mallory", "evil").await;
    app.space(&app.admin, "victim").await;
    let (status, body) = app
        .install(&app.admin, "victim", json!({ "plugin": "examples/hello" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let evil_origin = server(&app).plugin_origin("evil");
    let input = json!({
        "api": app.base,
        "evil": "/s/evil/testing/hostile",
        "other": format!("{}/examples/hello/secret", server(&app).plugin_origin("victim")),
        "username": "admin",
        "password": ADMIN_PASSWORD,
    });
    let output = tokio::task::spawn_blocking(move || {
        aerie_test_support::browser::run("hostile-plugin.mjs", &input)
    })
    .await
    .unwrap();

    assert_eq!(output["login"], 200, "{output}");
    // The page ran, on the evil space's own origin, reached through the API origin's redirect.
    let seen = &output["seen"];
    assert_eq!(seen["origin"], evil_origin.as_str(), "{output}");
    assert!(
        output["landed"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{evil_origin}/testing/hostile/page")),
        "{output}"
    );
    // The page sees no Aerie cookie, cannot call the API with the visitor's session, and
    // cannot read or script another space's plugin.
    assert!(
        !seen["cookies_before"].as_str().unwrap().contains("aerie"),
        "{output}"
    );
    for attack in [
        "mint_token",
        "read_account",
        "read_other_space",
        "script_other_space",
    ] {
        assert!(
            seen[attack].as_str().unwrap().starts_with("blocked"),
            "{attack} was not blocked: {output}"
        );
    }
    let (status, tokens) = app
        .call(Method::GET, "/api/v1/tokens", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().all(|name| !name.starts_with("stolen")),
        "the plugin page minted a token: {names:?}"
    );
    // The visitor is still signed in as themselves: the plugin could not swap the session.
    assert_eq!(output["me"]["status"], 200, "{output}");
    assert_eq!(
        output["me"]["body"]["user"]["username"], "admin",
        "{output}"
    );
    // (The page may plant cookies of that name on its own host: the browser never sends them
    // to the API's origin, and the plugin origin drops them before the plugin sees them.)
    let sessions: Vec<&Value> = output["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|cookie| cookie["domain"] == "127.0.0.1")
        .collect();
    assert_eq!(sessions.len(), 1, "{output}");
    assert_eq!(sessions[0]["name"], "aerie_session", "{output}");
    assert_ne!(sessions[0]["value"], "planted-by-plugin", "{output}");
    assert_eq!(sessions[0]["httpOnly"], true, "{output}");
    // The member who came through Aerie reaches a guarded route, as themselves; a stranger
    // following the same link gets the answer for a plugin that is not there.
    assert_eq!(output["member"]["status"], 200, "{output}");
    let echoed: Value = serde_json::from_str(output["member"]["body"].as_str().unwrap()).unwrap();
    let headers = echoed["headers"].as_array().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str().unwrap().to_string())
    };
    assert_eq!(header("x-aerie-user").as_deref(), Some("admin"), "{echoed}");
    assert_eq!(header("x-aerie-role").as_deref(), Some("owner"), "{echoed}");
    assert!(
        header("cookie").is_none_or(|cookie| !cookie.contains("aerie")),
        "{echoed}"
    );
    assert_eq!(output["stranger_member"]["status"], 404, "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_never_receives_aerie_credentials_and_cannot_set_aerie_cookies() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("hostile", "0.1.0").await;
    let owner = hostile_space(&app, "owner", "team").await;
    let echo = |response: Value| -> Vec<(String, String)> {
        response["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_string(),
                    pair[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let url = app.url("/s/team/testing/hostile/echo");
    for (authorization, forwarded) in [
        (format!("Bearer {}", app.admin), None),
        (format!("Bearer {owner}"), None),
        (
            "Bearer the-plugins-own-token".to_string(),
            Some("Bearer the-plugins-own-token"),
        ),
    ] {
        let response: Value = app
            .client
            .get(&url)
            .header("authorization", &authorization)
            .header(
                "cookie",
                "aerie_session=stolen; app=1; __Host-aerie_plugin=x",
            )
            .header("x-aerie-user", "admin")
            .header("x-aerie-role", "owner")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let headers = echo(response);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("authorization"), forwarded, "{headers:?}");
        assert_eq!(get("cookie"), Some("app=1"), "{headers:?}");
        assert_eq!(get("x-aerie-user"), None, "{headers:?}");
        assert_eq!(get("x-aerie-role"), None, "{headers:?}");
    }
    // An Aerie token that does not authenticate is refused the same way whether the plugin is
    // there or not.
    let forged = format!("Bearer aerie_{}", "0".repeat(64));
    let mut answers = Vec::new();
    for path in [
        "/s/team/testing/hostile/echo",
        "/s/team/testing/absent/echo",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("authorization", &forged)
            .send()
            .await
            .unwrap();
        answers.push((response.status(), response.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0], answers[1]);

    let response = app
        .client
        .get(app.url("/s/team/testing/hostile/set-cookie"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["own=1; Path=/; HttpOnly"]);
    for name in ["clear-site-data", "refresh", "alt-svc"] {
        assert!(!response.headers().contains_key(name), "{name}");
    }
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // The API's origin serves no plugin content: it only points to the plugin origin.
    let response = app
        .client
        .get(format!("{}/s/team/testing/hostile/echo?x=1", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        response.headers()["location"],
        format!(
            "{}/testing/hostile/echo?x=1",
            server(&app).plugin_origin("team")
        )
        .as_str()
    );
    assert!(response.text().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_characters_cannot_talk_a_request_around_a_guard() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("hostile", "0.1.0").await;
    let owner = hostile_space(&app, "owner", "team").await;
    let host = origin_host(&app, "team");
    let app = std::sync::Arc::new(app);
    let raw = |method: &'static str, target: String| {
        let app = std::sync::Arc::clone(&app);
        let host = host.clone();
        async move {
            tokio::task::spawn_blocking(move || raw_request(&app, &host, method, &target))
                .await
                .unwrap()
        }
    };
    // The guard holds for the plain path: an outsider is told nothing is there.
    let (status, body) = raw("POST", "/testing/hostile/items/1/delete".into()).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("plugin_not_running"), "{body}");
    // What would reach the plugin as another path than the guard saw is refused.
    for attack in [
        "/items/1/delete%3F",
        "/items/1/delete%3f",
        "/items/1/delete%23",
        "/items/1%2Fdelete",
        "/items%2F1/delete",
        "/items/1/delete%00",
        "/items/1/delete%0d%0a",
        "/items/2/../1/delete",
        "/items/2/%2e%2e/1/delete",
        "/items/./1/delete",
        "/items//1/delete",
        "/items/1\\delete",
    ] {
        let (status, body) = raw("POST", format!("/testing/hostile{attack}")).await;
        assert_eq!(status, 400, "{attack}: {body}");
        assert!(body.contains("invalid_path"), "{attack}: {body}");
        assert!(!body.contains("deleted"), "{attack}: {body}");
    }
    // Encodings that mean the same path route as that path: to the guard.
    for same in ["/items/1/%64elete", "/items/%31/delete", "/items/1/delete/"] {
        let (status, body) = raw("POST", format!("/testing/hostile{same}")).await;
        assert_eq!(status, 404, "{same}: {body}");
        assert!(!body.contains("deleted"), "{same}: {body}");
    }
    // The owner passes the guard, and the plugin gets the path as routed.
    let response = app
        .client
        .post(app.url("/s/team/testing/hostile/items/%31/delete"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "deleted 1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outsider_gets_the_same_answers_whether_or_not_a_plugin_is_installed() {
    let app = TestApp::start_with(Backend::Sqlite, |config| config.plugin_rate_limit = 2).await;
    app.publish("hostile", "0.1.0").await;
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    app.space(&owner, "team").await;
    let guarded = [
        (Method::POST, "/s/team/testing/hostile/items/1/delete"),
        (Method::GET, "/s/team/testing/hostile/members/x"),
        (Method::POST, "/s/team/testing/hostile/members/x"),
        (Method::DELETE, "/s/team/testing/hostile/members"),
        (Method::OPTIONS, "/s/team/testing/hostile/members/a/b"),
    ];
    let forged = format!("aerie_{}", "0".repeat(64));
    let callers = [
        None,
        Some(stranger.as_str()),
        Some("not-an-aerie-token"),
        Some(forged.as_str()),
    ];
    let answers = async || {
        let mut answers = Vec::new();
        // Many times over: a rate limit answering before the guard would show.
        for _ in 0..3 {
            for (method, path) in &guarded {
                for caller in callers {
                    let mut request = app.client.request(method.clone(), app.url(path));
                    if let Some(token) = caller {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.unwrap();
                    answers.push((
                        format!("{method} {path} {caller:?}"),
                        response.status(),
                        response.text().await.unwrap(),
                    ));
                }
            }
        }
        answers
    };
    let before = answers().await;
    let (status, body) = app
        .install(&owner, "team", json!({ "plugin": "testing/hostile" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let after = answers().await;
    assert_eq!(before, after);
    assert!(
        after.iter().all(
            |(_, status, _)| [StatusCode::NOT_FOUND, StatusCode::UNAUTHORIZED].contains(status)
        ),
        "{after:?}"
    );
    // A member is told what is wrong, and the plugin answers them.
    let (status, _) = app
        .call(
            Method::GET,
            "/s/team/testing/hostile/members/x",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The rate limit was on all along: public requests in a burst meet it.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, _) = app
            .call(Method::GET, "/s/team/testing/hostile/echo", None, None)
            .await;
        statuses.push(status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// Reads from `stream` until the server closes it, for at most `bound`; whether it closed.
fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + bound;
    let mut buffer = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_idle_clients_are_cut_off_and_others_are_served() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.connections.max_connections = 4;
        config.connections.header_timeout_seconds = 1;
        config.connections.idle_timeout_seconds = 2;
        config.connections.body_timeout_seconds = 3;
    })
    .await;
    let address = server(&app).address();
    let attack = tokio::task::spawn_blocking(move || {
        // Every connection the server allows, each sending its head a byte at a time.
        let mut slow: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut stream = TcpStream::connect(address).unwrap();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
                stream
            })
            .collect();
        let started = Instant::now();
        let mut cut = vec![false; slow.len()];
        while cut.iter().any(|cut| !cut) && started.elapsed() < Duration::from_secs(30) {
            for (stream, cut) in slow.iter_mut().zip(cut.iter_mut()) {
                if !*cut
                    && (stream.write_all(b"X").is_err()
                        || closed_within(stream, Duration::from_millis(100)))
                {
                    *cut = true;
                }
            }
        }
        cut
    });
    // While they hold every slot, an honest client waits, then is served once they are cut.
    let honest = tokio::time::timeout(
        Duration::from_secs(60),
        app.client.get(format!("{}/healthz", app.base)).send(),
    )
    .await
    .expect("an honest client is served once the slow ones are cut off")
    .unwrap();
    assert_eq!(honest.status(), StatusCode::OK);
    assert!(
        attack.await.unwrap().iter().all(|cut| *cut),
        "a client trickling its request head was never cut off"
    );

    let body_attack = tokio::task::spawn_blocking(move || {
        // An idle connection, and a body that trickles in under the idle timeout.
        let mut idle = TcpStream::connect(address).unwrap();
        let mut trickle = TcpStream::connect(address).unwrap();
        trickle
            .write_all(
                b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
            )
            .unwrap();
        let started = Instant::now();
        let mut trickle_cut = false;
        while !trickle_cut && started.elapsed() < Duration::from_secs(30) {
            trickle_cut = trickle.write_all(b" ").is_err()
                || closed_within(&mut trickle, Duration::from_millis(500));
        }
        (
            trickle_cut,
            closed_within(&mut idle, Duration::from_secs(30)),
        )
    });
    let (trickle_cut, idle_cut) = body_attack.await.unwrap();
    assert!(trickle_cut, "a body trickling in was never cut off");
    assert!(idle_cut, "an idle connection was never closed");
}

/// The most memory this process has held, in bytes (`VmHWM`).
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("VmHWM in /proc/self/status")
        * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_bad_logins_is_bounded_and_the_real_user_gets_in_after_the_backoff() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        // Behind one proxy: each attacker request claims another address, so the per-address
        // limit alone does not stop them.
        config.trusted_proxies = 1;
        config.limits.logins_per_minute = 20;
        config.limits.login_failures_before_backoff = 3;
        config.limits.login_backoff_max_seconds = 2;
        config.limits.password_hashes = 2;
        config.limits.password_queue = 4;
    })
    .await;
    app.user("victim").await;
    let login = |address: String, password: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/sessions", app.base);
        async move {
            let response = client
                .post(url)
                .header("x-forwarded-for", address)
                .json(&json!({ "username": "victim", "password": password }))
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
                retry_after,
            )
        }
    };
    let before = peak_memory();
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..500u32 {
        flood.spawn(login(
            format!("10.9.{}.{}", n / 250, n % 250 + 1),
            "wrong-password",
        ));
    }
    let answers = flood.join_all().await;
    // Each password check holds 19 MiB: 500 at once would take some 9 GiB.
    let grown = peak_memory().saturating_sub(before);
    assert!(
        grown < 2 << 30,
        "the flood grew the process by {} MiB",
        grown >> 20
    );
    let count = |code: &str| answers.iter().filter(|answer| answer.1 == code).count();
    let failed = count("login_failed");
    assert!(failed >= 1, "{answers:?}");
    // Most are turned away before any hashing: the pool is full, or the account is waiting.
    assert!(
        count("password_checks_busy") + count("login_backoff") > answers.len() / 2,
        "too few were turned away: {answers:?}"
    );
    assert_eq!(
        failed + count("password_checks_busy") + count("login_backoff"),
        answers.len(),
        "{answers:?}"
    );
    for (status, code, retry_after) in &answers {
        if code != "login_failed" {
            assert!(
                [
                    StatusCode::TOO_MANY_REQUESTS,
                    StatusCode::SERVICE_UNAVAILABLE
                ]
                .contains(status),
                "{status} {code}"
            );
            assert!(retry_after.is_some(), "{code} without Retry-After");
        }
    }
    // Every failure that was checked is in the audit log, with the address it came from.
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=session.login_failed&limit=1000",
            Some(&app.admin),
            None,
        )
        .await;
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), failed, "{audit}");
    assert!(
        rows.iter()
            .all(|row| row["ip"].as_str().unwrap().starts_with("10.9."))
    );

    // One address that keeps trying meets the per-address limit.
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(login("192.0.2.66".into(), "wrong-password").await);
    }
    assert!(
        statuses.iter().any(|(_, code, _)| code == "rate_limited"),
        "{statuses:?}"
    );

    // The account waits out its backoff, then its owner signs in.
    let mut answer = login("198.51.100.1".into(), "a-long-password").await;
    for _ in 0..10 {
        if answer.1 != "login_backoff" && answer.1 != "password_checks_busy" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(answer.2.unwrap_or(1))).await;
        answer = login("198.51.100.1".into(), "a-long-password").await;
    }
    assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_budgets_are_per_address_and_per_token_and_say_where_they_stand() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.trusted_proxies = 1;
        config.limits.reads_per_minute = 5;
        config.limits.searches_per_minute = 3;
        config.limits.publish_burst = 2;
        config.limits.publish_refill_seconds = 3600;
    })
    .await;
    let get = |path: &'static str, address: &'static str, token: Option<String>| {
        let client = app.client.clone();
        let url = format!("{}{path}", app.base);
        async move {
            let mut request = client.get(url).header("x-forwarded-for", address);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .map(|value| value.to_str().unwrap().to_string())
            };
            (
                response.status(),
                header("ratelimit-policy"),
                header("ratelimit"),
                header("retry-after"),
            )
        }
    };
    for remaining in (0..5).rev() {
        let (status, policy, standing, _) =
            get("/api/v1/search?q=x", "192.0.2.1", None).await.clone();
        if remaining < 2 {
            // The search budget is its own, and smaller.
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            continue;
        }
        assert_eq!(status, StatusCode::OK);
        assert_eq!(policy.as_deref(), Some("\"searches\";q=3;w=60"));
        assert!(
            standing
                .as_deref()
                .unwrap()
                .starts_with(&format!("\"searches\";r={};t=", remaining - 2)),
            "{standing:?}"
        );
    }
    // Reads from that address were not spent by its searches.
    for _ in 0..5 {
        let (status, policy, _, _) = get("/api/v1/me", "192.0.2.1", Some(app.admin.clone())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(policy.as_deref(), Some("\"reads\";q=5;w=60"));
    }
    let (status, _, standing, retry_after) =
        get("/api/v1/me", "192.0.2.1", Some(app.admin.clone())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(standing.unwrap().starts_with("\"reads\";r=0;"));
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // The token's budget follows it to another address; the address itself still has room.
    let (status, _, _, _) = get("/api/v1/me", "192.0.2.2", Some(app.admin.clone())).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _, _) = get("/api/v1/search?q=x", "192.0.2.2", None).await;
    assert_eq!(status, StatusCode::OK);

    // Publishes take from their namespace's budget, kept in the database for every replica.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some(&app.admin),
            Some(json!({ "name": "acme", "require_signature": false })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut answers = Vec::new();
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        let response = app
            .client
            .put(format!("{}/api/v1/plugins/acme/hello/{version}", app.base))
            .header("x-forwarded-for", format!("192.0.2.{}", 10 + answers.len()))
            .bearer_auth(&app.admin)
            .header("content-type", "application/gzip")
            .body(aerie_test_support::archive::package("acme/hello", version))
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        answers.push((body["error"]["code"].clone(), retry_after));
    }
    assert_eq!(answers[0].0, Value::Null, "{answers:?}");
    assert_eq!(answers[1].0, Value::Null, "{answers:?}");
    assert_eq!(answers[2].0, "publish_rate_limited", "{answers:?}");
    assert!(answers[2].1.is_some(), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tenant_filling_its_state_or_its_slots_cannot_starve_another() {
    let app = TestApp::start_with(Backend::Sqlite, |config| {
        config.plugin_limits.space_concurrency = 2;
        config.plugin_limits.kv_keys_per_space = 50;
        config.plugin_limits.kv_mib_per_space = 1;
        config.plugin_limits.kv_max_value_bytes = 64 * 1024;
        config.plugin_limits.kv_max_key_bytes = 64;
        config.plugin_limits.installations_per_space = 2;
    })
    .await;
    for plugin in ["hostile", "probe", "counter", "hello"] {
        app.publish(plugin, "0.1.0").await;
    }
    let owner = hostile_space(&app, "mallory", "evil").await;
    app.space(&owner, "flood").await;
    let (status, body) = app
        .install(&owner, "flood", json!({ "plugin": "testing/probe" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.space(&app.admin, "good").await;
    for plugin in ["examples/counter", "examples/hello"] {
        let (status, body) = app
            .install(&app.admin, "good", json!({ "plugin": plugin }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .install(&app.admin, "good", json!({ "plugin": "testing/probe" }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "space_installation_limit");
    let fill = |query: &str| {
        let path = format!("/s/evil/testing/hostile/kv-fill?{query}");
        let app = &app;
        async move {
            let (status, body) = app.call(Method::POST, &path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    // Values and keys over the limits are refused one by one, with the reason.
    let body = fill("keys=1&size=70000").await;
    assert_eq!(body["written"], 0, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 65536"),
        "{body}"
    );
    let long = "k".repeat(100);
    let body = fill(&format!("keys=1&size=1&prefix={long}")).await;
    assert_eq!(body["written"], 0, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("keys may have at most 64"),
        "{body}"
    );
    // Filling the space's state stops at its quota, whatever the plugin tries.
    let body = fill("keys=100&size=60000").await;
    let written = body["written"].as_u64().unwrap();
    assert!((1..=17).contains(&written), "{body}");
    assert!(body["error"].as_str().unwrap().contains("quota"), "{body}");
    let body = fill("keys=100&size=1&prefix=small-").await;
    assert!(body["written"].as_u64().unwrap() < 50, "{body}");
    // The neighbour's state is its own.
    for _ in 0..3 {
        let (status, body) = app
            .call(Method::POST, "/s/good/examples/counter/", None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Six slow calls into one space: never more than its two slots run at once, and the
    // other space answers meanwhile.
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = app.client.clone();
        let url = app.url("/s/flood/testing/probe/overlap?ms=700");
        slow.spawn(async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, text) = app.endpoint("/s/good/examples/hello/you", None).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "Hello, you!\n"));
    let answers = slow.join_all().await;
    for (status, text) in &answers {
        assert_eq!(*status, StatusCode::OK, "{text}");
        let seen: Value = serde_json::from_str(text).unwrap();
        assert!(seen["in_flight"].as_u64().unwrap() <= 2, "{answers:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_update_that_widens_memory_time_or_routes_asks_for_consent_again() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.publish("hello", "0.1.0").await;
    let ada = app.user("ada").await;
    app.space(&ada, "team").await;
    let install = "/api/v1/spaces/team/installations";
    let (status, body) = app
        .call(
            Method::POST,
            install,
            Some(&ada),
            Some(json!({ "plugin": "examples/hello", "requirement": "*" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "permissions_not_accepted");
    let shown = &body["error"]["details"]["permissions"]["examples/hello"];
    assert_eq!(
        shown["routes"],
        json!([{ "path": "/*", "methods": ["GET"], "guard": "public" }])
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("answer anyone on GET /*"),
        "{body}"
    );
    let (status, body) = app
        .install(
            &ada,
            "team",
            json!({ "plugin": "examples/hello", "requirement": "*" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let update = format!(
        "{}/update",
        TestApp::installation_path("team", "examples/hello")
    );
    for (version, edit, asked) in [
        (
            "0.2.0",
            "[permissions]\nmemory = \"256 MiB\"\ntimeout = \"60s\"\n\n[[provides.routes]]",
            "use up to 256 MiB of memory per call; take up to 60 s per call",
        ),
        (
            "0.3.0",
            "[permissions]\nmemory = \"256 MiB\"\ntimeout = \"60s\"\n\n[[provides.routes]]\npath = \"/admin\"\nguard = \"public\"\n\n[[provides.routes]]",
            "answer anyone on /admin",
        ),
    ] {
        app.publish_as("hello", version, |manifest| {
            manifest.replacen("[[provides.routes]]", edit, 1)
        })
        .await;
        let (status, body) = app
            .call(Method::POST, &update, Some(&ada), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{version}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(asked),
            "{version}: {body}"
        );
        let accept = body["error"]["details"]["permissions"].clone();
        let (status, body) = app
            .call(
                Method::POST,
                &update,
                Some(&ada),
                Some(json!({ "accept": accept })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{version}: {body}");
        assert_eq!(
            app.installation(&ada, "team", "examples/hello").await["version"],
            version
        );
    }
    // A version that asks for no more than was accepted needs no new consent.
    app.publish_as("hello", "0.3.1", |manifest| {
        manifest.replacen(
            "[[provides.routes]]",
            "[permissions]\nmemory = \"128 MiB\"\n\n[[provides.routes]]\npath = \"/admin\"\nguard = \"admin\"\n\n[[provides.routes]]",
            1,
        )
    })
    .await;
    let (status, body) = app
        .call(Method::POST, &update, Some(&ada), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_space_that_requires_signed_versions_installs_only_those_whose_signature_verifies() {
    use aerie_core::signature::{SecretKey, generate_keys, sign_package};
    use base64::Engine as _;
    let app = TestApp::start(Backend::Sqlite).await;
    // An unsigned version, and a signed one whose key is registered on its namespace.
    app.publish("hello", "0.1.0").await;
    let keys = generate_keys(None).unwrap();
    let secret = SecretKey::parse(&keys.secret_text, None).unwrap();
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/namespaces/examples/keys",
            Some(&app.admin),
            Some(json!({ "public_key": keys.public_text })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let plugin = aerie_test_support::plugins::example_plugin("hello");
    let manifest = plugin
        .manifest
        .replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1);
    let package = aerie_core::package::write_package(&[
        aerie_core::package::PackageFile {
            name: "aerie.toml".into(),
            bytes: manifest.into_bytes(),
        },
        aerie_core::package::PackageFile {
            name: "plugin.wasm".into(),
            bytes: plugin.component.clone(),
        },
    ])
    .unwrap();
    let signature = sign_package(
        &package,
        &"examples/hello".parse().unwrap(),
        &"0.2.0".parse().unwrap(),
        &secret,
    )
    .unwrap();
    let response = app
        .client
        .put(format!("{}/api/v1/plugins/examples/hello/0.2.0", app.base))
        .bearer_auth(&app.admin)
        .header("content-type", "application/gzip")
        .header(
            "x-aerie-signature",
            base64::engine::general_purpose::STANDARD.encode(&signature),
        )
        .body(package)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );

    let ada = app.user("ada").await;
    app.space(&ada, "strict").await;
    let (status, body) = app
        .call(
            Method::PATCH,
            "/api/v1/spaces/strict",
            Some(&ada),
            Some(json!({ "require_signed": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["require_signed"], true);
    let (status, body) = app
        .install(
            &ada,
            "strict",
            json!({ "plugin": "examples/hello", "requirement": "=0.1.0" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "signature_required", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not signed"),
        "{body}"
    );
    let (status, body) = app
        .install(
            &ada,
            "strict",
            json!({ "plugin": "examples/hello", "requirement": "=0.2.0" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Once the key is revoked, the version no longer runs there after a start.
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/namespaces/examples/keys/{}", keys.public.key_id()),
            Some(&app.admin),
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let mut app = app;
    app.restart().await;
    let installed = app.installation(&ada, "strict", "examples/hello").await;
    assert_eq!(installed["status"], "failed", "{installed}");
    assert!(
        installed["status_reason"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{installed}"
    );
    let (status, _) = app.endpoint("/s/strict/examples/hello/you", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
