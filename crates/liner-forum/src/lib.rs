//! The forum service: discussion rooms per album or genre, and live chat in them over
//! WebSocket — stored, ordered, replayable, fanned out across replicas.
//!
//! Layout: `rooms` (REST and all storage), `chat` (the WebSocket endpoint, sessions,
//! wire frames, the process-local hub and the fan-out backends), `users` (username
//! lookups from the review service), `error` (every failure mapped to the API shape in
//! one place). The crate exposes the same contract as every Liner service —
//! `Settings`, `build` (binds and migrates, does not serve), `Running::run_until` — so
//! `liner up` and a one-service container start it the same way.
//!
//! Decisions, and why:
//! - The forum owns its own database (SQLite file `forum.db` embedded, its own
//!   PostgreSQL database in production) and knows users only by the token's subject
//!   and the review service's REST API.
//! - The database is the source of truth for order: seq is assigned in the insert
//!   transaction (see `rooms::store`), and every message is stored before it is acked
//!   or broadcast. Fan-out (in-process, or Redis pub/sub between replicas) is only the
//!   fast path; members fill any gap from the database by seq (see `chat::fanout`).
//! - `online` counts connections (two tabs of one user count twice), across replicas.

pub mod auth;
pub mod chat;
pub mod error;
pub mod moderation;
pub mod openapi;
pub mod pause;
pub mod ratings;
pub mod rooms;
pub mod state;
pub mod threads;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use liner_discovery::client::{Registrar, registrar_for, serve_registered};
use liner_shared::config::{DatabaseUrl, ServiceArgs};
use liner_shared::db::{Db, Migrations};
use liner_shared::server::Bound;
use liner_shared::tls::PeerClient;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;

use crate::chat::fanout::{self, Fanout};
use crate::chat::hub::Hub;
use crate::chat::redis::RedisFanout;
use crate::ratings::Ratings;
use crate::state::{AppState, ChatConfig};
use crate::users::Usernames;

/// Public path prefix of every forum route.
pub const BASE_PATH: &str = "/api/forums";

/// Largest WebSocket frame or message a client may send (a 2,000-character message of
/// 4-byte characters plus JSON fits).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// The file name of the service's default SQLite database (in the data dir).
pub const SQLITE_FILE: &str = "forum.db";
/// The service's schema, for `build` and for `liner migrate forum`.
pub static MIGRATIONS: Migrations<'static> = Migrations { sqlite: &SQLITE_MIGRATIONS, postgres: &POSTGRES_MIGRATIONS };

/// Everything the forum service is configured by.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Storage and registration (`--database-url`, default `forum.db` in the data dir).
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Redis for fan-out and online counts across replicas; without it, fan-out is
    /// in-process (one replica only).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// How Redis's certificate is verified (`rediss://`).
    #[command(flatten)]
    pub redis_tls: liner_shared::redis::RedisTls,
    /// The review service (token keys, usernames): found through the registry unless given.
    #[command(flatten)]
    pub review: liner_discovery::peers::ReviewArgs,
    /// Origins allowed to open chat connections (comma list; `*` allows any). Requests
    /// without an `Origin` header (non-browser clients) are always allowed.
    #[arg(
        long,
        env = "LINER_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080,http://localhost:8080"
    )]
    pub allowed_origins: Vec<String>,
    /// User ids or usernames allowed to close and moderate any room (comma list):
    /// delete messages, mute, kick, slow mode, reports.
    #[arg(long = "forum-admins", alias = "admin-users", env = "LINER_FORUM_ADMINS", value_delimiter = ',')]
    pub admin_users: Vec<String>,
    /// Frames queued for one connection; a client that falls further behind is disconnected (4008).
    #[arg(long, env = "LINER_FORUM_SEND_QUEUE", default_value_t = 256, value_parser = clap::value_parser!(u32).range(4..=65_536))]
    pub send_queue: u32,
    /// Messages per second one connection may send, sustained.
    #[arg(long, env = "LINER_FORUM_RATE_PER_SEC", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate_per_sec: u32,
    /// Messages one connection may send in a burst.
    #[arg(long, env = "LINER_FORUM_RATE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate_burst: u32,
    /// Seconds without any frame from the client (pongs included) before it is disconnected (4408).
    #[arg(long, env = "LINER_FORUM_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub idle_timeout_secs: u64,
    /// Seconds between keep-alive pings.
    #[arg(long, env = "LINER_FORUM_PING_INTERVAL_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ping_interval_secs: u64,
    /// Adaptive slow mode: when a busy room slows itself down.
    #[command(flatten)]
    pub adaptive: moderation::adaptive::AdaptiveSettings,
}

