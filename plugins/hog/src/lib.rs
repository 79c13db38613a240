//! `testing/hog`: allocates memory until the host's limit stops it.

use aerie_sdk::http::{Request, Response, Result};

struct Hog;

impl aerie_sdk::Http for Hog {
    fn handle(_request: Request) -> Result<Response> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // Touch every page so the memory is really used, not only reserved.
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

aerie_sdk::export!(Hog: http);
