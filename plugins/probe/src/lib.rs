//! `testing/probe`: shows the host's work from inside, for the host's tests.
//!
//! - `GET /overlap?ms=N` sleeps N ms and answers how many calls (itself included) were
//!   running at its midpoint, counted in its key-value store;
//! - `POST /sick` makes `health` fail until `POST /well`;
//! - `GET /print?text=T` writes T to stdout and to stderr.

use aerie_sdk::http::{Error, Method, Request, Response, Result};
use aerie_sdk::kv::Store;

const STARTED: &str = "started";
const FINISHED: &str = "finished";
const SICK: &str = "sick";

struct Probe;

impl aerie_sdk::Http for Probe {
    fn handle(request: Request) -> Result<Response> {
        let store = Store::open()?;
        match (request.method(), request.path()) {
            (Method::Get, "/overlap") => {
                let ms: u64 = request
                    .query_param("ms")
                    .and_then(|ms| ms.parse().ok())
                    .ok_or_else(|| Error::bad_request("give ?ms=N"))?;
                // Keys only grow (the store's atomics add), so calls in flight are the ones
                // started less the ones finished.
                store.increment(STARTED, 1)?;
                std::thread::sleep(std::time::Duration::from_millis(ms));
                let in_flight = count(&store, STARTED)? - count(&store, FINISHED)?;
                store.increment(FINISHED, 1)?;
                Ok(Response::json(
                    200,
                    &serde_json::json!({ "in_flight": in_flight }),
                ))
            }
            (Method::Post, "/sick") => {
                store.set(SICK, b"yes")?;
                Ok(Response::text(200, "sick\n"))
            }
            (Method::Post, "/well") => {
                store.delete(SICK)?;
                Ok(Response::text(200, "well\n"))
            }
            (Method::Get, "/print") => {
                let text = request.query_param("text").unwrap_or_default();
                println!("{text} (stdout)");
                eprintln!("{text} (stderr)");
                Ok(Response::text(200, "printed\n"))
            }
            _ => Err(Error::not_found(format!("no route {}", request.path()))),
        }
    }
}

fn count(store: &Store, key: &str) -> Result<u64> {
    Ok(store
        .get(key)?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0))
}

impl aerie_sdk::Lifecycle for Probe {
    fn init(_previous_version: Option<&str>) -> std::result::Result<(), String> {
        Ok(())
    }

    fn health() -> std::result::Result<(), String> {
        let store = Store::open().map_err(|err| err.to_string())?;
        match store.exists(SICK) {
            Ok(false) => Ok(()),
            Ok(true) => Err("told to be sick".into()),
            Err(err) => Err(err.to_string()),
        }
    }
}

aerie_sdk::export!(Probe: http, lifecycle);
