//! `testing/spin`: never answers. Every request loops forever, so the host's deadline must
//! stop it.

use aerie_sdk::http::{Request, Response, Result};

struct Spin;

impl aerie_sdk::Http for Spin {
    fn handle(_request: Request) -> Result<Response> {
        let mut turns: u64 = 0;
        loop {
            // `black_box` keeps the loop from being optimised into a trap.
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

aerie_sdk::export!(Spin: http);
