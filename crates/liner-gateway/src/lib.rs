//! The gateway: the single public entry. It maps a path prefix to a service, picks a
//! healthy instance of it, and forwards the request (WebSocket upgrades included),
//! answering in the API error shape when no instance can.
//!
//! Pieces, one file each: `edge` (the public listener's service: request id, `Host`
//! check, span, access log, routing), `proxy` (the request path in named phases), `attempt` (what
//! one try on one instance ended with), `upstreams` (route table, static fallback
//! list), `balance` (per-service endpoint snapshots fed by discovery; power of two
//! choices), `breaker` (passive ejection), `health` (active `/readyz` checks), `limits`
//! (retry budget; the rate limits are `liner_shared::rate`), `auth` (edge JWT check) and `tunnel`
//! (WebSocket splicing).
//!
//! Two listeners: the public one (the API, the web client, `/healthz` and `/readyz`
//! for a load balancer) and, with `--admin-listen`, an internal one that adds
//! `/metrics`. The public one never serves metrics. Its connections are bounded
//! (`liner_shared::server::ConnectionOptions`): a deadline for each request head, which
//! is also the idle keep-alive limit, and a cap on open connections per address. They
//! are served by `--workers` threads, each a single-threaded runtime with its own
//! upstream client (a worker per core, as NGINX runs), while discovery, health checks
//! and the admin listener stay on the process's shared runtime.
//!
//! Where instances come from: with `--discovery URL` the gateway watches the registry
//! for the instances of every routed service (`review`, `forum`, `catalog`) and keeps
//! the last known set while the registry is away; the static `--upstream` list is used
//! for a service whose discovered set is empty (or when no registry is configured).

