//! `liner up`: the whole system in one process, the embedded default.
//!
//! Every service still gets its own loopback listener and talks to the others over
//! real sockets, exactly as in a cluster — only the storage is embedded (SQLite files
//! in the data dir) and fan-out stays in process. So the code paths are the cluster's.

use liner_discovery::peers::ReviewArgs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use liner_shared::config::DatabaseUrl;
use liner_shared::shutdown;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug, Clone)]
pub struct UpSettings {
    /// Public address of the gateway.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the SQLite files and the generated signing key live.
    #[arg(long, env = "LINER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The gateway's internal admin address (`/metrics`, health); loopback, port 0 = any
    /// free port (printed at start).
    #[arg(long, env = "LINER_ADMIN_LISTEN", default_value = "127.0.0.1:0")]
    pub admin_listen: SocketAddr,
    /// Where the registry listens (loopback; port 0 = any free port).
    #[arg(long, env = "LINER_DISCOVERY_LISTEN", default_value = "127.0.0.1:0")]
    pub discovery_listen: SocketAddr,
    /// Threads serving the gateway's listener, each a single-threaded runtime [default:
    /// one per core]; 0 serves it on the shared runtime.
    #[arg(long = "gateway-workers", env = "LINER_GATEWAY_WORKERS", default_value_t = liner_gateway::default_workers(), hide_default_value = true)]
    pub gateway_workers: usize,
    /// Gateway rate limit per client address, requests/s (0 = off).
    #[arg(long, env = "LINER_RATE_LIMIT_IP", default_value_t = 1000)]
    pub rate_limit_ip: u32,
    /// Gateway rate limit per user on writes, requests/s (0 = off).
    #[arg(long, env = "LINER_RATE_LIMIT_USER", default_value_t = 50)]
    pub rate_limit_user: u32,
    /// Accounts that may be registered per client address and hour (0 = no limit).
    #[arg(long, env = "LINER_REGISTRATIONS_PER_ADDRESS", default_value_t = liner_review::users::limiter::DEFAULT_REGISTRATIONS_PER_ADDR)]
    pub registrations_per_address: u32,
    /// Review-service database instead of the SQLite file (tests use a PostgreSQL one).
    #[arg(long, env = "LINER_REVIEW_DATABASE_URL", hide = true)]
    pub review_database_url: Option<DatabaseUrl>,
    /// Forum-service database instead of the SQLite file (tests use a PostgreSQL one).
    #[arg(long, env = "LINER_FORUM_DATABASE_URL", hide = true)]
    pub forum_database_url: Option<DatabaseUrl>,
    /// Catalogue database instead of the SQLite file (tests use a PostgreSQL one).
    #[arg(long, env = "LINER_CATALOG_DATABASE_URL", hide = true)]
    pub catalog_database_url: Option<DatabaseUrl>,
    /// Adaptive slow mode of the forum's rooms.
    #[command(flatten)]
    pub adaptive_slow_mode: liner_forum::moderation::adaptive::AdaptiveSettings,
}

impl UpSettings {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            data_dir,
            admin_listen: ([127, 0, 0, 1], 0).into(),
            discovery_listen: ([127, 0, 0, 1], 0).into(),
            gateway_workers: liner_gateway::default_workers(),
            rate_limit_ip: 1000,
            rate_limit_user: 50,
            registrations_per_address: liner_review::users::limiter::DEFAULT_REGISTRATIONS_PER_ADDR,
            review_database_url: None,
            forum_database_url: None,
            catalog_database_url: None,
            adaptive_slow_mode: Default::default(),
        }
    }
}

