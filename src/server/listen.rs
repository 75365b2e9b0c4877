//! Accepting connections: TLS, the connection limit, header and idle
//! timeouts, and closing connections gracefully on shutdown.
//!
//! hyper's own `header_read_timeout` starts whenever a connection waits for
//! a request head, idle keep-alive connections included, so it would close
//! those after the header timeout instead of the idle timeout. Each
//! connection here has a watchdog instead, which tells the two apart.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

use super::tls::TlsConfig;

/// How long a connection may take over each phase of its life.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accepting a connection, or from the first byte of a request on
    /// a kept-alive one, to its complete request head (the TLS handshake
    /// included); past it the connection is closed.
    pub header: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle: Duration,
    /// From a complete request head to the answer; past it the answer is 503.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(30),
            idle: Duration::from_secs(300),
            request: Duration::from_secs(30),
        }
    }
}

/// File descriptors kept out of the connection limit, for the log, its
/// lock, the listener, the runtime's own descriptors and maintenance work.
const RESERVED_FILES: u64 = 64;

/// Raises the soft open-file limit as far as the hard one allows and
/// returns the soft limit in force, or an error if it cannot be read.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        // An unlimited hard limit is not a value the kernel accepts for
        // the soft one; fs.nr_open is the most it takes.
        let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
            .unwrap_or(1 << 20);
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max.min(ceiling),
            rlim_max: limit.rlim_max,
        };
        if raised.rlim_cur > limit.rlim_cur {
            // SAFETY: setrlimit only reads the struct we pass.
            let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
            if rc == 0 {
                limit.rlim_cur = raised.rlim_cur;
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// The most connections the process can hold open with `open_files`
/// descriptors, keeping some for everything else.
pub fn connection_capacity(open_files: u64) -> usize {
    let capacity = open_files
        .saturating_sub(RESERVED_FILES)
        .max(open_files / 2)
        .max(1);
    usize::try_from(capacity).unwrap_or(usize::MAX)
}

/// How connections are accepted and served.
pub(super) struct Acceptor {
    pub(super) router: Router,
    pub(super) tls: Option<TlsConfig>,
    pub(super) timeouts: Timeouts,
    pub(super) max_connections: usize,
}

impl Acceptor {
    /// Accepts connections until `stopping` turns true, then asks every open
    /// connection to close after its request in flight, and returns once
    /// all are closed.
    pub(super) async fn run(self, listener: TcpListener, mut stopping: watch::Receiver<bool>) {
        let acceptor = Arc::new(self);
        let slots = Arc::new(Semaphore::new(acceptor.max_connections));
        let mut warned_full: Option<Instant> = None;
        loop {
            // Waiting for a slot before accepting leaves connections over
            // the limit in the kernel's backlog, where they cost the
            // process no descriptor, instead of failing accept() for all.
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                _ = stopping.wait_for(|stop| *stop) => break,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopping.wait_for(|stop| *stop) => break,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of descriptors or memory: give the process time
                    // to close some rather than spin.
                    tracing::warn!("accept error: {err}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stopping.wait_for(|stop| *stop) => break,
                    }
                }
            };
            if slots.available_permits() == 0
                && warned_full.is_none_or(|at| at.elapsed() > Duration::from_secs(60))
            {
                warned_full = Some(Instant::now());
                tracing::warn!(
                    "{} connections open, the limit (--max-connections): new connections wait until one closes",
                    acceptor.max_connections
                );
            }
            let _ = tcp.set_nodelay(true);
            let (acceptor, stopping) = (acceptor.clone(), stopping.clone());
            tokio::spawn(async move {
                acceptor.connection(tcp, peer, stopping).await;
                drop(permit);
            });
        }
        drop(listener);
        let all = u32::try_from(acceptor.max_connections).unwrap_or(u32::MAX);
        let _ = slots.acquire_many(all).await;
    }

    /// Serves one connection, over TLS if configured.
    async fn connection(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        mut stopping: watch::Receiver<bool>,
    ) {
        let Some(tls) = &self.tls else {
            return self.http(tcp, peer, stopping).await;
        };
        let handshake = tokio::time::timeout(self.timeouts.header, tls.acceptor.accept(tcp));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => {
                    // Plain HTTP to this port ends here, and so do scanners:
                    // not worth more than a debug line.
                    tracing::debug!("TLS handshake with {peer} failed: {err}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake with {peer} not done within {:?}", self.timeouts.header);
                    return;
                }
            },
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        self.http(stream, peer, stopping).await
    }

    /// Serves HTTP/1.1 on an established stream until it closes, a timeout
    /// closes it, or shutdown lets its last request finish.
    async fn http<I>(&self, io: I, peer: SocketAddr, mut stopping: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let service = {
            let (router, activity) = (self.router.clone(), activity.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let busy = Busy::begin(activity.clone());
                let mut router = router.clone();
                async move {
                    let response = router.call(request).await;
                    // Busy until the body is sent: a long stream (a snapshot)
                    // is neither idle nor waiting for a request head.
                    response.map(|response| response.map(|inner| BusyBody { inner, _busy: busy }))
                }
            })
        };
        let io = TokioIo::new(WatchedIo {
            inner: io,
            activity: activity.clone(),
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.header_read_timeout(None);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!("connection from {peer}: {err}");
                }
                return;
            }
            reason = activity.watchdog(&self.timeouts) => {
                tracing::debug!("closing the connection from {peer}: {reason}");
                return;
            }
            _ = stopping.wait_for(|stop| *stop) => {}
        }
        conn.as_mut().graceful_shutdown();
        if let Err(err) = conn.await {
            tracing::debug!("connection from {peer}: {err}");
        }
    }
}