pub mod attempt;
pub mod auth;
pub mod balance;
pub mod breaker;
pub mod connections;
pub mod edge;
pub mod health;
pub mod limits;
pub mod proxy;
pub mod tunnel;
pub mod upstreams;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use liner_shared::http::REQUEST_ID;
use liner_shared::rate::KeyedLimit;
use liner_shared::server::{Bound, ConnectionOptions};
use liner_shared::tls::{PeerClient, PeerConnector};
use tokio_util::sync::{CancellationToken, DropGuard};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::balance::{Pool, PoolConfig};
use crate::breaker::BreakerConfig;
use crate::limits::RetryBudget;
use crate::upstreams::{ROUTES, RouteTimeout, StaticRoute};

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Internal admin address for `/metrics` (and health); never the public one.
    #[arg(long, env = "LINER_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Registry to watch for instances, `http://HOST:PORT` (`https://` with `--tls-ca-file`).
    #[arg(long, env = "LINER_DISCOVERY")]
    pub discovery: Option<String>,
    /// TLS towards the registry and `https://` instances (`--tls-ca-file`), and of the
    /// admin listener (`--tls-cert-file`, `--tls-key-file`); never the public listener.
    #[command(flatten)]
    pub tls: liner_shared::tls::TlsArgs,
    #[command(flatten)]
    pub discovery_token: liner_shared::config::DiscoveryToken,
    /// Static upstream, `SERVICE=http://HOST:PORT` (repeatable; SERVICE is `review`,
    /// `forum` or `catalog`); used for a service while discovery knows no instance of it.
    #[arg(long = "upstream", env = "LINER_UPSTREAMS", value_delimiter = ',')]
    pub upstreams: Vec<StaticRoute>,
    /// Default upstream timeout in seconds, until the answer's head (504 past it).
    #[arg(long, env = "LINER_UPSTREAM_TIMEOUT_SECS", default_value_t = 30)]
    pub upstream_timeout_secs: u64,
    /// Per-route timeout, `SERVICE=MILLISECONDS` (repeatable), overriding the default.
    #[arg(long = "route-timeout", env = "LINER_ROUTE_TIMEOUTS", value_delimiter = ',')]
    pub route_timeouts: Vec<RouteTimeout>,
    /// Verify tokens at the edge on writes and WebSocket connects.
    #[arg(long, env = "LINER_EDGE_AUTH", default_value_t = true, action = clap::ArgAction::Set)]
    pub edge_auth: bool,
    /// JWKS to verify tokens with [default: from a discovered review instance].
    #[arg(long, env = "LINER_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Requests per second per client IP (0 = no limit).
    #[arg(long, env = "LINER_RATE_LIMIT_IP", default_value_t = 1000)]
    pub rate_limit_ip: u32,
    /// Proxies in front of the gateway (a load balancer) whose `X-Forwarded-For` names the
    /// client, CIDRs or addresses; empty trusts nobody.
    #[arg(long, env = "LINER_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: liner_shared::net::TrustedProxies,
    /// Burst allowance per client IP.
    #[arg(long, env = "LINER_RATE_BURST_IP", default_value_t = 2000)]
    pub rate_burst_ip: u32,
    /// Authenticated requests per second per user (0 = no limit).
    #[arg(long, env = "LINER_RATE_LIMIT_USER", default_value_t = 50)]
    pub rate_limit_user: u32,
    /// Burst allowance per user.
    #[arg(long, env = "LINER_RATE_BURST_USER", default_value_t = 100)]
    pub rate_burst_user: u32,
    /// Requests forwarded at once before new ones are shed with 503.
    #[arg(long, env = "LINER_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Largest request body forwarded (413 past it).
    #[arg(long, env = "LINER_MAX_REQUEST_BYTES", default_value_t = 256 * 1024)]
    pub max_request_bytes: usize,
    /// Time for a request head to arrive, in milliseconds; also the longest a
    /// connection may stay idle before its first or between kept-alive requests.
    #[arg(long, env = "LINER_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub header_timeout_ms: u64,
    /// Longest pause while a request body arrives, in milliseconds (408 past it).
    #[arg(long, env = "LINER_BODY_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..))]
    pub body_timeout_ms: u64,
    /// Open connections per client address; more are closed at once (0 = no cap).
    #[arg(long, env = "LINER_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub max_connections_per_ip: usize,
    /// Threads serving the public listener, each a single-threaded runtime of its own
    /// [default: one per core]; 0 serves it on the process's shared runtime.
    #[arg(long, env = "LINER_GATEWAY_WORKERS", default_value_t = default_workers(), hide_default_value = true)]
    pub workers: usize,
    /// One `info` line per request on the `liner::access` log target.
    #[arg(long, env = "LINER_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Largest response body forwarded.
    #[arg(long, env = "LINER_MAX_RESPONSE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_response_bytes: usize,
    /// Origins allowed by CORS (repeatable), e.g. `http://localhost:5173`.
    #[arg(long = "cors-origin", env = "LINER_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Active health check (`GET /readyz`) interval in milliseconds.
    #[arg(long, env = "LINER_HEALTH_INTERVAL_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(50..))]
    pub health_interval_ms: u64,
    /// Tries per request, the first included (retries follow the rules in `proxy`).
    #[arg(long, env = "LINER_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub max_attempts: u64,
    /// Consecutive failures that open an instance's breaker (a connect error opens it at once).
    #[arg(long, env = "LINER_BREAKER_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_failures: u32,
    /// First breaker cool-down in milliseconds (doubles per failed probe, up to 30 s).
    #[arg(long, env = "LINER_BREAKER_COOLDOWN_MS", default_value_t = 1000)]
    pub breaker_cooldown_ms: u64,
    #[command(flatten)]
    pub drain: liner_shared::shutdown::Drain,
}

/// One worker per core, as NGINX's `worker_processes auto`.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl Settings {
    pub fn new(listen: SocketAddr, upstreams: Vec<StaticRoute>) -> Self {
        Self {
            listen,
            admin_listen: None,
            discovery: None,
            discovery_token: Default::default(),
            tls: Default::default(),
            upstreams,
            upstream_timeout_secs: 30,
            route_timeouts: Vec::new(),
            edge_auth: true,
            jwks_url: None,
            rate_limit_ip: 1000,
            trusted_proxies: Default::default(),
            rate_burst_ip: 2000,
            rate_limit_user: 50,
            rate_burst_user: 100,
            max_in_flight: 1024,
            max_request_bytes: 256 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_connections_per_ip: 512,
            workers: default_workers(),
            access_log: true,
            max_response_bytes: 16 * 1024 * 1024,
            cors_origins: Vec::new(),
            health_interval_ms: 2000,
            drain: Default::default(),
            max_attempts: 3,
            breaker_failures: 5,
            breaker_cooldown_ms: 1000,
        }
    }

    /// The same, watching the registry at `discovery_url`.
    pub fn with_discovery(mut self, discovery_url: impl Into<String>) -> Self {
        self.discovery = Some(discovery_url.into());
        self
    }
}

