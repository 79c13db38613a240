//! `examples/outbound`: `GET /fetch?url=URL` fetches URL and answers with its status and body.
//!
//! The host lets the call through only to hosts in `permissions.outbound`; any other host is
//! refused with `403`, which this plugin passes on.

use aerie_sdk::http::{self, Error, Request, Response, Result};

struct Outbound;

impl aerie_sdk::Http for Outbound {
    fn handle(request: Request) -> Result<Response> {
        let url = request
            .query_param("url")
            .ok_or_else(|| Error::bad_request("give the URL to fetch as ?url="))?;
        let fetched = http::send(Request::get(url))?;
        Ok(Response::text(
            200,
            format!("{}\n{}", fetched.status(), fetched.text_body()),
        ))
    }
}

aerie_sdk::export!(Outbound: http);
