//! The marketplace web UI served by `aerie serve`, used as people use it: in a real headless
//! Chromium (`browser/marketplace.mjs`), with JavaScript on and off, checked by axe-core in
//! both themes; and its defences tried over plain HTTP the way a hostile site or client would.

use std::path::Path;

use serde_json::{Value, json};

use crate::{ADMIN_PASSWORD, RunningServer, package, package_changed, repo, temp_dir};

/// A server with open sign-up, the example plugins `hello`, `greeter` and `greeter-client`
/// published, signed, in the namespace `examples`, and `testing/hostile` in `testing`.
fn marketplace(dir: &Path) -> RunningServer {
    let server = RunningServer::start_with(&dir.join("data"), &[("AERIE_OPEN_SIGNUP", "true")]);
    let run = |args: &[&str]| server.aerie(args, dir).success();
    run(&["login"]);
    run(&["namespace", "create", "examples"]);
    run(&["key", "generate"]);
    run(&["key", "add", "examples"]);
    for plugin in ["hello", "greeter", "greeter-client"] {
        let file = format!("{plugin}.aerie");
        std::fs::copy(package(plugin), dir.join(&file)).unwrap();
        run(&["plugin", "sign", &file, "--key", "aerie.key"]);
        run(&["publish", &file]);
    }
    // A hostile publisher's plugin: the registry asks only that its publisher signs it.
    run(&["namespace", "create", "testing"]);
    run(&["key", "add", "testing"]);
    std::fs::copy(package("hostile"), dir.join("hostile.aerie")).unwrap();
    run(&["plugin", "sign", "hostile.aerie", "--key", "aerie.key"]);
    run(&["publish", "hostile.aerie"]);
    server
}

