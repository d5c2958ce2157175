//! Binding and serving, shared by every HTTP service: bind first (port 0 allowed) and
//! report the real address, serve later until a token is cancelled.
//!
//! The accept loop is written here rather than taken from `axum::serve`, which offers
//! no way to set hyper's connection options: a public listener needs a deadline for a
//! request's head (a connection that sends nothing, or a head byte by byte, must not
//! stay open forever) and a cap on open connections per client address. Connections
//! are hyper's HTTP/1.1 with upgrades when `http1_only` (the public listener: hyper-util's
//! `auto` builder first waits, with no deadline, for the bytes that tell HTTP/2 from
//! HTTP/1.1), else hyper-util's `auto` builder (h2c too, for gRPC). On shutdown each
//! connection is asked to finish gracefully, as `axum::serve` does, and the loop waits
//! for all of them.
//!
//! A listener given a TLS configuration (`liner_shared::tls`) speaks TLS only. The
//! handshake runs in the connection's own task, never in the accept loop, under the
//! same deadline as a request's head, and counts against the same per-address cap; the
//! connection is then served exactly like a plain one. Without TLS nothing changes.

mod head_deadline;

use head_deadline::{HeadDeadline, Watched};

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How a listener keeps its connections: limits and protocols.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionOptions {
    /// Time allowed for a request's head to arrive, counted from the moment the
    /// connection is ready for one (accepted, or its last answer written): so it is
    /// also the longest a connection may stay open without sending anything, before
    /// its first request or between two kept-alive ones. Kept by one timer per
    /// connection on an `http1_only` listener (`head_deadline`), by hyper's per-request
    /// timer on the others.
    pub header_timeout: Duration,
    /// Open connections per client address; further ones are closed at once (0: no cap).
    pub per_address: usize,
    /// Serve HTTP/1.1 only.
    pub http1_only: bool,
    /// 0: connections are served on the caller's runtime. N: on N threads of their own,
    /// each a single-threaded runtime, accepted connections packed onto the first that
    /// is not busy (see [`Workers`]).
    pub workers: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(30), per_address: 0, http1_only: false, workers: 0 }
    }
}

/// A bound listener that has not started serving yet.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
}

impl Bound {
    /// A plain-text listener.
    pub async fn bind(addr: SocketAddr, service: &str) -> anyhow::Result<Self> {
        Self::bind_tls(addr, service, None).await
    }

    /// A listener that speaks TLS only when `tls` is given, else plain text.
    pub async fn bind_tls(addr: SocketAddr, service: &str, tls: Option<Arc<ServerConfig>>) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("{service}: cannot bind {addr}: {e}"))?;
        Self::from_listener(listener, service, tls)
    }

    /// A listener the caller bound itself and hands over, as it is: for a test that must
    /// hold a port before anything serves on it (nothing is closed and bound again).
    /// Speaks TLS only when `tls` is given; logs `listening` like [`Bound::bind_tls`].
    pub fn from_listener(listener: TcpListener, service: &str, tls: Option<Arc<ServerConfig>>) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        if tls.is_some() {
            tracing::info!(%service, "the listener speaks TLS only");
        }
        tracing::info!(%service, %addr, "listening");
        Ok(Self { listener, addr, tls: tls.map(TlsAcceptor::from) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` for a TLS listener, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `scheme://ADDR`, the bound address as a URL.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    /// Serves with the default [`ConnectionOptions`] until `token` is cancelled.
    pub async fn serve(self, router: Router, token: CancellationToken) -> anyhow::Result<()> {
        self.serve_with(router, token, ConnectionOptions::default()).await
    }

    /// Serves until `token` is cancelled, then stops accepting and drains the open
    /// connections (each finishes its request in flight; idle ones close at once).
    ///
    /// TCP_NODELAY on every accepted connection: responses and frames are small and
    /// latency-bound, and Nagle's algorithm would hold some of them back up to 40 ms.
    /// Handlers see the peer as `ConnectInfo<SocketAddr>`.
    pub async fn serve_with(
        self,
        router: Router,
        token: CancellationToken,
        options: ConnectionOptions,
    ) -> anyhow::Result<()> {
        let for_peer = move |peer: SocketAddr| {
            TowerToHyperService::new(router.clone().map_request(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            }))
        };
        self.serve_service(for_peer, token, options).await
    }

    /// [`Bound::serve_with`] for any hyper service: `for_peer` makes the service of one
    /// accepted connection from its peer's address (a service written by hand for a
    /// hot path, where a `Router` and its extractors would cost more than they give).
    pub async fn serve_service<F, S, B>(
        self,
        for_peer: F,
        token: CancellationToken,
        options: ConnectionOptions,
    ) -> anyhow::Result<()>
    where
        F: Fn(SocketAddr) -> S,
        S: HttpService<B> + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let protocols = Arc::new(Protocols::new(options));
        let tls = self.tls.clone().map(|acceptor| tls_for(acceptor, options.http1_only));
        let per_address = PerAddress::new(options.per_address);
        let connections = TaskTracker::new();
        let workers = Workers::start(options.workers)?;
        loop {
            let (tcp, peer) = tokio::select! {
                () = token.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
            };
            let Some(slot) = per_address.open(peer.ip()) else {
                metrics::counter!("http_connections_refused_total", "reason" => "per_address").increment(1);
                tracing::debug!(%peer, "connection refused: too many from this address");
                continue;
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            let connection = Connection {
                service: for_peer(peer),
                protocols: protocols.clone(),
                stop: token.child_token(),
                peer,
                slot,
            };
            let tls = tls.clone();
            let header_timeout = options.header_timeout;
            let serve = move |tcp: tokio::net::TcpStream| async move {
                match tls {
                    None => connection.serve(tcp).await,
                    Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    },
                }
            };
            match workers.next() {
                None => drop(connections.spawn(serve(tcp))),
                Some(worker) => match tcp.into_std() {
                    // Re-registered with the worker's own reactor, inside its runtime.
                    Ok(tcp) => drop(worker.spawn(connections.track_future(async move {
                        match tokio::net::TcpStream::from_std(tcp) {
                            Ok(tcp) => serve(tcp).await,
                            Err(e) => tracing::debug!(%peer, error = %e, "cannot hand the connection to a worker"),
                        }
                    }))),
                    Err(e) => tracing::debug!(%peer, error = %e, "cannot hand the connection to a worker"),
                },
            }
        }
        drop(self.listener);
        connections.close();
        if tokio::time::timeout(crate::shutdown::IN_FLIGHT_DEADLINE, connections.wait()).await.is_err() {
            tracing::warn!(left = connections.len(), "requests still in flight at the deadline; abandoned");
        }
        workers.stop().await;
        Ok(())
    }
}

