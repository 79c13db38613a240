//! Accepting connections under limits, so that slow or idle clients cannot hold the server.
//!
//! HTTP/1.1 over hyper, with four bounds ([`ConnectionLimits`]): at most `max_connections` at
//! once (the next waits in the listen backlog); a request head must arrive within
//! `header_timeout` of its first byte; a connection with no request in flight and no bytes
//! moving, or whose response the client stops reading, is closed after `idle_timeout`; a
//! request body must arrive within `body_timeout`, and never pause longer than
//! `idle_timeout`. Time spent answering (a slow plugin) is not idleness: plugin calls have
//! their own deadlines.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;
use tower_http::timeout::{DeadlineBody, TimeoutBody};

/// How long and how many connections the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// From a request's first byte to the end of its head.
    pub header_timeout: Duration,
    /// How long a connection may sit with no request in flight and nothing moving, or with a
    /// response the client does not read; also the longest pause within a request body.
    pub idle_timeout: Duration,
    /// From a request's head to the end of its body.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(300),
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets the requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    app: crate::App,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses go out in one write; Nagle's delay only holds back the next one.
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = connection_service(app.clone(), peer, Arc::clone(&activity), limits);
        let connection = hyper::server::conn::http1::Builder::new().serve_connection(
            TokioIo::new(WatchedStream {
                inner: stream,
                activity: Arc::clone(&activity),
            }),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                outcome = connection => if let Err(err) = outcome {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                },
                reason = watchdog(&activity, limits) => {
                    tracing::debug!(%peer, reason, "connection closed");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The service one connection's requests go to: the app, told the peer's address, with the
/// request body's deadlines and the in-flight count kept.
fn connection_service(
    app: crate::App,
    peer: SocketAddr,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
) -> impl tower::Service<
    axum::http::Request<Incoming>,
    Response = axum::http::Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: axum::http::Request<Incoming>| {
        let app = app.clone();
        let activity = Arc::clone(&activity);
        activity.request_started();
        // A body's deadlines are set only when there is a body (a GET has none).
        let mut request = request.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(DeadlineBody::new(
                    limits.body_timeout,
                    TimeoutBody::new(limits.idle_timeout, body),
                ))
            }
        });
        request.extensions_mut().insert(ConnectInfo(peer));
        async move {
            let in_flight = InFlight(activity);
            let response = app.oneshot(request).await?;
            Ok(response.map(|body| Body::new(CountedBody { body, in_flight })))
        }
    })
}

/// What the watchdog reads to decide whether a connection has overstayed.
struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last byte read or written.
    last_io: AtomicU64,
    /// When the current request's first byte arrived, if its head is still being read.
    head_since: AtomicU64,
    /// When a write started waiting for the client to read, if one is waiting.
    write_blocked_since: AtomicU64,
    /// Requests whose response has not been written out.
    in_flight: AtomicUsize,
}

const NEVER: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(NEVER),
            write_blocked_since: AtomicU64::new(NEVER),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NEVER, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
        self.write_blocked_since.store(NEVER, Ordering::Relaxed);
    }

    fn write_blocked(&self) {
        let now = self.now();
        let _ = self.write_blocked_since.compare_exchange(
            NEVER,
            now,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NEVER, Ordering::Relaxed);
    }

    fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Why the connection must close at `now` (milliseconds since it was accepted), or how
    /// long until it might have to.
    fn check(&self, now: u64, limits: ConnectionLimits) -> Result<Duration, &'static str> {
        let ms = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(NEVER - 1);
        let mut deadlines = Vec::with_capacity(3);
        let head_since = self.head_since.load(Ordering::Relaxed);
        if head_since != NEVER {
            deadlines.push((
                head_since + ms(limits.header_timeout),
                "request head too slow",
            ));
        }
        let write_blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if write_blocked != NEVER {
            deadlines.push((write_blocked + ms(limits.idle_timeout), "response not read"));
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 && head_since == NEVER {
            let last = self.last_io.load(Ordering::Relaxed);
            deadlines.push((last + ms(limits.idle_timeout), "idle"));
        }
        match deadlines.into_iter().min() {
            Some((at, reason)) if at <= now => Err(reason),
            Some((at, _)) => Ok(Duration::from_millis(at - now)),
            // A request is being answered: look again later.
            None => Ok(limits.idle_timeout),
        }
    }
}

/// Resolves with the reason once the connection has overstayed one of its limits.
async fn watchdog(activity: &Activity, limits: ConnectionLimits) -> &'static str {
    loop {
        match activity.check(activity.now(), limits) {
            Ok(wait) => tokio::time::sleep(wait).await,
            Err(reason) => return reason,
        }
    }
}

/// Counts a request as in flight until its response body is dropped (written out or
/// abandoned).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request counted as in flight.
struct CountedBody {
    body: Body,
    in_flight: InFlight,
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let _ = &self.in_flight;
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The TCP stream, telling [`Activity`] when bytes move and when a write waits.
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl WatchedStream {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(_) => self.activity.wrote(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 1,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn a_request_head_that_trickles_in_is_cut_at_the_header_timeout() {
        // Timestamps are milliseconds since the connection was accepted; the test reads the
        // verdict at chosen moments instead of waiting for them.
        let activity = Activity::new();
        activity.read();
        assert!(activity.check(9_000, limits()).is_ok());
        // Bytes keep coming, but the head's clock started at its first byte.
        activity.read();
        assert_eq!(
            activity.check(10_100, limits()),
            Err("request head too slow")
        );
        activity.request_started();
        assert!(activity.check(10_100, limits()).is_ok());
    }

    #[test]
    fn an_idle_connection_closes_but_a_slow_answer_does_not() {
        let activity = Activity::new();
        assert_eq!(activity.check(60_100, limits()), Err("idle"));
        activity.read();
        activity.request_started();
        // The plugin takes its time: nothing moves, but a request is in flight.
        assert!(activity.check(120_000, limits()).is_ok());
        activity.write_blocked();
        assert_eq!(activity.check(60_100, limits()), Err("response not read"));
        activity.wrote();
        activity.request_finished();
        assert!(activity.check(59_000, limits()).is_ok());
        assert_eq!(activity.check(60_100, limits()), Err("idle"));
    }
}
