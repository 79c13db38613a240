//! `examples/wasi-proxy`: a plain `wasi:http/proxy` component that knows nothing of Aerie.
//! It answers every request with a greeting naming the path, and runs unchanged on any
//! `wasi:http` host; the only Aerie-specific file is its `aerie.toml`.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Proxy;

impl Guest for Proxy {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("content-type is an allowed header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("a new body has a stream");
        let text = format!("Hello from a plain wasi:http/proxy component at {path}\n");
        // `blocking-write-and-flush` takes at most 4096 bytes per call.
        for chunk in text.as_bytes().chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Proxy);