pub struct Running {
    bound: Bound,
    edge: Arc<edge::EdgeConfig>,
    options: ConnectionOptions,
    admin: Option<(Bound, Router)>,
    drain: liner_shared::shutdown::Drain,
    pools: Vec<Arc<Pool>>,
    background: CancellationToken,
    _stop_background: DropGuard,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr()
    }

    /// The admin listener's address, when one was asked for.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(bound, _)| bound.addr())
    }

    /// A read-only view of the instance pools that outlives `run_until` (tests, `liner up`).
    pub fn view(&self) -> PoolsView {
        PoolsView(self.pools.clone())
    }

    /// Serves until `token` is cancelled and then for the drain period (`--drain-secs`,
    /// `/readyz` at 503 meanwhile); open tunnels close once the listener has.
    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        let serving = self.drain.serve_until(&token);
        let admin = self.admin.map(|(bound, router)| tokio::spawn(bound.serve(router, serving.clone())));
        let edge = self.edge;
        let served = self.bound.serve_service(move |peer| edge.for_peer(peer), serving, self.options).await;
        self.background.cancel();
        if let Some(admin) = admin {
            admin.await??;
        }
        served
    }
}

/// What the gateway currently routes to.
#[derive(Clone)]
pub struct PoolsView(Vec<Arc<Pool>>);

impl PoolsView {
    /// The known instances (base URLs) of `service`, eligible or not.
    pub fn instances(&self, service: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.service() == service)
            .flat_map(|p| p.endpoints().iter().map(|e| e.base_url.clone()).collect::<Vec<_>>())
            .collect()
    }

    /// The instances of `service` that would receive traffic now.
    pub fn eligible(&self, service: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|p| p.service() == service)
            .flat_map(|p| {
                p.endpoints().iter().filter(|e| e.is_eligible()).map(|e| e.base_url.clone()).collect::<Vec<_>>()
            })
            .collect()
    }
}

