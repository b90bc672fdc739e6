//! Serving the application on a TCP listener with the limits a public server needs, so that a
//! few thousand stalled or slow clients cannot starve everyone else:
//! - a cap on concurrent connections (the process's open-file limit is raised to fit it; past
//!   the cap, new connections wait in the kernel's backlog until a slot frees);
//! - a header read timeout (a client that does not finish its request head is cut);
//! - a body timeout (a request body must arrive whole within it: a slow upload is cut with
//!   408);
//! - an idle timeout (a connection with no request in flight and no bytes moving is closed);
//! - graceful shutdown with a deadline: requests in flight finish, then the process goes on
//!   even if a client is still sending (every write is one transaction, so what is cut off is
//!   rolled back whole).
//!
//! Every request carries the client's address as `ConnectInfo<SocketAddr>`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Connection limits. [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request's head (default 10 s).
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body (default 60 s).
    pub body_timeout: Duration,
    /// A connection with no request in flight and no bytes moving for this long is closed
    /// (default 60 s).
    pub idle_timeout: Duration,
    /// Most connections open at once (default 4,096).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every connection finished after the shutdown signal.
    Drained,
    /// The grace period ran out with requests still in flight; they were cut off.
    Cut,
}

/// The message of a body that took too long (a 408).
const BODY_TIMEOUT: &str = "the request body did not arrive within the server's body timeout";

/// Serve `app` on `listener` until `shutdown` resolves, then let connections finish for up to
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<Ended> {
    raise_open_files(limits.max_connections as u64 + 128);
    let app = app.layer(axum::middleware::from_fn(
        move |req: Request<Body>, next: axum::middleware::Next| async move {
            let req = req.map(|b| Body::new(Deadline::new(b, limits.body_timeout)));
            let resp = next.run(req).await;
            if resp.status() == StatusCode::REQUEST_TIMEOUT {
                let mut resp = resp;
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
            resp
        },
    ));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let all_closed = Arc::new(tokio::sync::Notify::new());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: keep going.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::SeqCst);
        let app = app.clone();
        let stop = stop_rx.clone();
        let open = open.clone();
        let all_closed = all_closed.clone();
        tokio::spawn(async move {
            connection(stream, addr, app, limits, stop).await;
            drop(permit);
            if open.fetch_sub(1, Ordering::SeqCst) == 1 {
                all_closed.notify_waiters();
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = async {
        while open.load(Ordering::SeqCst) > 0 {
            let wait = all_closed.notified();
            if open.load(Ordering::SeqCst) == 0 {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), wait).await;
        }
    };
    Ok(match tokio::time::timeout(grace, drained).await {
        Ok(()) => Ended::Drained,
        Err(_) => Ended::Cut,
    })
}

/// One connection: HTTP/1.1 (or HTTP/2) with the header timeout; closed when idle, and
/// gracefully when the server stops.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let in_flight = Arc::new(AtomicUsize::new(0));
    let svc = {
        let in_flight = in_flight.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let app = app.clone();
            let in_flight = in_flight.clone();
            let activity = activity.clone();
            async move {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(addr));
                let resp = app.oneshot(req).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                activity.touch();
                resp
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(None);
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let idle_for = activity.idle_for();
        let wake = limits.idle_timeout.saturating_sub(idle_for);
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep(wake.max(Duration::from_millis(10))) => {
                if in_flight.load(Ordering::SeqCst) == 0
                    && activity.idle_for() >= limits.idle_timeout
                {
                    // Idle: dropping the connection closes it.
                    return;
                }
            }
        }
    }
}

/// When a connection last moved bytes or finished a request.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_for(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A TCP stream that records activity.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive whole before its deadline.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(inner: Body, after: Duration) -> Self {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(after)),
        }
    }
}

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BODY_TIMEOUT.into())));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(axum::BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body rejection was the body timeout (then it is a 408, not a 400).
pub fn is_body_timeout(text: &str) -> bool {
    text.contains(BODY_TIMEOUT)
}

/// Raise the soft limit on open files towards `want` (never above the hard limit), so the
/// connection cap, not the file limit, is what a flood of connections meets.
#[cfg(unix)]
fn raise_open_files(want: u64) {
    // SAFETY: getrlimit/setrlimit with a valid, initialised struct; no memory is shared.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                tracing::warn!("could not raise the open-file limit");
            }
        }
    }
}

#[cfg(not(unix))]
fn raise_open_files(_: u64) {}