/// A listener's worker threads, each a single-threaded tokio runtime that serves the
/// connections it is handed: NGINX's shape (a worker per core, a connection and all its
/// requests on one thread). On the 2-core bench machine the gateway spends about a fifth
/// less CPU per request this way than on one work-stealing runtime (docs/BENCHMARKS.md,
/// issue 7: `LINER_GATEWAY_WORKERS=0` against the default): a request's wake-ups, its
/// upstream exchange and its answer stay on one thread, with no stealing and no
/// cross-thread wake-up. There is one socket, so port 0 works.
///
/// Connections are packed, not spread ([`Workers::pick`]): a new one goes to the first
/// worker that was busy less than [`SPILL_AT`] of the last [`LOAD_SAMPLE`], and only
/// when every worker is that busy to the least busy one. This is where NGINX's workers
/// end up too (the worker that wakes for a connection takes all that wait, and a busy
/// one is not waiting): light load stays on one thread, and the other cores are left to
/// whatever shares the machine, instead of every worker thread queueing for a core
/// behind it. On the bench machine (the load generator and the upstream on the same two
/// cores) dealing connections out in turn put the gateway's p99 at 2.5 times NGINX's;
/// packed, it is within 0.15 ms of NGINX's or below it (docs/BENCHMARKS.md, issue 7).
/// The price: connections opened together stay on the worker they land on, as in NGINX.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    /// Each worker's busy time when last sampled, and its busy share since the sample before.
    load: std::cell::RefCell<Load>,
    /// Cancelled when the listener is done, or dropped: the threads end then.
    stop: tokio_util::sync::DropGuard,
    stopped: Vec<tokio::sync::oneshot::Receiver<()>>,
}

/// How often the workers' busy shares are re-sampled (on an accept, never in between).
const LOAD_SAMPLE: Duration = Duration::from_millis(100);

/// The busy share past which a worker takes no new connections while another is below it.
const SPILL_AT: f64 = 0.75;

struct Load {
    sampled: Instant,
    busy: Vec<Duration>,
    share: Vec<f64>,
}