fn cors(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o.trim_end_matches('/')).map_err(|_| anyhow::anyhow!("bad CORS origin {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    ))
}

/// Binds the listener and starts watching discovery and checking instances; requests
/// are served from [`Running::run_until`].
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    // The recorder first: pool and breaker gauges are set from the first discovery update on.
    liner_shared::http::metrics_handle();
    let cors = cors(&settings.cors_origins)?;
    if let Some(url) = &settings.jwks_url
        && !url.starts_with("http://")
        && !url.starts_with("https://")
    {
        anyhow::bail!("--jwks-url must be an http:// or https:// URL");
    }
    let client_tls = settings.tls.client()?;
    let admin_tls = settings.tls.server()?;
    let background = CancellationToken::new();
    let client = PeerClient::new(&client_tls);
    let breaker = BreakerConfig {
        failure_threshold: settings.breaker_failures,
        base_cooldown: Duration::from_millis(settings.breaker_cooldown_ms),
        ..BreakerConfig::default()
    };
    let mut pools = HashMap::new();
    for (_, service) in ROUTES {
        let statics = settings.upstreams.iter().filter(|r| r.service == *service).map(|r| r.base_url.clone()).collect();
        pools
            .insert(*service, Arc::new(Pool::new(service, statics, PoolConfig { breaker, workers: settings.workers })));
    }
    if let Some(url) = &settings.discovery {
        let credential = liner_discovery::client::Credential::new(settings.discovery_token.resolve()?.as_deref())?;
        for (service, pool) in &pools {
            let mut watched = liner_discovery::client::watch_service(
                url,
                credential.clone(),
                &client_tls,
                service,
                background.child_token(),
            )?;
            let (pool, tls, service) = (pool.clone(), client_tls.clone(), *service);
            tokio::spawn(async move {
                while watched.changed().await.is_ok() {
                    let urls = watched
                        .borrow_and_update()
                        .as_ref()
                        .map(|set| liner_discovery::peers::base_urls(service, set, &tls));
                    if let Some(urls) = urls {
                        pool.set_discovered(urls);
                    }
                }
            });
        }
        tracing::info!(discovery = %url, "gateway watches discovery");
    }
    let all: Vec<Arc<Pool>> = pools.values().cloned().collect();
    tokio::spawn(health::check_until(
        all.clone(),
        client.clone(),
        Duration::from_millis(settings.health_interval_ms),
        background.child_token(),
    ));

    let review = pools.get("review").cloned().ok_or_else(|| anyhow::anyhow!("review route missing"))?;
    let auth =
        settings.edge_auth.then(|| Arc::new(auth::EdgeAuth::new(settings.jwks_url.clone(), review, client.clone())));
    if let Some(auth) = auth.clone() {
        let token = background.child_token();
        tokio::spawn(async move { auth.prefetch_until(token).await });
    }
    let timeouts = settings
        .route_timeouts
        .iter()
        .filter_map(|t| ROUTES.iter().find(|(_, s)| *s == t.service).map(|(_, s)| (*s, t.timeout)))
        .collect();
    let proxy = Arc::new(proxy::Proxy {
        pools,
        connector: PeerConnector::new(&client_tls),
        timeouts,
        default_timeout: Duration::from_secs(settings.upstream_timeout_secs.max(1)),
        auth,
        ip_limit: KeyedLimit::new(f64::from(settings.rate_limit_ip), settings.rate_burst_ip),
        trusted_proxies: settings.trusted_proxies.clone(),
        user_limit: KeyedLimit::new(f64::from(settings.rate_limit_user), settings.rate_burst_user),
        in_flight: tokio::sync::Semaphore::new(settings.max_in_flight.max(1)),
        retry_budget: RetryBudget::new(0.2, 10.0),
        max_request_bytes: settings.max_request_bytes,
        body_timeout: Duration::from_millis(settings.body_timeout_ms),
        max_response_bytes: settings.max_response_bytes,
        max_attempts: usize::try_from(settings.max_attempts).unwrap_or(3),
        tunnels_stop: background.child_token(),
        metrics: Default::default(),
    });

    let ready_pools = all.clone();
    let ready: liner_shared::http::ReadyCheck = Arc::new(move || {
        let any = ready_pools.iter().any(|p| p.has_eligible());
        Box::pin(async move { any })
    });
    let pages = Router::new()
        .fallback(edge::pages_or_not_found)
        .merge(liner_shared::http::ops_router(ready.clone()))
        .method_not_allowed_fallback(liner_shared::error::method_not_allowed);
    let edge = Arc::new(edge::EdgeConfig { proxy, pages, cors, access_log: settings.access_log });
    let bound = Bound::bind(settings.listen, "gateway").await?;
    let admin = match settings.admin_listen {
        Some(addr) => {
            let pools = all.clone();
            let collector: liner_shared::http::MetricsCollector =
                Arc::new(move |out: &mut String| balance::render_pools(&pools, out));
            // `grpc.health.v1.Health` too: the admin listener speaks h2c (or h2 over TLS), the public one does not.
            let (_, grpc_health) = liner_discovery::grpc_health::router("gateway").await;
            let router = liner_shared::http::ops_router(ready)
                .merge(liner_shared::http::metrics_router_with(Some(collector)))
                .merge(grpc_health);
            Some((Bound::bind_tls(addr, "gateway admin", admin_tls).await?, router))
        }
        None => None,
    };
    let options = ConnectionOptions {
        header_timeout: Duration::from_millis(settings.header_timeout_ms),
        per_address: settings.max_connections_per_ip,
        http1_only: true,
        workers: settings.workers,
    };
    Ok(Running {
        bound,
        edge,
        options,
        admin,
        drain: settings.drain,
        pools: all,
        _stop_background: background.clone().drop_guard(),
        background,
    })
}
