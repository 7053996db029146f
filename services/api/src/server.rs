//! Building the service and serving it with graceful shutdown.

use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::request_id::request_id;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

/// The complete application: all services, request ids, body limits.
/// Not `/metrics`: that is served only on `[api] metrics_listen`.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let (router, _spec) = crate::openapi::api_router().split_for_parts();
    router
        .fallback(|| async {
            render_faults(
                Service::Compute,
                ApiError::new(
                    FaultKind::NotFound(None),
                    "The resource could not be found: unknown path. Services are under \
                     /identity, /compute, /image and /network.",
                )
                .into_response(),
            )
            .await
        })
        // The guests' metadata API: signed by the data plane's proxies,
        // not in the OpenAPI document.
        .merge(crate::metadata::router())
        // The serial console proxy: a websocket, not in the OpenAPI document.
        .merge(crate::console_proxy::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::idempotency,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// A running API server.
pub struct ServeHandle {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when `[api] metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Completes when the server has stopped.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `state` on `listener` until `shutdown` resolves, then finishes
/// in-flight requests. Paths are accepted with or without a trailing slash.
///
/// Connections are bounded as `[api]` says ([`ConnectionLimits`]): a
/// client gets `header_read_timeout_secs` to send a request's headers and
/// a kept-alive connection is closed after `idle_timeout_secs` without a
/// request; at `max_connections` a new connection closes the longest-idle
/// one (or waits briefly for one to end, and is closed if none does), so
/// idle or slow clients can neither lock others out nor exhaust the
/// process's descriptors. `/metrics` is served on `metrics_listen` only.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<ServeHandle> {
    let addr = listener.local_addr()?;
    let limits = ConnectionLimits::from_config(state.config())?;
    let metrics = match state.config().metrics_listen {
        Some(at) => {
            let l = std::net::TcpListener::bind(at)
                .map_err(|e| io::Error::new(e.kind(), format!("metrics_listen {at}: {e}")))?;
            l.set_nonblocking(true)?;
            Some(TcpListener::from_std(l)?)
        }
        None => None,
    };
    let metrics_addr = match &metrics {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let sweep = crate::image::sweep::spawn(&state);
    let app = NormalizePathLayer::trim_trailing_slash().layer(app(state).layer(from_fn(track)));
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        Conn,
    >(app);
    let main = Limited::new(listener, limits, "api");
    let metrics = metrics.map(|l| {
        // Scrapers need a connection or two; the rest of the budget is the
        // API's.
        let limits = ConnectionLimits {
            max_connections: METRICS_CONNECTIONS,
            ..limits
        };
        Limited::new(l, limits, "metrics")
    });
    let task = tokio::spawn(async move {
        let metrics = metrics.map(|l| {
            tokio::spawn(
                async move { axum::serve(l, cloud_service_common::metrics::router()).await },
            )
        });
        let served = axum::serve(main, service)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(m) = metrics {
            m.abort();
        }
        drop(sweep);
        served
    });
    Ok(ServeHandle {
        addr,
        metrics_addr,
        task,
    })
}

/// Connections the metrics listener takes at once.
const METRICS_CONNECTIONS: usize = 8;

/// How long a connection beyond the cap waits for a slot (after asking
/// the longest-idle connection to close) before it is closed.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Descriptors kept out of the connection budget for everything else the
/// process opens (database, image files, the bus, the metrics listener):
/// a quarter of the limit, at least this many.
const RESERVED_DESCRIPTORS: usize = 64;

/// How the server bounds its connections (`[api]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectionLimits {
    /// Longest a request's headers may take to arrive, from their first
    /// byte (from connecting, for a connection's first request).
    pub header_read_timeout: Duration,
    /// Longest a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// The limits `config` asks for, the cap lowered to what the process's
    /// open-file limit allows (with a warning).
    pub fn from_config(config: &crate::ApiConfig) -> io::Result<Self> {
        let secs = |name: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("[api] {name} must be a positive number of seconds, not {v}"),
                    )
                })
        };
        if config.max_connections == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "[api] max_connections must be at least 1",
            ));
        }
        let mut max_connections = config.max_connections;
        if let Some(budget) = descriptor_budget()
            && budget < max_connections
        {
            tracing::warn!(
                configured = max_connections,
                lowered_to = budget,
                "max_connections lowered to fit the open-file limit (RLIMIT_NOFILE); \
                 raise it (systemd: LimitNOFILE) to allow more"
            );
            max_connections = budget;
        }
        Ok(ConnectionLimits {
            header_read_timeout: secs("header_read_timeout_secs", config.header_read_timeout_secs)?,
            idle_timeout: secs("idle_timeout_secs", config.idle_timeout_secs)?,
            max_connections,
        })
    }
}

