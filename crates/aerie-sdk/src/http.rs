//! HTTP endpoints (`wasi:http/incoming-handler`) and outbound HTTP (`wasi:http/outgoing-handler`).
//!
//! The host mounts a plugin at `/{namespace}/{name}/` on its space's own origin (like
//! `https://team.plugins.example.com/acme/hello/`) and passes the rest of the path on, as sent,
//! so a plugin sees `/` for its root whatever space it is installed in. Its cookies are its
//! own: the origin holds no other's, and Aerie's never reach it.

use std::fmt;

use crate::bindings::http_endpoint::exports::wasi::http::incoming_handler;
use crate::bindings::imports::wasi::http::outgoing_handler;
use crate::bindings::imports::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};
use crate::bindings::imports::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The HTTP endpoints of a plugin. Export it with `aerie_sdk::export!(Plugin: http)`.
pub trait Http {
    /// Answers one request. A fresh instance serves every request, so nothing kept in memory
    /// survives to the next one: keep state in [`crate::kv`].
    ///
    /// Returning an [`Error`] answers with its status and message as plain text.
    fn handle(request: Request) -> Result<Response>;
}

/// The result of an HTTP handler or an outbound call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `PATCH`
    Patch,
    /// `OPTIONS`
    Options,
    /// `CONNECT`
    Connect,
    /// `TRACE`
    Trace,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// The method's name as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(name) => name,
        }
    }

    fn from_wasi(method: WasiMethod) -> Method {
        match method {
            WasiMethod::Get => Method::Get,
            WasiMethod::Head => Method::Head,
            WasiMethod::Post => Method::Post,
            WasiMethod::Put => Method::Put,
            WasiMethod::Delete => Method::Delete,
            WasiMethod::Patch => Method::Patch,
            WasiMethod::Options => Method::Options,
            WasiMethod::Connect => Method::Connect,
            WasiMethod::Trace => Method::Trace,
            WasiMethod::Other(name) => Method::Other(name),
        }
    }

    fn to_wasi(&self) -> WasiMethod {
        match self {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Patch => WasiMethod::Patch,
            Method::Options => WasiMethod::Options,
            Method::Connect => WasiMethod::Connect,
            Method::Trace => WasiMethod::Trace,
            Method::Other(name) => WasiMethod::Other(name.clone()),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names (lowercase) and values, in order. A name may repeat.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A request: one the plugin received, or one it sends with [`send`].
#[derive(Clone, Debug)]
pub struct Request {
    method: Method,
    /// For a received request: path and query. For an outbound one: the absolute URL.
    target: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Request {
    /// A request with the given method to `target`: an absolute `http://` or `https://` URL
    /// when the request is sent with [`send`].
    pub fn new(method: Method, target: impl Into<String>) -> Request {
        Request {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    /// Sets a JSON body and its content type.
    ///
    /// Panics if `value`'s `Serialize` implementation fails (for example, a map with
    /// non-string keys), which is a bug in the plugin.
    pub fn with_json(self, value: &impl serde::Serialize) -> Request {
        let body = serde_json::to_vec(value).expect("a Serialize value renders as JSON");
        self.with_header("content-type", "application/json")
            .with_body(body)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path without the query, e.g. `/items/7`.
    pub fn path(&self) -> &str {
        let end = self.target.find('?').unwrap_or(self.target.len());
        &self.target[..end]
    }

    /// The raw query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// The body parsed as JSON; a body that does not parse is a `400 Bad Request`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|err| Error::bad_request(format!("invalid JSON body: {err}")))
    }

    fn from_incoming(request: IncomingRequest) -> Result<Request> {
        let method = Method::from_wasi(request.method());
        let target = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let headers = fields_to_headers(&request.headers());
        let body = request
            .consume()
            .map_err(|()| Error::internal("the request body was already taken"))?;
        let bytes = read_body(&body)?;
        IncomingBody::finish(body);
        Ok(Request {
            method,
            target,
            headers,
            body: bytes,
        })
    }
}

/// The header and body methods requests and responses share.
macro_rules! message_methods {
    ($message:ident) => {
        impl $message {
            /// Adds a header.
            pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> $message {
                self.headers.push((name.to_ascii_lowercase(), value.into()));
                self
            }

            /// Sets the body.
            pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> $message {
                self.body = body.into();
                self
            }

            /// The first value of the header `name` (case-insensitive), if it is valid UTF-8.
            pub fn header(&self, name: &str) -> Option<&str> {
                self.headers
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .and_then(|(_, value)| std::str::from_utf8(value).ok())
            }

            /// All headers.
            pub fn headers(&self) -> &Headers {
                &self.headers
            }

            /// The body bytes.
            pub fn body(&self) -> &[u8] {
                &self.body
            }
        }
    };
}

message_methods!(Request);
message_methods!(Response);

/// A response: one the plugin answers with, or one it received from [`send`].
#[derive(Clone, Debug)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(text.into())
    }

    /// An `application/json` response.
    ///
    /// Panics if `value`'s `Serialize` implementation fails (for example, a map with
    /// non-string keys), which is a bug in the plugin.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let body = serde_json::to_vec(value).expect("a Serialize value renders as JSON");
        Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(body)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body as text, replacing invalid UTF-8.
    pub fn text_body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json_body<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|err| Error::bad_gateway(format!("invalid JSON in the response: {err}")))
    }

    fn send(self, out: ResponseOutparam) {
        let response = OutgoingResponse::new(headers_to_fields(&self.headers));
        // A status the host refuses (outside 100..=599) falls back to 500.
        if response.set_status_code(self.status).is_err() {
            let _ = response.set_status_code(500);
        }
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(out, Ok(response));
        write_body(&body, &self.body);
        let _ = OutgoingBody::finish(body, None);
    }

    fn from_incoming(response: IncomingResponse) -> Result<Response> {
        let status = response.status();
        let headers = fields_to_headers(&response.headers());
        let body = response
            .consume()
            .map_err(|()| Error::bad_gateway("the response body was already taken"))?;
        let bytes = read_body(&body)?;
        IncomingBody::finish(body);
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

/// An HTTP failure with the status to answer with.
///
/// Any error converts into one with `?`, as a `500 Internal Server Error` carrying its
/// message; the constructors pick another status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error answered with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// `401 Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(401, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(404, message)
    }

    /// `405 Method Not Allowed`.
    pub fn method_not_allowed(method: &Method) -> Error {
        Error::new(405, format!("method {method} is not allowed here"))
    }

    /// `500 Internal Server Error`.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(500, message)
    }

    /// `502 Bad Gateway`: an upstream (outbound call or other plugin) failed.
    pub fn bad_gateway(message: impl Into<String>) -> Error {
        Error::new(502, message)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

// `Error` deliberately does not implement `std::error::Error`, so that this blanket
// conversion does not overlap with `From<T> for T`, and `?` works on any error.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Error {
        Error::internal(err.to_string())
    }
}

