//! Traces exported over OTLP to a collector stand-in on 127.0.0.1: a request continues the
//! trace its caller sent in `traceparent`, and its work shows as child spans.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use super::{RunningServer, package, temp_dir};

/// An OTLP/HTTP collector that keeps every span it is sent (protobuf, `POST /v1/traces`).
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&spans);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || serve_exports(stream, &kept));
            }
        });
        Collector { port, spans }
    }

    /// Waits until a span satisfies `wanted`, and answers every span then received.
    fn wait_for(&self, wanted: impl Fn(&Span) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if spans.iter().any(&wanted) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "no such span among {:?}",
                spans.iter().map(|span| &span.name).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Answers the export requests of one connection, keeping their spans.
fn serve_exports(stream: TcpStream, kept: &Mutex<Vec<Span>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(
            request_line.starts_with("POST /v1/traces "),
            "{request_line}"
        );
        let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        let mut spans = kept.lock().unwrap();
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        drop(spans);
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(value) => Some(value.as_str()),
                _ => None,
            },
        )
}

/// The spans of `spans` whose parent is `parent`.
fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|span| span.trace_id == parent.trace_id && span.parent_span_id == parent.span_id)
        .collect()
}

#[test]
fn a_request_continues_its_callers_trace_and_a_publish_shows_its_steps() {
    let collector = Collector::start();
    let dir = temp_dir();
    let endpoint = format!("http://127.0.0.1:{}", collector.port);
    let server = RunningServer::start_with(
        &dir.path().join("data"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("AERIE_REQUIRE_SIGNATURE", "false"),
        ],
    );

    // A search with the caller's trace: its span is the caller's child, the index's work its.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        stream,
        "GET /api/v1/search?q=hello HTTP/1.1\r\nhost: 127.0.0.1\r\ntraceparent: 00-{trace}-{caller_span}-01\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let spans = collector.wait_for(|span| span.name == "search" && hex(&span.trace_id) == trace);
    let request = spans
        .iter()
        .find(|span| span.name == "request" && hex(&span.trace_id) == trace)
        .expect("the request's span");
    assert_eq!(hex(&request.parent_span_id), caller_span);
    // SPAN_KIND_SERVER
    assert_eq!(request.kind, 2);
    assert_eq!(attribute(request, "method"), Some("GET"));
    assert_eq!(attribute(request, "path"), Some("/api/v1/search"));
    assert!(attribute(request, "request_id").is_some_and(|id| !id.is_empty()));
    let search = children(&spans, request);
    assert!(
        search
            .iter()
            .any(|span| span.name == "search" && attribute(span, "q") == Some("hello")),
        "{search:?}"
    );

    // A publish with no trace of its caller's starts one: receive, validate, store, record and
    // index under it, the database's statements under the record.
    let run = |args: &[&str]| server.aerie(args, dir.path()).success();
    run(&["login"]);
    run(&["namespace", "create", "examples"]);
    std::fs::copy(package("hello"), dir.path().join("hello.aerie")).unwrap();
    run(&["publish", "hello.aerie"]);
    let spans = collector.wait_for(|span| span.name == "publish.index");
    let publish = spans
        .iter()
        .find(|span| span.name == "publish")
        .expect("the publish span");
    assert_eq!(attribute(publish, "plugin"), Some("examples/hello@0.1.0"));
    let request = spans
        .iter()
        .find(|span| span.span_id == publish.parent_span_id)
        .expect("the publish's request");
    assert_eq!(request.name, "request");
    assert!(request.parent_span_id.is_empty(), "a new trace");
    let steps: Vec<&str> = children(&spans, publish)
        .iter()
        .map(|span| span.name.as_str())
        .collect();
    for step in [
        "publish.receive",
        "publish.validate",
        "publish.store",
        "publish.record",
        "publish.index",
    ] {
        assert!(steps.contains(&step), "{step} in {steps:?}");
    }
    let record = children(&spans, publish)
        .into_iter()
        .find(|span| span.name == "publish.record")
        .unwrap();
    assert!(
        children(&spans, record)
            .iter()
            .any(|span| span.name == "db.publish_version"),
        "{:?}",
        children(&spans, record)
    );
}