/// Connections the open-file limit leaves room for, or `None` when it is
/// unknown or unlimited.
fn descriptor_budget() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files  <soft>  <hard>  files"
    let soft: usize = line.split_whitespace().nth(3)?.parse().ok()?;
    let reserve = (soft / 4).max(RESERVED_DESCRIPTORS);
    Some(soft.saturating_sub(reserve).max(1))
}

/// Why the server closed a connection (the metric's label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// Its request headers did not arrive in time.
    HeaderTimeout,
    /// No request came in time.
    IdleTimeout,
    /// Idle, and closed to make room for a new connection at the cap.
    Evicted,
}

impl Closing {
    fn label(self) -> &'static str {
        match self {
            Closing::HeaderTimeout => "header_timeout",
            Closing::IdleTimeout => "idle_timeout",
            Closing::Evicted => "evicted",
        }
    }
}

fn count_closed(listener: &'static str, reason: &'static str) {
    cloud_service_common::metrics::count(
        "cloud_api_connections_closed_total",
        "Client connections the server closed before the client did, by reason.",
        &[("listener", listener), ("reason", reason)],
        1,
    );
}

/// What one connection is doing, shared by its I/O (which closes it when
/// a timeout passes) and its requests (which keep it busy).
struct ConnState {
    /// Requests in progress (until their response bodies are sent).
    busy: usize,
    /// When it last became idle (accepted, or its last response sent).
    idle_since: Instant,
    /// When the request being read started to arrive (its first byte; the
    /// accept time for a connection's first request).
    reading_since: Option<Instant>,
    /// Set when the server has decided to close it.
    closing: Option<Closing>,
    /// The connection task, woken when its deadline changes.
    waker: Option<Waker>,
}

struct Shared {
    id: u64,
    state: Mutex<ConnState>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request started: no timeout runs until it is answered.
    fn begin(self: &Arc<Self>) -> Busy {
        let mut s = self.lock();
        s.busy += 1;
        s.reading_since = None;
        Busy(self.clone())
    }
}

impl ConnState {
    /// When the connection is to be closed unless something happens, and
    /// why; `None` while a request is in progress.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, Closing)> {
        if self.busy > 0 {
            return None;
        }
        Some(match self.reading_since {
            Some(t) => (t + limits.header_read_timeout, Closing::HeaderTimeout),
            None => (self.idle_since + limits.idle_timeout, Closing::IdleTimeout),
        })
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// A request in progress on a connection; dropped with its response body.
struct Busy(Arc<Shared>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.busy -= 1;
        if s.busy == 0 {
            s.idle_since = Instant::now();
            s.reading_since = None;
            // The idle timeout starts now: let the connection arm it.
            s.wake();
        }
    }
}

/// The open connections of a listener, to pick one to evict.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Shared>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Shared>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the connection idle the longest (no request in progress) to
    /// close; false if every connection is busy.
    fn evict_idlest(&self) -> bool {
        let conns = self.lock();
        let mut idlest: Option<(Instant, &Arc<Shared>)> = None;
        for c in conns.values() {
            let s = c.lock();
            if s.busy > 0 || s.closing.is_some() {
                continue;
            }
            let since = s.idle_since;
            if idlest.is_none_or(|(t, _)| since < t) {
                idlest = Some((since, c));
            }
        }
        match idlest {
            Some((_, c)) => {
                let mut s = c.lock();
                s.closing = Some(Closing::Evicted);
                s.wake();
                true
            }
            None => false,
        }
    }
}

/// A TCP listener that bounds its connections ([`ConnectionLimits`]).
struct Limited {
    inner: TcpListener,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    registry: Arc<Registry>,
    next_id: u64,
    name: &'static str,
    last_warning: Option<Instant>,
}

impl Limited {
    fn new(inner: TcpListener, limits: ConnectionLimits, name: &'static str) -> Self {
        Limited {
            inner,
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            registry: Arc::default(),
            next_id: 0,
            name,
            last_warning: None,
        }
    }