thread_local! {
    static WORKER_INDEX: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Which of a listener's worker threads runs this code, if any (for per-worker state,
/// such as the gateway's upstream connections, which stay on the thread that drives them).
pub fn worker_index() -> Option<usize> {
    WORKER_INDEX.with(std::cell::Cell::get)
}

impl Workers {
    fn start(count: usize) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let (mut handles, mut stopped) = (Vec::with_capacity(count), Vec::with_capacity(count));
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (done, finished) = tokio::sync::oneshot::channel();
            stopped.push(finished);
            let stop = stop.clone();
            std::thread::Builder::new().name(format!("liner-worker-{index}")).spawn(move || {
                WORKER_INDEX.with(|i| i.set(Some(index)));
                runtime.block_on(stop.cancelled());
                // Whatever is left (an abandoned request, a tunnel) ends with the runtime.
                drop(runtime);
                let _ = done.send(());
            })?;
        }
        let load = Load { sampled: Instant::now(), busy: vec![Duration::ZERO; count], share: vec![0.0; count] };
        Ok(Self { handles, load: std::cell::RefCell::new(load), stop: stop.drop_guard(), stopped })
    }

    /// The worker for the next connection (see [`Workers::pick`]); `None` without workers.
    fn next(&self) -> Option<&tokio::runtime::Handle> {
        self.pick(Instant::now()).map(|i| &self.handles[i])
    }

    /// Packing: the first worker busy less than [`SPILL_AT`] of the last sample, else the
    /// least busy one. Busy shares are re-sampled at most every [`LOAD_SAMPLE`].
    fn pick(&self, now: Instant) -> Option<usize> {
        let mut load = self.load.borrow_mut();
        let elapsed = now.saturating_duration_since(load.sampled);
        if elapsed >= LOAD_SAMPLE {
            for (i, handle) in self.handles.iter().enumerate() {
                let busy = handle.metrics().worker_total_busy_duration(0);
                load.share[i] = busy.saturating_sub(load.busy[i]).as_secs_f64() / elapsed.as_secs_f64();
                load.busy[i] = busy;
            }
            load.sampled = now;
        }
        let shares = &load.share;
        shares
            .iter()
            .position(|&share| share < SPILL_AT)
            .or_else(|| (0..shares.len()).min_by(|&a, &b| shares[a].total_cmp(&shares[b])))
    }

    async fn stop(self) {
        let Self { stop, stopped, .. } = self;
        drop(stop);
        for finished in stopped {
            let _ = finished.await;
        }
    }
}

/// What a listener serves each connection with: a hyper service over hyper's request
/// body, cloneable (HTTP/2 serves each stream with a clone), whose futures can move
/// between threads.
pub trait HttpService<B>:
    hyper::service::Service<
        http::Request<Incoming>,
        Response = http::Response<B>,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Future: Send + 'static,
    > + Clone
    + Send
{
}

impl<S, B> HttpService<B> for S where
    S: hyper::service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Error: Into<Box<dyn std::error::Error + Send + Sync>>,
            Future: Send + 'static,
        > + Clone
        + Send
{
}

/// The acceptor of a listener; an HTTP/1.1-only listener offers only `http/1.1` by ALPN.
fn tls_for(acceptor: TlsAcceptor, http1_only: bool) -> TlsAcceptor {
    if !http1_only {
        return acceptor;
    }
    let mut config = ServerConfig::clone(acceptor.config());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// One accepted connection, ready to be served over plain TCP or TLS alike.
struct Connection<S> {
    service: S,
    protocols: Arc<Protocols>,
    stop: CancellationToken,
    peer: SocketAddr,
    slot: Slot,
}

impl<S> Connection<S> {
    /// The future that serves the connection's requests until it ends (see [`drive`]);
    /// made here, outside any `async` body, as the accept loop always made it.
    fn serve<I, B>(self, io: I) -> impl Future<Output = ()> + Send + 'static
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: HttpService<B> + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Self { service, protocols, stop, peer, slot } = self;
        let io = TokioIo::new(io);
        match &*protocols {
            Protocols::Http1 { builder, header_timeout } => {
                let deadline = HeadDeadline::new(*header_timeout);
                let service = Watched::new(service, deadline.clone());
                let connection = builder.serve_connection(io, service).with_upgrades();
                Either::Left(drive(connection, Ends { stop, deadline: Some(deadline), peer, slot }))
            }
            Protocols::Auto(builder) => {
                let connection = builder.serve_connection_with_upgrades(io, service).into_owned();
                Either::Right(drive(connection, Ends { stop, deadline: None, peer, slot }))
            }
        }
    }
}

/// The connection builders, made once per listener.
enum Protocols {
    /// The public listener: its head deadline is the connection's (`head_deadline`), so
    /// the builder has no timer.
    Http1 {
        builder: hyper::server::conn::http1::Builder,
        header_timeout: Duration,
    },
    Auto(Box<Builder<TokioExecutor>>),
}

