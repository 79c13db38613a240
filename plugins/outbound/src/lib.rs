//! `examples/outbound`: `GET /fetch?url=URL` fetches URL and answers with its status and body;
//! with `&follow=N` it follows up to N redirects (at most 5), each one a new request.
//!
//! The host lets each request through only to hosts in `permissions.outbound`, and never to
//! the operator's own networks; a refused one fails with `403`, which this plugin passes on.

use aerie_sdk::http::{self, Error, Request, Response, Result};

struct Outbound;

impl aerie_sdk::Http for Outbound {
    fn handle(request: Request) -> Result<Response> {
        let mut url = request
            .query_param("url")
            .ok_or_else(|| Error::bad_request("give the URL to fetch as ?url="))?;
        let follow: u32 = request
            .query_param("follow")
            .and_then(|follow| follow.parse().ok())
            .unwrap_or(0)
            .min(5);
        let mut fetched = http::send(Request::get(url.clone()))?;
        for _ in 0..follow {
            let Some(location) = fetched
                .header("location")
                .filter(|_| (300..400).contains(&fetched.status()))
            else {
                break;
            };
            url = location.to_string();
            fetched = http::send(Request::get(url.clone()))?;
        }
        Ok(Response::text(
            200,
            format!("{}\n{}", fetched.status(), fetched.text_body()),
        ))
    }
}

aerie_sdk::export!(Outbound: http);