/// A started system.
pub struct System {
    pub gateway: SocketAddr,
    /// The gateway's admin listener (`/metrics`).
    pub admin: SocketAddr,
    pub review: SocketAddr,
    pub forum: SocketAddr,
    pub catalog: SocketAddr,
    pub discovery: SocketAddr,
    token: CancellationToken,
    registry: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl System {
    /// Binds every service (nothing is served until all of them bound).
    pub async fn start(settings: UpSettings, token: CancellationToken) -> anyhow::Result<Self> {
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        // One registry secret per run: nothing else on this machine can register a
        // service (and so receive passwords, or have its signing key trusted).
        let secret = liner_shared::config::DiscoveryToken::generate()?;
        let mut discovery_settings = liner_discovery::Settings::new(settings.discovery_listen);
        discovery_settings.token = secret.clone();
        let discovery = liner_discovery::build(discovery_settings).await?;
        let discovery_addr = discovery.addr();
        let discovery_url = discovery.url();

        let mut review_settings = liner_review::Settings::new(loopback, settings.data_dir.clone());
        review_settings.service.database_url = settings.review_database_url.clone();
        review_settings.service.discovery = Some(discovery_url.clone());
        review_settings.service.discovery_token = secret.clone();
        // The gateway reaches it over loopback: believe its `X-Forwarded-For`.
        review_settings.trusted_proxies = liner_shared::net::TrustedProxies::loopback();
        review_settings.registrations_per_address = settings.registrations_per_address;
        let review = liner_review::build(review_settings).await?;
        let review_addr = review.addr();

        let mut gateway_settings = liner_gateway::Settings::new(settings.listen, vec![]).with_discovery(&discovery_url);
        gateway_settings.discovery_token = secret.clone();
        gateway_settings.rate_limit_ip = settings.rate_limit_ip;
        gateway_settings.workers = settings.gateway_workers;
        gateway_settings.rate_limit_user = settings.rate_limit_user;
        gateway_settings.admin_listen = Some(settings.admin_listen);
        let gateway = liner_gateway::build(gateway_settings).await?;
        let gateway_addr = gateway.addr();
        let admin_addr = gateway.admin_addr().unwrap_or(settings.admin_listen);
        let view = gateway.view();

        let mut forum_settings = liner_forum::Settings::new(loopback, settings.data_dir.clone());
        forum_settings.service.database_url = settings.forum_database_url.clone();
        forum_settings.service.discovery = Some(discovery_url.clone());
        forum_settings.service.discovery_token = secret.clone();
        // In-process: the review instance is known, no need to wait for the registry.
        forum_settings.review = ReviewArgs::at(format!("http://{review_addr}"));
        forum_settings.allowed_origins = browser_origins(gateway_addr);
        forum_settings.adaptive = settings.adaptive_slow_mode.clone();
        let forum = liner_forum::build(forum_settings).await?;
        let forum_addr = forum.addr();

        // The catalogue starts with the shipped sample, so a new installation is not empty.
        let mut catalog_settings = liner_catalog::Settings::new(loopback, settings.data_dir.clone());
        catalog_settings.service.database_url = settings.catalog_database_url.clone();
        catalog_settings.service.discovery = Some(discovery_url.clone());
        catalog_settings.service.discovery_token = secret;
        catalog_settings.review = ReviewArgs::at(format!("http://{review_addr}"));
        catalog_settings.load_sample = true;
        let catalog = liner_catalog::build(catalog_settings).await?;
        let catalog_addr = catalog.addr();

        // The registry has its own token: it stops after every service did, so their
        // deregistrations reach it.
        let mut tasks = JoinSet::new();
        let registry = CancellationToken::new();
        let t = registry.clone();
        tasks.spawn(async move { ("discovery", discovery.run_until(t).await) });
        let t = token.clone();
        tasks.spawn(async move { ("review", review.run_until(t).await) });
        let t = token.clone();
        tasks.spawn(async move { ("forum", forum.run_until(t).await) });
        let t = token.clone();
        tasks.spawn(async move { ("catalog", catalog.run_until(t).await) });
        let t = token.clone();
        tasks.spawn(async move { ("gateway", gateway.run_until(t).await) });
        let system = Self {
            gateway: gateway_addr,
            admin: admin_addr,
            review: review_addr,
            forum: forum_addr,
            catalog: catalog_addr,
            discovery: discovery_addr,
            token,
            registry,
            tasks,
        };

        // Ready when the gateway has learned every service from the registry.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while ["review", "forum", "catalog"].iter().any(|s| view.instances(s).is_empty()) {
            if tokio::time::Instant::now() > deadline {
                system.token.cancel();
                system.registry.cancel();
                anyhow::bail!("services did not register with discovery within 10 s");
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tracing::info!(gateway = %gateway_addr, review = %review_addr, forum = %forum_addr, catalog = %catalog_addr, discovery = %discovery_addr, "liner is up");
        Ok(system)
    }

    /// Runs until the token is cancelled or any service stops; then stops the rest.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            self.token.cancel();
            if self.tasks.len() <= 1 {
                self.registry.cancel();
            }
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(e))) => {
                    tracing::error!(service = name, error = %e, "service failed");
                    first_error.get_or_insert(e.context(format!("{name} failed")));
                }
                Err(e) => {
                    first_error.get_or_insert(anyhow::anyhow!("a service task panicked: {e}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every service and waits for them to drain.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.token.cancel();
        self.wait().await
    }
}

/// The origins a browser page served for this gateway has (the chat checks `Origin`).
fn browser_origins(gateway: SocketAddr) -> Vec<String> {
    let port = gateway.port();
    let mut origins = vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    if !gateway.ip().is_unspecified() && !gateway.ip().is_loopback() {
        origins.push(format!("http://{gateway}"));
    }
    origins
}

pub async fn run(settings: UpSettings) -> anyhow::Result<()> {
    let system = System::start(settings, shutdown::token_on_signal()).await?;
    // The banner is a courtesy: a closed stdout must not take the system down.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "Liner is up: http://{}/", system.gateway);
    let _ = writeln!(
        out,
        "Chat rooms:  http://{0}/api/forums/rooms  (WebSocket: ws://{0}/api/forums/connect)",
        system.gateway
    );
    let _ = writeln!(out, "Metrics:     http://{}/metrics  (admin listener, not public)", system.admin);
    let _ = out.flush();
    system.wait().await
}