impl Settings {
    /// Defaults for a given listen address and data dir (used by `liner up` and tests).
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            service: ServiceArgs::new(data_dir),
            redis_url: None,
            redis_tls: Default::default(),
            review: Default::default(),
            allowed_origins: vec!["http://127.0.0.1:8080".into(), "http://localhost:8080".into()],
            admin_users: Vec::new(),
            send_queue: 256,
            rate_per_sec: 5,
            rate_burst: 20,
            idle_timeout_secs: 60,
            ping_interval_secs: 20,
            adaptive: Default::default(),
        }
    }

    /// The database: the URL given, else `forum.db` in the data dir.
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        self.service.database_url_or(SQLITE_FILE)
    }

    fn chat_config(&self) -> ChatConfig {
        ChatConfig {
            allowed_origins: self
                .allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
            admin_users: self.admin_users.iter().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect(),
            send_queue: self.send_queue as usize,
            rate_per_sec: f64::from(self.rate_per_sec),
            rate_burst: self.rate_burst,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            ping_interval: Duration::from_secs(self.ping_interval_secs),
            max_frame_bytes: MAX_FRAME_BYTES,
            adaptive: self.adaptive.clone(),
        }
    }
}

/// What the forum holds for connected members right now: everything here must go back
/// to zero when they all leave (the footprint's leak test watches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    /// WebSocket session tasks still running.
    pub sessions: usize,
    /// Rooms with a channel in this process.
    pub rooms: usize,
    /// Memberships of those rooms.
    pub members: usize,
}

/// Reads [`Live`] from a running forum (a cheap handle; `Running` is consumed by serving).
#[derive(Clone)]
pub struct LiveProbe {
    hub: Arc<Hub>,
    sessions: TaskTracker,
}

impl LiveProbe {
    pub fn now(&self) -> Live {
        let (rooms, members) = self.hub.live();
        Live { sessions: self.sessions.len(), rooms, members }
    }
}

/// A bound, migrated service that has not started serving.
pub struct Running {
    bound: Bound,
    router: Router,
    registrar: Option<Registrar>,
    shutdown: CancellationToken,
    drain: liner_shared::shutdown::Drain,
    tasks: TaskTracker,
    sessions: TaskTracker,
    probe: LiveProbe,
    /// Stops the background tasks if this value is dropped without running.
    _stop_on_drop: DropGuard,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr()
    }

    pub fn live_probe(&self) -> LiveProbe {
        self.probe.clone()
    }

    /// Serves until `token` is cancelled and then for the drain period (`--drain-secs`;
    /// deregistered at once); then every chat session closes with 1001 (clients
    /// reconnect with `since`, to another replica) and the background tasks stop.
    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        let Running { bound, router, registrar, shutdown, drain, tasks, sessions, probe: _, _stop_on_drop } = self;
        let serving = drain.serve_until(&token);
        let link = {
            let (serving, shutdown) = (serving.clone(), shutdown.clone());
            tokio::spawn(async move {
                serving.cancelled().await;
                shutdown.cancel();
            })
        };
        let served = serve_registered(registrar, token.clone(), bound.serve(router, serving)).await;
        shutdown.cancel();
        link.abort();
        sessions.close();
        tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            sessions.wait().await;
            tasks.wait().await;
        })
        .await;
        served
    }
}

