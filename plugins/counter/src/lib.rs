//! `examples/counter`: a count kept in the installation's key-value store.
//!
//! - `GET /` reads the count, `POST /` adds one and returns the new count;
//! - `GET /history` lists the versions `init` has seen, which shows state surviving restarts
//!   and updates (each start appends the previous version).

use aerie_sdk::http::{Error, Method, Request, Response, Result};
use aerie_sdk::kv::Store;

const COUNT: &str = "count";
const HISTORY: &str = "history";

struct Counter;

impl aerie_sdk::Http for Counter {
    fn handle(request: Request) -> Result<Response> {
        let store = Store::open()?;
        match (request.method(), request.path()) {
            (Method::Get, "/") => {
                let count = store
                    .get(COUNT)?
                    .map(|bytes| decode_count(&bytes))
                    .unwrap_or(0);
                Ok(Response::json(200, &serde_json::json!({ "count": count })))
            }
            (Method::Post, "/") => {
                let count = store.increment(COUNT, 1)?;
                Ok(Response::json(200, &serde_json::json!({ "count": count })))
            }
            (Method::Get, "/history") => {
                let history: Vec<String> = store.get_json(HISTORY)?.unwrap_or_default();
                Ok(Response::json(200, &history))
            }
            (method, "/" | "/history") => Err(Error::method_not_allowed(method)),
            _ => Err(Error::not_found(format!("no route {}", request.path()))),
        }
    }
}

/// The host stores atomic counters as decimal text.
fn decode_count(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

impl aerie_sdk::Lifecycle for Counter {
    fn init(previous_version: Option<&str>) -> std::result::Result<(), String> {
        let store = Store::open().map_err(|err| err.to_string())?;
        let mut history: Vec<String> = store
            .get_json(HISTORY)
            .map_err(|err| err.to_string())?
            .unwrap_or_default();
        history.push(previous_version.unwrap_or("none").to_string());
        store
            .set_json(HISTORY, &history)
            .map_err(|err| err.to_string())
    }

    fn health() -> std::result::Result<(), String> {
        Store::open().map(|_| ()).map_err(|err| err.to_string())
    }
}

aerie_sdk::export!(Counter: http, lifecycle);