impl Protocols {
    fn new(options: ConnectionOptions) -> Self {
        if options.http1_only {
            let builder = hyper::server::conn::http1::Builder::new();
            return Self::Http1 { builder, header_timeout: options.header_timeout };
        }
        // The internal listeners keep hyper's timer for HTTP/1.1 heads: they serve HTTP/2
        // too (gRPC), whose clients keep idle connections that a head deadline would close.
        let mut builder = Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_timeout);
        builder.http2().timer(TokioTimer::new()).enable_connect_protocol();
        Self::Auto(Box::new(builder))
    }
}

/// A connection that can be asked to finish its request in flight and close.
trait Graceful: Future<Output = Result<(), Self::Error>> {
    type Error: std::fmt::Display;
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = hyper::Error;
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> Graceful for hyper_util::server::conn::auto::UpgradeableConnection<'static, I, S, TokioExecutor>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>> + Send,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// What ends a connection besides its peer, and what it holds until then.
struct Ends {
    /// The connection's own child of the listener's token: the wait on it is polled
    /// every time the connection wakes (several times per request), and each poll takes
    /// the token's lock, which one token shared by every connection would make a lock
    /// that all worker threads take in turn.
    stop: CancellationToken,
    /// The public listener's head deadline (see `head_deadline`).
    deadline: Option<Arc<HeadDeadline>>,
    peer: SocketAddr,
    slot: Slot,
}

/// Runs a connection to its end; once `stop` is cancelled, asks it to finish. Closes
/// it when it has waited for a request's head past the deadline.
async fn drive<C: Graceful>(connection: C, ends: Ends) {
    let Ends { stop, deadline, peer, slot } = ends;
    let mut connection = std::pin::pin!(connection);
    // Without a deadline the check is never polled (the branch below is disabled).
    let first = deadline.as_ref().and_then(|d| d.next_check()).unwrap_or_else(tokio::time::Instant::now);
    let mut check = std::pin::pin!(tokio::time::sleep_until(first));
    let ended = loop {
        tokio::select! {
            biased; // the connection first: no random pick per wake-up
            ended = connection.as_mut() => break ended,
            () = stop.cancelled() => {
                connection.as_mut().shutdown();
                break connection.await;
            }
            () = check.as_mut(), if deadline.is_some() => match deadline.as_ref().and_then(|d| d.next_check()) {
                Some(next) => check.as_mut().reset(next),
                None => {
                    tracing::debug!(%peer, "no request head within the deadline: connection closed");
                    break Ok(());
                }
            },
        }
    };
    if let Err(e) = ended {
        tracing::trace!(%peer, error = %e, "connection ended with an error");
    }
    drop(slot);
}

/// Errors from `accept` that concern one connection are skipped; others (out of file
/// descriptors, say) are waited out briefly so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::warn!(error = %e, "accept failed; pausing");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Open connections counted per client address.
#[derive(Clone)]
struct PerAddress {
    cap: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection; counted until dropped.
struct Slot(Option<(PerAddress, IpAddr)>);

impl PerAddress {
    fn new(cap: usize) -> Self {
        Self { cap, open: Arc::default() }
    }

    fn open(&self, ip: IpAddr) -> Option<Slot> {
        if self.cap == 0 {
            return Some(Slot(None));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Slot(Some((self.clone(), ip))))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((per_address, ip)) = self.0.take() {
            let mut open = per_address.open.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = open.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_cap_counts_open_connections_and_forgets_closed_ones() {
        let per_address = PerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = per_address.open(a).expect("first");
        let _second = per_address.open(a).expect("second");
        assert!(per_address.open(a).is_none(), "third from the same address");
        assert!(per_address.open(b).is_some(), "another address");
        drop(first);
        assert!(per_address.open(a).is_some(), "a closed connection frees its slot");
        assert!(per_address.open.lock().unwrap().get(&b).is_none(), "closed addresses are forgotten");
    }

    #[test]
    fn connections_are_packed_onto_the_first_worker_until_it_is_busy() {
        let workers = Workers::start(2).expect("workers");
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(workers.pick(Instant::now()), Some(0), "idle workers: the first takes every connection");
        }
        // Worker 0 busy: a task that holds its thread a millisecond at a time until
        // released, yielding in between (a worker reports its busy time when it turns to
        // its I/O driver, which it does between tasks, never during one).
        let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let held = release.clone();
        workers.handles[0].spawn(async move {
            while !held.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                tokio::task::yield_now().await;
            }
        });
        let deadline = start + Duration::from_secs(10);
        let spilled = loop {
            std::thread::sleep(LOAD_SAMPLE);
            match workers.pick(Instant::now()) {
                Some(1) => break true,
                _ if Instant::now() > deadline => break false,
                _ => {}
            }
        };
        release.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(spilled, "a busy first worker passes new connections to the idle second one");
    }
}