impl From<Error> for Response {
    fn from(err: Error) -> Response {
        Response::text(err.status, err.message)
    }
}

/// Sends `request` to its absolute URL and waits for the whole response.
///
/// The host lets the request through only to hosts listed under `permissions.outbound` in the
/// manifest and allowed by the installation, and only to addresses outside the operator's own
/// networks (loopback, private, link-local, ...) unless the operator allows them; anything else
/// fails with `403`. Redirects are not followed: a plugin that follows one sends a new request,
/// checked the same way.
pub fn send(request: Request) -> Result<Response> {
    let url = OutboundUrl::parse(&request.target)?;
    let outgoing = OutgoingRequest::new(headers_to_fields(&request.headers));
    let invalid = |what: &str| Error::bad_request(format!("invalid {what} in {}", request.target));
    outgoing
        .set_method(&request.method.to_wasi())
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&url.scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(url.authority))
        .map_err(|()| invalid("host"))?;
    outgoing
        .set_path_with_query(Some(url.path_with_query))
        .map_err(|()| invalid("path"))?;
    let body = outgoing.body().expect("a new request has a body");
    let pending = outgoing_handler::handle(outgoing, None).map_err(outbound_error)?;
    write_body(&body, &request.body);
    OutgoingBody::finish(body, None).map_err(outbound_error)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .expect("the response is ready after the pollable fired")
        .map_err(|()| Error::internal("the response was already taken"))?
        .map_err(outbound_error)?;
    Response::from_incoming(response)
}

