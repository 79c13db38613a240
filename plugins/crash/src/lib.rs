//! `testing/crash`: traps on every request but `/healthy`, to test failure isolation and circuit breakers.

use aerie_sdk::http::{Request, Response, Result};

struct Crash;

impl aerie_sdk::Http for Crash {
    fn handle(request: Request) -> Result<Response> {
        // One path answers, so that a circuit breaker's trial call can succeed.
        if request.path() == "/healthy" {
            return Ok(Response::text(200, "still standing\n"));
        }
        // With `panic = "abort"` a panic is a WebAssembly trap.
        panic!("testing/crash was asked for {}", request.path());
    }
}

aerie_sdk::export!(Crash: http);