#[test]
fn a_newcomer_finds_judges_and_reviews_a_plugin_in_chromium_with_and_without_javascript() {
    let dir = temp_dir();
    let server = marketplace(dir.path());
    let artifacts = repo().join("target/web-screenshots");
    let report = aerie_test_support::browser::run(
        "marketplace.mjs",
        &json!({
            "base": format!("http://127.0.0.1:{}", server.port),
            "plugin": "examples/greeter-client",
            "typo": "greter",
            "username": "newcomer",
            "password": "a long first password",
            "new_password": "a longer second password",
            "artifacts": artifacts,
        }),
    );
    // Nothing on any page trips its policy, logs an error or fails axe's serious checks.
    let shown = clean(&report);
    let seen = &report["seen"];

    let home = &seen["home"];
    assert_eq!(home["status"], 200, "{shown}");
    let policy = home["headers"]["content-security-policy"].as_str().unwrap();
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(home["headers"]["x-content-type-options"], "nosniff");
    assert_eq!(home["headers"]["referrer-policy"], "same-origin");
    assert!(home["lists_plugin"].as_u64().unwrap() >= 1, "{shown}");
    assert_eq!(seen["keyboard"]["first"], "skip", "{shown}");
    assert_ne!(seen["keyboard"]["outline"], "none", "{shown}");

    assert!(
        seen["signed_up"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/account"),
        "{shown}"
    );
    assert_eq!(seen["signed_up"]["user"], "newcomer");

    // Typed with a typo, the results arrive without a reload and the address follows.
    assert_eq!(seen["instant_search"]["same_page"], true, "{shown}");
    assert!(
        seen["instant_search"]["url"]
            .as_str()
            .unwrap()
            .contains("q=greter"),
        "{shown}"
    );

    let plugin = &seen["plugin"];
    assert_eq!(plugin["heading"], "examples/greeter-client");
    let facts: Vec<&str> = plugin["facts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for fact in [
        "Version",
        "Updated",
        "License",
        "Downloads",
        "Rating",
        "Certification",
        "Signature",
    ] {
        assert!(facts.contains(&fact), "{fact} missing: {facts:?}");
    }
    assert!(
        plugin["permissions"]
            .as_str()
            .unwrap()
            .contains("examples/greeter"),
        "{shown}"
    );
    let scripts = plugin["scripts"].as_array().unwrap();
    assert_eq!(scripts.len(), 1, "{shown}");
    assert!(
        scripts[0].as_str().unwrap().contains("/static/aerie."),
        "{shown}"
    );
    for (tab, label) in [
        ("versions", "Versions"),
        ("changes", "Changes"),
        ("changelog", "Changelog"),
        ("dependencies", "Dependencies"),
        ("reviews", "Reviews"),
        ("stats", "Statistics"),
    ] {
        assert_eq!(seen["tabs"][tab]["status"], 200, "{tab}: {shown}");
        assert_eq!(seen["tabs"][tab]["current"], label, "{shown}");
    }
    assert_eq!(seen["tabs"]["versions"]["rows"], 1, "{shown}");
    assert!(
        seen["tabs"]["changelog"]["text"]
            .as_str()
            .unwrap()
            .contains("First release"),
        "the package's CHANGELOG.md, on its tab: {shown}"
    );

    // One review per user, edited in place; its markup is shown, never run.
    let reviews = &seen["reviews"];
    assert_eq!(reviews["items"], 1, "{shown}");
    assert_eq!(reviews["stars"], "5 of 5 stars", "{shown}");
    assert!(
        reviews["text"]
            .as_str()
            .unwrap()
            .contains("&lt;b&gt;not bold&lt;/b&gt;"),
        "{shown}"
    );
    assert_eq!(reviews["legend"], "Edit your review");

    assert_eq!(seen["theme"]["after_switch"], "dark", "{shown}");
    assert_eq!(seen["theme"]["next_page"], "dark", "{shown}");

    let account = &seen["account"];
    assert_eq!(account["sessions"], 1, "{shown}");
    assert_eq!(account["wrong_password"]["status"], 401, "{shown}");
    assert!(
        account["changed"]
            .as_str()
            .unwrap()
            .contains("password is changed"),
        "{shown}"
    );

    for (page, overflow) in seen["phone_overflow"].as_object().unwrap() {
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{page} scrolls sideways on a phone: {shown}"
        );
    }
    assert_eq!(seen["not_found"]["status"], 404, "{shown}");
    assert!(
        seen["signed_out"]["nav"]
            .as_str()
            .unwrap()
            .contains("Sign in"),
        "{shown}"
    );
    assert!(
        seen["signed_out"]["account"]
            .as_str()
            .unwrap()
            .contains("/login?next="),
        "{shown}"
    );

    let plain = &seen["without_javascript"];
    assert!(
        plain["search_lists_plugin"].as_u64().unwrap() >= 1,
        "{shown}"
    );
    assert!(
        plain["sorted_url"]
            .as_str()
            .unwrap()
            .contains("sort=downloads"),
        "{shown}"
    );
    assert!(
        plain["back_after_login"]
            .as_str()
            .unwrap()
            .ends_with("/plugins/examples/greeter-client/reviews"),
        "{shown}"
    );
    assert_eq!(plain["review"], "3 of 5 stars", "{shown}");
    assert_eq!(plain["after_delete"]["reviews"], 0, "{shown}");
    assert_eq!(plain["after_delete"]["legend"], "Write a review", "{shown}");

    for name in ["home", "search", "plugin", "account"] {
        for size in ["desktop", "phone"] {
            for scheme in ["light", "dark"] {
                let shot = artifacts.join(format!("{name}-{size}-{scheme}.png"));
                assert!(shot.is_file(), "{} missing", shot.display());
            }
        }
    }
}