fn outbound_error(code: ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::new(403, "outbound request denied by the host"),
        ErrorCode::DestinationIpProhibited => Error::new(
            403,
            "outbound request denied by the host: the address is on the operator's network",
        ),
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => {
            Error::new(504, format!("outbound request timed out: {code:?}"))
        }
        other => Error::bad_gateway(format!("outbound request failed: {other:?}")),
    }
}

struct OutboundUrl<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_with_query: &'a str,
}

impl<'a> OutboundUrl<'a> {
    fn parse(url: &'a str) -> Result<OutboundUrl<'a>> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::bad_request(format!("not an absolute URL: {url}")))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(Error::bad_request(format!(
                    "unsupported URL scheme `{other}`: use http or https"
                )));
            }
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(Error::bad_request(format!("no host in URL: {url}")));
        }
        Ok(OutboundUrl {
            scheme,
            authority,
            path_with_query: if path.is_empty() { "/" } else { path },
        })
    }
}

fn fields_to_headers(fields: &Fields) -> Headers {
    fields.entries()
}

fn headers_to_fields(headers: &Headers) -> Fields {
    let fields = Fields::new();
    for (name, value) in headers {
        // A header the host forbids (for example `host` or `connection`) is dropped rather
        // than failing the whole message.
        let _ = fields.append(name, value);
    }
    fields
}

fn read_body(body: &IncomingBody) -> Result<Vec<u8>> {
    let stream = body
        .stream()
        .map_err(|()| Error::internal("the body stream was already taken"))?;
    let bytes = read_stream(&stream)?;
    drop(stream);
    Ok(bytes)
}

fn read_stream(stream: &InputStream) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(Error::bad_request(format!(
                    "reading the body failed: {}",
                    err.to_debug_string()
                )));
            }
        }
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) {
    let stream = body.write().expect("a new body has a stream");
    write_stream(&stream, bytes);
}

fn write_stream(stream: &OutputStream, bytes: &[u8]) {
    // `blocking-write-and-flush` takes at most 4096 bytes per call.
    for chunk in bytes.chunks(4096) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            // The peer went away; nothing left to tell it.
            return;
        }
    }
}

fn percent_decode(text: &str) -> String {
    fn hex_digit(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|digit| digit as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex_digit(bytes[i + 1]).zip(hex_digit(bytes[i + 2])),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (byte, None) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<T: Http> incoming_handler::Guest for T {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let response = Request::from_incoming(request)
            .and_then(T::handle)
            .unwrap_or_else(Response::from);
        response.send(response_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let request = Request::new(Method::Get, "/greet?name=J%C3%BCrg+en&x=%zz&flag");
        assert_eq!(request.path(), "/greet");
        assert_eq!(request.query_param("name").as_deref(), Some("Jürg en"));
        assert_eq!(request.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        assert_eq!(request.query_param("missing"), None);
    }

    #[test]
    fn a_truncated_percent_escape_is_kept_literally() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("1%4"), "1%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("%é1"), "%é1");
    }

    #[test]
    fn outbound_urls_split_into_scheme_authority_and_path() {
        let url = OutboundUrl::parse("https://api.example.com:8443/v1/items?q=1").unwrap();
        assert!(matches!(url.scheme, Scheme::Https));
        assert_eq!(url.authority, "api.example.com:8443");
        assert_eq!(url.path_with_query, "/v1/items?q=1");
        let bare = OutboundUrl::parse("http://example.com").unwrap();
        assert_eq!(bare.path_with_query, "/");
        assert_eq!(
            OutboundUrl::parse("ftp://example.com")
                .err()
                .unwrap()
                .status(),
            400
        );
        assert!(OutboundUrl::parse("example.com/x").is_err());
        assert!(OutboundUrl::parse("http:///x").is_err());
    }
}