/// Connects storage (and Redis when configured), binds the listener.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let client_tls = settings.service.tls.client()?;
    let db = Db::connect(
        &settings.database_url()?,
        settings.service.db_max_connections,
        MIGRATIONS,
        settings.service.migrations,
    )
    .await?;
    let shutdown = CancellationToken::new();
    let stop_on_drop = shutdown.clone().drop_guard();
    let tasks = TaskTracker::new();
    let hub = Hub::new();
    let replica = liner_shared::new_id();
    let redis = match &settings.redis_url {
        Some(url) => {
            let client = liner_shared::redis::open(url, &settings.redis_tls).await?;
            Some(RedisFanout::start(client, url, hub.clone(), replica.clone(), shutdown.clone(), &tasks).await?)
        }
        None => None,
    };
    tasks.spawn(fanout::reconcile_loop(hub.clone(), db.clone(), Duration::from_secs(1), shutdown.clone()));
    let (review, verifier) = settings.review.connect(&settings.service, &client_tls, shutdown.child_token())?;
    let verifier = Arc::new(verifier);
    tasks.spawn({
        let (verifier, token) = (verifier.clone(), shutdown.child_token());
        async move { verifier.prefetch_until(token).await }
    });
    let state = AppState {
        db,
        writes: Arc::default(),
        verifier,
        fanout: Arc::new(Fanout::new(hub, redis)),
        users: Arc::new(Usernames::new(review.clone(), PeerClient::new(&client_tls))),
        ratings: Arc::new(Ratings::new(review, PeerClient::new(&client_tls))),
        chat: Arc::new(settings.chat_config()),
        typing: Default::default(),
        moderation_limit: Arc::new(liner_shared::rate::KeyedLimit::new(
            moderation::WRITES_PER_SEC,
            moderation::WRITES_BURST,
        )),
        shutdown: shutdown.clone(),
        sessions: TaskTracker::new(),
    };
    tasks.spawn(moderation::adaptive::calm_loop(state.clone(), shutdown.clone()));
    tracing::info!(%replica, fanout = if settings.redis_url.is_some() { "redis" } else { "in-process" }, "forum ready");
    let sessions = state.sessions.clone();
    let probe = LiveProbe { hub: state.fanout.hub.clone(), sessions: sessions.clone() };
    // `grpc.health.v1.Health` on the same port (h2c, or h2 over TLS), as every Liner process serves it.
    let (_, grpc_health) = liner_discovery::grpc_health::router("forum").await;
    let bound = Bound::bind_tls(settings.listen, "forum", settings.service.tls.server()?).await?;
    let registrar = registrar_for(&settings.service, &client_tls, "forum", &bound)?;
    Ok(Running {
        bound,
        router: router(state).merge(grpc_health),
        registrar,
        shutdown,
        drain: settings.service.drain,
        tasks,
        sessions,
        probe,
        _stop_on_drop: stop_on_drop,
    })
}

/// The whole HTTP surface: API under [`BASE_PATH`], plus `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    let ready_state = state.clone();
    let ready: liner_shared::http::ReadyCheck = Arc::new(move || {
        let state = ready_state.clone();
        // Ready means the database answers: it is the source of truth, and members are
        // served from it while Redis is away (fan-out then fills gaps from the database).
        // A Redis outage is reported (`forum_redis_up`, kept by the fan-out itself), not
        // a reason to leave rotation, which would take every replica out at once. Nor
        // does the check wait for Redis: a ping to a Redis that is away took longer
        // than the gateway's probe timeout (500 ms in a cluster), and that took the
        // replicas out all the same (`outages.rs`).
        Box::pin(async move { state.db.ping().await })
    });
    let api = Router::new()
        .merge(rooms::router())
        .merge(moderation::router())
        .merge(threads::router())
        .merge(chat::router())
        .route("/openapi.json", axum::routing::get(|| async { axum::Json(openapi::ApiDoc::openapi()) }))
        .with_state(state);
    let app = Router::new()
        .nest(BASE_PATH, api)
        .merge(liner_shared::http::ops_router(ready))
        .merge(liner_shared::http::metrics_router());
    liner_shared::http::with_common_layers(app, "forum", Duration::from_secs(30))
}