    /// Logs `what` at most every 10 s (an attack must not flood the log).
    fn warn(&mut self, what: &str) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
        {
            self.last_warning = Some(now);
            tracing::warn!(listener = self.name, "{what}");
        }
    }

    /// A slot for a new connection: free, freed by evicting the
    /// longest-idle connection, or freed within [`QUEUE_WAIT`].
    async fn slot(&mut self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Some(p);
        }
        if self.registry.evict_idlest() {
            count_closed(self.name, Closing::Evicted.label());
        }
        match tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Some(p),
            _ => None,
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = LimitedIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, remote) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) {
                        // Out of descriptors (other files count too):
                        // free one, and do not spin.
                        self.registry.evict_idlest();
                        self.warn(&format!("accept error: {e}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            };
            let Some(slot) = self.slot().await else {
                // Every connection is busy: this one is closed at once
                // (dropped), the others keep being served.
                count_closed(self.name, "over_capacity");
                self.warn(&format!(
                    "{} connections in progress (max_connections): closing new ones",
                    self.limits.max_connections
                ));
                continue;
            };
            self.next_id += 1;
            let now = Instant::now();
            let shared = Arc::new(Shared {
                id: self.next_id,
                state: Mutex::new(ConnState {
                    busy: 0,
                    idle_since: now,
                    reading_since: Some(now),
                    closing: None,
                    waker: None,
                }),
            });
            self.registry.lock().insert(shared.id, shared.clone());
            let io = LimitedIo {
                stream,
                shared,
                limits: self.limits,
                timer: Box::pin(tokio::time::sleep_until(now)),
                timer_at: None,
                registry: self.registry.clone(),
                name: self.name,
                _slot: slot,
            };
            return (io, remote);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`Limited`] listener. When its deadline passes with
/// no request in progress, or it is evicted, reads end (EOF), so the HTTP
/// server closes it; dropping it frees its slot.
struct LimitedIo {
    stream: TcpStream,
    shared: Arc<Shared>,
    limits: ConnectionLimits,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    registry: Arc<Registry>,
    name: &'static str,
    _slot: OwnedSemaphorePermit,
}

impl LimitedIo {
    /// With the socket not readable: whether the connection is (now) to
    /// be closed; otherwise arms the timer for its deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let mut s = self.shared.lock();
            if s.closing.is_some() {
                return true;
            }
            if s.waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                s.waker = Some(cx.waker().clone());
            }
            let Some((at, why)) = s.deadline(&self.limits) else {
                return false;
            };
            if Instant::now() >= at {
                s.closing = Some(why);
                drop(s);
                count_closed(self.name, why.label());
                return true;
            }
            drop(s);
            if self.timer_at != Some(at) {
                self.timer.as_mut().reset(at);
                self.timer_at = Some(at);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The deadline passed meanwhile: look again.
        }
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.lock().closing.is_some() {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let mut s = this.shared.lock();
                    if s.busy == 0 && s.reading_since.is_none() {
                        // A request starts to arrive: the header timeout
                        // runs from now.
                        s.reading_since = Some(Instant::now());
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Drop for LimitedIo {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.shared.id);
    }
}

/// The connection a request came on (its `ConnectInfo`).
#[derive(Clone)]
struct Conn {
    remote: SocketAddr,
    shared: Arc<Shared>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Limited>> for Conn {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Limited>) -> Self {
        Conn {
            remote: *stream.remote_addr(),
            shared: stream.io().shared.clone(),
        }
    }
}

/// Keeps the connection of the request it came with counted busy while a
/// clone is held, so no idle or header timeout closes it: a websocket
/// session (the serial console proxy) outlives its `101` response.
#[derive(Clone)]
pub struct ConnectionHold(#[allow(dead_code)] Arc<Busy>);

/// Marks the request's connection busy until its response body has been
/// sent (no timeout cuts a request short), and offers the peer address as
/// `ConnectInfo<SocketAddr>` and the busy mark as a [`ConnectionHold`].
async fn track(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(conn) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<Conn>>()
        .map(|c| c.0.clone())
    else {
        return next.run(req).await;
    };
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(conn.remote));
    let busy = Arc::new(conn.shared.begin());
    req.extensions_mut().insert(ConnectionHold(busy.clone()));
    let response = next.run(req).await;
    // `inspect_frame` keeps the body's size hint, so responses keep their
    // `Content-Length` (a mapped body would be sent chunked).
    response.map(|body| {
        use http_body_util::BodyExt;
        axum::body::Body::new(body.inspect_frame(move |_| {
            let _busy = &busy;
        }))
    })
}
