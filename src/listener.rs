//! The REST and gRPC listeners: one accept loop for both, plain or TLS, that a
//! slow or hostile client cannot starve. A connection must finish a request's
//! head within the header read timeout, may pause at most the body read
//! timeout between body chunks, and is closed after the idle timeout with no
//! request in flight; at most `max_connections` are open at once (the rest
//! wait in the kernel's backlog, [`BACKLOG`] deep: [`bind`]).
//! `raise_open_files_limit` lifts the soft
//! RLIMIT_NOFILE to the hard one, so a low default does not cap the listener.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The listeners' timeouts and connection cap (`[server]` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From waiting for a request (a new connection, or after a response)
    /// and its first byte, to its whole head (TLS handshake included).
    pub header_read_timeout: Duration,
    /// The longest pause between two chunks of a request body.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and nothing sent is closed after this.
    pub idle_timeout: Duration,
    /// Connections open at once, per listener.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            max_connections: 1024,
        }
    }
}

/// Connections the kernel holds until the accept loop takes them. std's and
/// tokio's `bind` ask for 128: a burst of 1,000 applies at once overflowed
/// that on 2 busy cores, and the kernel dropped the connections past it, which
/// their clients tried again a second later (`cargo bench --bench scale`: up
/// to 290 of the applies ended 0.8 s after the rest in 3 runs of 5). As deep
/// as the default `max_connections`; the kernel caps it at
/// `net.core.somaxconn`.
pub const BACKLOG: u32 = 1024;

/// A listener on `addr` with a [`BACKLOG`]-deep accept queue (and
/// SO_REUSEADDR off Windows, as tokio's `bind` sets, so a restart can bind
/// at once).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As mio does: on Windows the flag would let another process take the port.
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Raises the soft open-files limit to the hard one; answers the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// What the watchdog of one connection knows: requests in flight, and when
/// the connection last went idle or started sending a request head.
struct Activity {
    started: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `started` of the last change to idle (0: never busy).
    idle_since_ms: AtomicU64,
    /// Milliseconds since `started` + 1 of the first byte read while idle (0: none).
    head_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let _ = self.head_since_ms.compare_exchange(
                0,
                self.now_ms() + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since_ms.store(0, Ordering::Release);
    }

    fn request_done(&self) {
        self.idle_since_ms.store(self.now_ms(), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection is to be closed now, if it is.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now_ms();
        let head = self.head_since_ms.load(Ordering::Acquire);
        if head > 0 {
            let since = now.saturating_sub(head - 1);
            return (since > limits.header_read_timeout.as_millis() as u64)
                .then_some("request head not read within the header read timeout");
        }
        let idle = now.saturating_sub(self.idle_since_ms.load(Ordering::Acquire));
        (idle > limits.idle_timeout.as_millis() as u64).then_some("idle past the idle timeout")
    }
}

/// The connection's IO, telling the watchdog when bytes arrive.
struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that tells the watchdog when the request is over.
struct Tracked {
    inner: axum::body::Body,
    done: Option<Arc<Activity>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(a) = self.done.take() {
            a.request_done();
        }
    }
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = polled
            && let Some(a) = self.done.take()
        {
            a.request_done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) within `limits`, until
/// `shutdown` resolves; connections then in progress finish on their own.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_read_timeout,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => return Ok(()),
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (or another passing failure): wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let activity = Activity::new();
            let io = Watched {
                inner: tcp,
                activity: activity.clone(),
            };
            let served = match acceptor {
                None => connection(io, app, activity, limits).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io))
                        .await
                    {
                        Ok(Ok(tls)) => connection(tls, app, activity, limits).await,
                        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
                        Err(_) => {
                            Err("TLS handshake not done within the header read timeout".into())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
}

/// One connection, HTTP/1.1 or HTTP/2 as the client speaks, closed by the
/// watchdog when it stalls.
async fn connection<I>(
    io: I,
    app: axum::Router,
    activity: Arc<Activity>,
    limits: Limits,
) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt as _;
    let tracker = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        let tracker = tracker.clone();
        async move {
            tracker.request_started();
            let res = app
                .oneshot(req.map(axum::body::Body::new))
                .await
                .unwrap_or_else(|never| match never {});
            Ok::<_, std::convert::Infallible>(res.map(|body| Tracked {
                inner: body,
                done: Some(tracker),
            }))
        }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            done = conn.as_mut() => return done.map_err(|e| e.to_string()),
            _ = tick.tick() => {
                if let Some(why) = activity.expired(&limits) {
                    // Dropping the connection closes the socket.
                    return Err(why.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        }
    }

    /// 200 clients connect to a listener that accepts none: every one is
    /// held in the backlog at once. With 128 (what `TcpListener::bind`
    /// asks for) the kernel drops the SYNs past it, and those connects
    /// wait a second for their retry.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog_rather_than_being_dropped() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096);
        let clients = 200.min(somaxconn.saturating_sub(8));
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..clients).map(|_| {
            tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let results = futures_util::future::join_all(connects).await;
        let held = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(held, clients, "connections held without an accept");
        drop(listener);
    }

    #[test]
    fn a_quiet_connection_expires_after_the_idle_timeout() {
        let a = Activity::new();
        assert_eq!(a.expired(&limits()), None);
        std::thread::sleep(Duration::from_millis(350));
        assert!(a.expired(&limits()).is_some_and(|w| w.contains("idle")));
    }

    #[test]
    fn a_head_started_must_end_within_the_header_read_timeout() {
        let a = Activity::new();
        a.read_some();
        std::thread::sleep(Duration::from_millis(150));
        assert!(a.expired(&limits()).is_some_and(|w| w.contains("head")));
        // Once the head is read, the request in flight keeps the connection.
        a.request_started();
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(a.expired(&limits()), None);
        a.request_done();
        assert_eq!(a.expired(&limits()), None);
    }
}