/// Errors of one incoming connection, not of the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What a connection is doing, for its watchdog. Times are nanoseconds
/// since the connection was accepted, plus one so zero can mean "none".
struct Activity {
    accepted: Instant,
    /// Requests whose answer is being worked out.
    busy: AtomicUsize,
    /// When the first byte of a request head not yet complete arrived.
    head_started: AtomicU64,
    /// When the connection last became idle.
    idle_since: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            accepted: Instant::now(),
            busy: AtomicUsize::new(0),
            // A new connection owes its first request head from the start.
            head_started: AtomicU64::new(1),
            idle_since: AtomicU64::new(1),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, stamp: u64) -> Instant {
        self.accepted + Duration::from_nanos(stamp - 1)
    }

    /// Bytes arrived: if no request is being handled, a new head has begun.
    fn read(&self) {
        if self.busy.load(Ordering::Relaxed) == 0 && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(self.now(), Ordering::Relaxed);
        }
    }

    /// When, and why, the connection is to be closed if nothing changes.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, &'static str)> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Relaxed) {
            0 => Some((
                self.at(self.idle_since.load(Ordering::Relaxed)) + timeouts.idle,
                "idle for the idle timeout",
            )),
            started => Some((
                self.at(started) + timeouts.header,
                "no complete request head within the header timeout",
            )),
        }
    }

    /// Resolves when the connection has overstayed a timeout.
    ///
    /// It wakes up at least once per the shorter timeout rather than at every
    /// change of state, which would cost a wake-up per request: a head that
    /// begins while it sleeps cannot be due before that next wake-up.
    async fn watchdog(&self, timeouts: &Timeouts) -> &'static str {
        loop {
            let now = Instant::now();
            let recheck = now + timeouts.header.min(timeouts.idle);
            match self.deadline(timeouts) {
                Some((due, reason)) if due <= now => return reason,
                Some((due, _)) => tokio::time::sleep_until(due.min(recheck).into()).await,
                None => tokio::time::sleep_until(recheck.into()).await,
            }
        }
    }
}

/// A request being handled, from its complete head until its answer is
/// ready (or the request is dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        activity.head_started.store(0, Ordering::Relaxed);
        Busy(activity)
    }
}

/// A response body that keeps its request [`Busy`] until it is sent or dropped.
struct BusyBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Relaxed);
        activity.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that tells its connection's [`Activity`] when bytes arrive.
struct WatchedIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for WatchedIo<I> {
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

impl<I: AsyncWrite + Unpin> AsyncWrite for WatchedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_other_files() {
        assert_eq!(connection_capacity(1024), 960);
        assert_eq!(connection_capacity(100), 50);
        assert_eq!(connection_capacity(1), 1);
        assert_eq!(connection_capacity(0), 1);
    }

    #[test]
    fn the_open_file_limit_is_raised_toward_the_hard_limit() {
        let limits = || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the struct we pass and nothing else.
            let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
            assert_eq!(rc, 0);
            limit
        };
        let before = limits();
        let soft = raise_open_file_limit().unwrap();
        let after = limits();
        assert_eq!(
            after.rlim_cur, soft,
            "the limit reported is the one in force"
        );
        assert!(soft >= before.rlim_cur && soft <= after.rlim_max);
    }

    #[test]
    fn a_head_is_due_after_the_header_timeout_and_idleness_after_the_idle_one() {
        let timeouts = Timeouts {
            header: Duration::from_secs(1),
            idle: Duration::from_secs(100),
            request: Duration::from_secs(1),
        };
        let activity = Arc::new(Activity::new());
        let (due, reason) = activity.deadline(&timeouts).unwrap();
        assert!(reason.contains("header"), "a new connection owes a head");
        assert!(due <= Instant::now() + timeouts.header);

        let busy = Busy::begin(activity.clone());
        activity.read(); // body bytes do not start a head
        assert!(activity.deadline(&timeouts).is_none());
        drop(busy);
        let (due, reason) = activity.deadline(&timeouts).unwrap();
        assert!(reason.contains("idle"), "{reason}");
        assert!(due > Instant::now() + Duration::from_secs(50));

        activity.read();
        let (due, reason) = activity.deadline(&timeouts).unwrap();
        assert!(reason.contains("header"), "{reason}");
        assert!(due <= Instant::now() + timeouts.header);
    }
}