/// A raw HTTP/1.0 exchange with the server: status, headers (lowercase names) and body.
fn exchange(port: u16, request: &str) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn post(
    port: u16,
    path: &str,
    headers: &[&str],
    form: &str,
) -> (u16, Vec<(String, String)>, String) {
    let extra: String = headers
        .iter()
        .map(|header| format!("{header}\r\n"))
        .collect();
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

fn get(port: u16, path: &str, headers: &[&str]) -> (u16, Vec<(String, String)>, String) {
    let extra: String = headers
        .iter()
        .map(|header| format!("{header}\r\n"))
        .collect();
    exchange(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n"),
    )
}

#[test]
fn pages_refuse_forms_from_other_sites_and_answer_bad_input_with_a_page() {
    let dir = temp_dir();
    let server = RunningServer::start(&dir.path().join("data"));
    let port = server.port;
    let credentials = format!("username=admin&password={ADMIN_PASSWORD}");

    // Another site — a plugin origin on a sibling host included — cannot sign anyone in.
    for site in ["cross-site", "same-site"] {
        let (status, _, body) = post(
            port,
            "/login",
            &[&format!("Sec-Fetch-Site: {site}")],
            &credentials,
        );
        assert_eq!(status, 403, "{site}: {body}");
        assert!(body.contains("csrf"), "{body}");
    }
    let (status, _, body) = post(
        port,
        "/login",
        &["Origin: http://team.localhost:1"],
        &credentials,
    );
    assert_eq!(status, 403, "{body}");

    // From the server's own page it can; `next` never leads off the site.
    let (status, headers, _) = post(
        port,
        "/login",
        &["Sec-Fetch-Site: same-origin"],
        &format!("{credentials}&next=%2F%2Fevil.example%2F"),
    );
    assert_eq!(status, 303);
    assert_eq!(header(&headers, "location"), Some("/"));
    let cookie = header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let signed_in = format!("Cookie: {cookie}");

    // A sibling page's form cannot sign the visitor out or end their sessions.
    for path in ["/logout", "/account/sessions/end-all"] {
        let (status, _, body) = post(port, path, &[&signed_in, "Sec-Fetch-Site: same-site"], "");
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, _, body) = get(port, "/account", &[&signed_in]);
    assert_eq!(status, 200, "still signed in: {body}");
    assert!(body.contains("Where you are signed in"), "{body}");

    // The user list is for administrators, and a crafted prefix is no pattern.
    let (status, _, body) = get(port, "/api/v1/admin/users?prefix=adm", &[&signed_in]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"username\":\"admin\""), "{body}");
    let (status, _, body) = get(port, "/api/v1/admin/users?prefix=%25", &[&signed_in]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_prefix"), "{body}");
    let (status, _, body) = get(port, "/api/v1/admin/users?limit=1000", &[&signed_in]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_limit"), "{body}");
    let (status, _, body) = get(port, "/api/v1/admin/users", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth_required"), "{body}");

    // Malformed input is answered by a page naming it; the API's paths keep their envelope.
    let (status, headers, body) = get(port, "/search?page=abc", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("invalid_page"), "{body}");
    let (status, _, body) = get(port, "/search?sort=sideways", &[]);
    assert_eq!(status, 400);
    assert!(body.contains("invalid_sort"), "{body}");
    let (status, _, body) = post(
        port,
        "/theme",
        &["Sec-Fetch-Site: same-origin"],
        "theme=neon",
    );
    assert_eq!(status, 400);
    assert!(body.contains("invalid_theme"), "{body}");
    let (status, headers, body) = get(port, "/api/v1/nothing-here", &[]);
    assert_eq!(status, 404);
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(body.contains("\"no_route\""), "{body}");
    let (status, _, body) = get(port, "/plugins/nobody/missing", &[]);
    assert_eq!(status, 404);
    assert!(body.contains("namespace_not_found"), "{body}");

    // Assets are immutable under their hashed names; any other name is not served.
    let (_, _, home) = get(port, "/", &[]);
    let stylesheet = home
        .split("href=\"")
        .find_map(|rest| rest.split('"').next().filter(|href| href.ends_with(".css")))
        .unwrap();
    let (status, headers, _) = get(port, stylesheet, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(get(port, "/static/aerie.css", &[]).0, 404);
    assert_eq!(get(port, "/static/aerie.000000000000.css", &[]).0, 404);
}

/// Creates an account through the API (sign-up is open on the marketplace server).
fn sign_up(port: u16, username: &str, password: &str) {
    let body = json!({ "username": username, "password": password }).to_string();
    let (status, _, answer) = exchange(
        port,
        &format!(
            "POST /api/v1/users HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 201, "{answer}");
}

/// What each browser run printed, with every page passing axe and its CSP, and no page
/// logging an error.
fn clean(report: &Value) -> String {
    let shown = serde_json::to_string_pretty(report).unwrap();
    for (page, violations) in report["accessibility"].as_object().unwrap() {
        assert_eq!(violations, &json!([]), "axe on {page}:\n{shown}");
    }
    for (page, violations) in report["csp"].as_object().unwrap() {
        assert_eq!(violations, &json!([]), "CSP on {page}:\n{shown}");
    }
    assert_eq!(report["problems"], json!([]), "{shown}");
    shown
}

#[test]
fn an_owner_installs_configures_updates_and_uninstalls_in_chromium_and_a_viewer_cannot() {
    let dir = temp_dir();
    let server = marketplace(dir.path());
    // 0.1.1 answers on one more route: an update that asks for more than was allowed.
    let widened = dir.path().join("greeter-client-0.1.1.aerie");
    package_changed(
        package("greeter-client"),
        "0.1.1",
        "\n[[provides.routes]]\npath = \"/more\"\nmethods = [\"GET\"]\nguard = \"public\"\n",
        &widened,
    );
    // greeter 0.1.1 keeps data of its own: installing greeter-client brings it in, so the
    // install form asks consent for both before anything is posted.
    let keeping = dir.path().join("greeter-0.1.1.aerie");
    package_changed(
        package("greeter"),
        "0.1.1",
        "\n[permissions]\nkeyvalue = true\n",
        &keeping,
    );
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    for file in [&widened, &keeping] {
        run(&[
            "plugin",
            "sign",
            file.to_str().unwrap(),
            "--key",
            "aerie.key",
        ]);
        run(&["publish", file.to_str().unwrap()]);
    }
    let account =
        |name: &str| json!({ "username": name, "password": format!("{name}-password-long") });
    for name in ["olive", "watcher", "stranger"] {
        sign_up(server.port, name, &format!("{name}-password-long"));
    }
    let input = |phase: &str| {
        json!({
            "phase": phase,
            "base": format!("http://127.0.0.1:{}", server.port),
            "space": "team",
            "plugin": "examples/greeter-client",
            "owner": account("olive"),
            "viewer": account("watcher"),
            "stranger": account("stranger"),
            "secret": "s3cret-token-value",
            "artifacts": repo().join("target/web-screenshots"),
        })
    };

    let report = aerie_test_support::browser::run("spaces.mjs", &input("owner"));
    let shown = clean(&report);
    let seen = &report["seen"];
    assert_eq!(
        seen["form"]["versions"],
        json!(["0.1.1", "0.1.0"]),
        "{shown}"
    );
    assert_eq!(
        seen["form"]["config_default"], "world",
        "the schema's default: {shown}"
    );
    assert_eq!(seen["form"]["secret_fields"], 1, "{shown}");
    let consent = seen["form"]["consent"].as_str().unwrap();
    assert!(
        consent.contains("examples/greeter\n") && consent.contains("keep data of its own"),
        "the dependency's permissions are asked at once: {shown}"
    );
    assert!(
        seen["form"]["consent"]
            .as_str()
            .unwrap()
            .contains("read the secrets you set for it: access-token"),
        "{shown}"
    );
    assert_eq!(seen["installed"]["status"], "active", "{shown}");
    assert_eq!(seen["installed"]["health"], "healthy", "{shown}");
    assert_eq!(seen["installed"]["breaker"], "closed", "{shown}");
    assert_eq!(seen["installed"]["secret_badge"], "set", "{shown}");
    assert_eq!(
        seen["installed"]["secret_in_page"], false,
        "a secret is never shown: {shown}"
    );
    assert_eq!(
        seen["endpoint"]["origin"],
        format!("http://team.localhost:{}", server.port),
        "{shown}"
    );
    assert_eq!(
        seen["endpoint"]["body"], "Hello, friend!",
        "the config reached the plugin: {shown}"
    );
    assert_eq!(
        seen["endpoint"]["private"]["status"], 200,
        "the secret reached the plugin: {shown}"
    );
    assert!(
        seen["config_saved"]
            .as_str()
            .unwrap()
            .contains("config is saved"),
        "{shown}"
    );
    assert!(
        seen["dashboard"]["update"]
            .to_string()
            .contains("update available: 0.1.1"),
        "{shown}"
    );
    assert_eq!(seen["update_consent"]["status"], 409, "{shown}");
    assert_eq!(
        seen["update_consent"]["changes"],
        json!(["routes: added /more (GET), for public"]),
        "{shown}"
    );
    assert_eq!(
        seen["changes_tab"]["heading"], "From 0.1.0 to 0.1.1",
        "{shown}"
    );
    assert_eq!(
        seen["changes_tab"]["changes"],
        json!(["routes: added /more (GET), for public"]),
        "{shown}"
    );
    assert!(
        seen["update_consent"]["text"]
            .as_str()
            .unwrap()
            .contains("answer anyone on GET /more"),
        "{shown}"
    );
    assert!(
        seen["updated"].as_str().unwrap().starts_with("0.1.1"),
        "{shown}"
    );
    assert!(
        seen["rolled_back"].as_str().unwrap().starts_with("0.1.0"),
        "{shown}"
    );
    assert!(
        seen["disabled"].as_str().unwrap().starts_with("disabled"),
        "{shown}"
    );
    assert_eq!(seen["members"], json!(["olive", "watcher"]), "{shown}");
    assert_eq!(
        seen["policy"],
        json!({ "require_signed": true, "require_certified": false }),
        "{shown}"
    );
    assert_eq!(seen["space_token"]["prefix"], "aerie_", "{shown}");
    assert_eq!(seen["space_token"]["works"], 200, "{shown}");
    assert_eq!(seen["space_token"]["after_revoke"], 401, "{shown}");
    assert_eq!(seen["api_token"]["status"], 200, "{shown}");
    assert_eq!(seen["api_token"]["scopes"], json!(["publish"]), "{shown}");
    assert_eq!(seen["update_all"]["updated"], json!([]), "{shown}");
    assert_eq!(
        seen["update_all"]["waiting"],
        json!(["examples/greeter-client: 0.1.0 → 0.1.1"]),
        "it asks for more, so it waits for consent: {shown}"
    );
    assert!(
        seen["after_other_install"]
            .as_str()
            .unwrap()
            .starts_with("0.1.0"),
        "a rollback holds until the next update: {shown}"
    );
    // A hostile plugin's contributed page, framed in the dashboard, reaches nothing of it.
    let framed = &seen["framed"];
    assert_eq!(framed["sandbox"], "allow-scripts allow-forms", "{shown}");
    assert!(
        framed["src"].as_str().unwrap().starts_with(&format!(
            "http://team.localhost:{}/testing/hostile/framed",
            server.port
        )),
        "{shown}"
    );
    for attempt in [
        "parent_document",
        "parent_cookie",
        "top_location",
        "own_cookie",
        "storage",
        "api_127",
        "api_localhost",
        "deface",
    ] {
        assert!(
            framed["results"][attempt]
                .as_str()
                .unwrap()
                .starts_with("blocked"),
            "{attempt}: {shown}"
        );
    }
    assert_eq!(
        framed["dashboard_title"], "testing/hostile in team · Aerie",
        "{shown}"
    );
    assert!(
        seen["enabled"].as_str().unwrap().starts_with("active"),
        "{shown}"
    );

    let report = aerie_test_support::browser::run("spaces.mjs", &input("viewer"));
    let shown = clean(&report);
    let seen = &report["seen"];
    assert_eq!(
        seen["viewer"]["rows"], 3,
        "the plugin, its dependency and testing/hostile: {shown}"
    );
    assert_eq!(seen["viewer"]["controls"], 0, "{shown}");
    assert_eq!(seen["viewer"]["forms"], 0, "{shown}");
    assert_eq!(seen["viewer"]["install_button"], 0, "{shown}");
    for (action, answer) in seen["viewer"]["posts"].as_object().unwrap() {
        assert_eq!(answer["status"], 403, "{action}: {shown}");
    }
    assert_eq!(seen["stranger"]["status"], 404, "{shown}");
    assert_eq!(seen["stranger"]["code"], "space_not_found", "{shown}");
    assert!(
        seen["needed_by"]
            .to_string()
            .contains("needed by examples/greeter-client"),
        "{shown}"
    );
    assert_eq!(
        seen["after_uninstall"], 1,
        "its dependency went with it, testing/hostile stays: {shown}"
    );
}

#[test]
fn a_publisher_yanks_and_deprecates_and_an_administrator_certifies_in_chromium() {
    let dir = temp_dir();
    let server = marketplace(dir.path());
    server
        .aerie(
            &["certify", "submit", "examples/greeter-client@0.1.0"],
            dir.path(),
        )
        .success();
    sign_up(server.port, "someone", "someone-password-long");
    server
        .aerie(&["key", "generate", "--output", "second-key"], dir.path())
        .success();
    // A second registry with no route to the first, where `examples` takes the same key.
    let second = RunningServer::start(&dir.path().join("second"));
    let second_dir = dir.path().join("second-cli");
    std::fs::create_dir_all(&second_dir).unwrap();
    for file in ["aerie.key", "aerie.pub"] {
        std::fs::copy(dir.path().join(file), second_dir.join(file)).unwrap();
    }
    for args in [
        &["login"][..],
        &["namespace", "create", "examples"],
        &["key", "add", "examples"],
    ] {
        second.aerie(args, &second_dir).success();
    }
    let report = aerie_test_support::browser::run(
        "publishing.mjs",
        &json!({
            "base": format!("http://127.0.0.1:{}", server.port),
            "second": format!("http://127.0.0.1:{}", second.port),
            "carry": "examples/hello@0.1.0",
            "new_key": std::fs::read_to_string(dir.path().join("second-key.pub")).unwrap(),
            "artifacts": repo().join("target/web-screenshots"),
            "admin": { "username": "admin", "password": ADMIN_PASSWORD },
            "other": { "username": "someone", "password": "someone-password-long" },
            "deprecate": "examples/greeter@0.1.0",
            "yank": "examples/hello@0.1.0",
            "certify": "examples/greeter-client@0.1.0",
        }),
    );
    let shown = clean(&report);
    let seen = &report["seen"];
    let namespaces = seen["namespaces"].to_string();
    assert!(
        namespaces.contains("examples") && namespaces.contains("testing"),
        "{shown}"
    );
    assert_eq!(seen["after"]["undeprecate"], 1, "deprecated: {shown}");
    assert_eq!(seen["after"]["unyank"], 1, "yanked: {shown}");
    assert!(
        seen["versions_tab"].as_str().unwrap().contains("Yanked"),
        "{shown}"
    );
    assert!(
        seen["queue"]
            .to_string()
            .contains("examples/greeter-client 0.1.0"),
        "{shown}"
    );
    assert!(
        seen["certified"].as_str().unwrap().contains("Certified"),
        "{shown}"
    );
    let audit = seen["audit"].to_string();
    assert!(
        audit.contains("version.yank") && audit.contains("examples/hello"),
        "{shown}"
    );
    assert!(
        seen["ns_members"].to_string().contains("someone"),
        "{shown}"
    );
    assert_eq!(
        seen["keys"]["added"].as_u64(),
        seen["keys"]["before"].as_u64().map(|n| n + 1),
        "{shown}"
    );
    assert_eq!(
        seen["keys"]["after_revoke"], seen["keys"]["before"],
        "{shown}"
    );
    assert_eq!(seen["users"], json!(["someone"]), "{shown}");
    assert_eq!(seen["outsider"]["status"], 403, "{shown}");
    assert_eq!(seen["outsider"]["code"], "admin_required", "{shown}");
    assert_eq!(seen["outsider"]["admin_link"], false, "{shown}");
    assert_eq!(
        seen["dashboard_downloads"],
        json!({ "chart": "Downloads per day", "table": ["1"] }),
        "the package's download, counted on its publisher's dashboard: {shown}"
    );
    // Carried to a registry with no route to this one, through its whole pipeline.
    assert_eq!(
        seen["download_disposition"], "attachment; filename=\"examples-hello-0.1.0.aerie\"",
        "{shown}"
    );
    assert!(
        seen["upload_not_a_package"]
            .as_str()
            .unwrap()
            .contains("gzip"),
        "{shown}"
    );
    assert!(
        seen["upload_unsigned"]
            .as_str()
            .unwrap()
            .contains("requires signed versions"),
        "{shown}"
    );
    assert!(
        seen["uploaded"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/plugins/examples/hello/versions"),
        "{shown}"
    );
    assert_eq!(seen["uploaded"]["versions"], 1, "{shown}");
    assert!(
        seen["uploaded"]["signature"]
            .as_str()
            .unwrap()
            .contains("signed by publisher key"),
        "{shown}"
    );
}
