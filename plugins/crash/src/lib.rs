//! `testing/crash`: traps on every request, to test failure isolation and circuit breakers.

use aerie_sdk::http::{Request, Response, Result};

struct Crash;

impl aerie_sdk::Http for Crash {
    fn handle(request: Request) -> Result<Response> {
        // With `panic = "abort"` a panic is a WebAssembly trap.
        panic!("testing/crash was asked for {}", request.path());
    }
}

aerie_sdk::export!(Crash: http);
