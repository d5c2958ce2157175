//! The review service: users, login (it is the only token issuer), album reviews,
//! album scores and charts.
//!
//! Layout: one module per domain (`users`, `reviews`), each owning its router, wire
//! types, rules and storage; `error` maps every failure to the API shape in one place.
//! The crate exposes the same contract as every Liner service — `Settings`, `build`
//! (binds and migrates, does not serve), `Running::run_until` — so `liner up` and a
//! one-service container start it the same way.

pub mod cache;
pub mod error;
pub mod follows;
pub mod keys;
pub mod likes;
pub mod lists;
pub mod openapi;
pub mod paging;
pub mod password;
pub mod reviews;
pub mod state;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use liner_discovery::client::{Registrar, registrar_for, serve_registered};
use liner_shared::config::{Backend, DatabaseUrl, ServiceArgs};
use liner_shared::db::{Db, Migrations};
use liner_shared::server::Bound;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::keys::{KeySources, Signer};
use crate::password::Passwords;
use crate::reviews::site_prior::{SITE_PRIOR_TTL, SitePrior};
use crate::state::AppState;
use crate::users::limiter::{DEFAULT_REGISTRATIONS_PER_ADDR, LOGIN_WINDOW, REGISTRATION_WINDOW, WindowCounter};

/// Public path prefix of every review-service route.
pub const BASE_PATH: &str = "/api/users-reviews";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// The file name of the service's default SQLite database (in the data dir).
pub const SQLITE_FILE: &str = "review.db";
/// The service's schema, for `build` and for `liner migrate review`.
pub static MIGRATIONS: Migrations<'static> = Migrations { sqlite: &SQLITE_MIGRATIONS, postgres: &POSTGRES_MIGRATIONS };

/// Everything the review service is configured by.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Storage and registration (`--database-url`, default `review.db` in the data dir).
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Redis for state shared by replicas (login-failure counters); optional.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// How Redis's certificate is verified (`rediss://`).
    #[command(flatten)]
    pub redis_tls: liner_shared::redis::RedisTls,
    /// Ed25519 PKCS#8 PEM signing key; generated there if missing
    /// [default: <data-dir>/review-jwt-ed25519.pem]. `LINER_JWT_PRIVATE_KEY` (PEM text) wins.
    #[arg(long, env = "LINER_JWT_KEY_FILE")]
    pub jwt_key_file: Option<PathBuf>,
    /// The previous signing key during a rotation (its private or public PEM): published
    /// in the JWKS beside the current one, so tokens it signed still verify.
    /// `LINER_JWT_PREVIOUS_KEY` (PEM text) wins.
    #[arg(long, env = "LINER_JWT_PREVIOUS_KEY_FILE")]
    pub jwt_previous_key_file: Option<PathBuf>,
    /// Threads that hash passwords (each holds 19 MiB while logins arrive, none when
    /// idle) [default: one per core].
    #[arg(long, env = "LINER_HASH_THREADS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub hash_threads: Option<u16>,
    /// Token lifetime in seconds.
    #[arg(long, env = "LINER_TOKEN_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub token_ttl_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed for the client's address (login
    /// limits), e.g. the gateway's network `10.0.0.0/8`; empty trusts nobody.
    #[arg(long, env = "LINER_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: liner_shared::net::TrustedProxies,
    /// Accounts that may be registered per client address and hour; 0 lifts the limit
    /// (load tests that sign up thousands of users from one machine).
    #[arg(long, env = "LINER_REGISTRATIONS_PER_ADDRESS", default_value_t = DEFAULT_REGISTRATIONS_PER_ADDR)]
    pub registrations_per_address: u32,
    /// Generate a missing signing key even on PostgreSQL: one process that is the only
    /// issuer (`liner up`, in-process tests). Never from the command line.
    #[arg(skip)]
    pub generate_missing_key: bool,
}

impl Settings {
    /// Defaults for a given listen address and data dir (used by `liner up` and tests).
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            service: ServiceArgs::new(data_dir),
            redis_url: None,
            redis_tls: Default::default(),
            jwt_key_file: None,
            jwt_previous_key_file: None,
            hash_threads: None,
            token_ttl_secs: 86_400,
            trusted_proxies: Default::default(),
            registrations_per_address: DEFAULT_REGISTRATIONS_PER_ADDR,
            generate_missing_key: true,
        }
    }

    /// Hashing threads: as configured, else one per core.
    pub fn hash_threads(&self) -> usize {
        self.hash_threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// The database: the URL given, else `review.db` in the data dir.
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        self.service.database_url_or(SQLITE_FILE)
    }
}

/// A bound, migrated service that has not started serving.
pub struct Running {
    bound: Bound,
    router: Router,
    registrar: Option<Registrar>,
    drain: liner_shared::shutdown::Drain,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr()
    }

    /// Serves (registered with discovery, when configured) until `token` is cancelled,
    /// and then for the drain period (`--drain-secs`); deregisters as soon as `token` is.
    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        serve_registered(self.registrar, token.clone(), self.bound.serve(self.router, self.drain.serve_until(&token)))
            .await
    }
}

/// Connects storage, loads keys, binds the listener.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let database_url = settings.database_url()?;
    let client_tls = settings.service.tls.client()?;
    let data_dir = liner_shared::config::ensure_dir(&settings.service.data_dir)?;
    let key_file = settings.jwt_key_file.clone().unwrap_or_else(|| data_dir.join("review-jwt-ed25519.pem"));
    let signer = Arc::new(Signer::load(&KeySources {
        key_file: &key_file,
        previous_key_file: settings.jwt_previous_key_file.as_deref(),
        may_generate: database_url.backend() == Backend::Sqlite || settings.generate_missing_key,
        ttl_secs: settings.token_ttl_secs,
    })?);
    let db = Db::connect(&database_url, settings.service.db_max_connections, MIGRATIONS, settings.service.migrations)
        .await?;
    let redis = match &settings.redis_url {
        Some(url) => Some(Arc::new(liner_shared::redis::Bounded::new(connect_redis(url, &settings.redis_tls).await?))),
        None => None,
    };
    let state = AppState {
        db,
        verifier: signer.verifier()?,
        signer,
        passwords: Passwords::new(settings.hash_threads())?,
        login_failures: Arc::new(WindowCounter::new(redis.clone(), LOGIN_WINDOW, "login-failures")),
        registrations: Arc::new(WindowCounter::new(redis.clone(), REGISTRATION_WINDOW, "registrations")),
        registrations_per_addr: settings.registrations_per_address,
        site_prior: Arc::new(SitePrior::new(SITE_PRIOR_TTL)),
        pages: Arc::new(crate::cache::Pages::new(redis)),
        trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
        social_writes: liner_shared::rate::KeyedLimit::new(state::SOCIAL_WRITES_PER_SEC, state::SOCIAL_WRITE_BURST)
            .map(Arc::new),
    };
    // `grpc.health.v1.Health` on the same port (h2c, or h2 over TLS), as every Liner process serves it.
    let (_, grpc_health) = liner_discovery::grpc_health::router("review").await;
    let bound = Bound::bind_tls(settings.listen, "review", settings.service.tls.server()?).await?;
    let registrar = registrar_for(&settings.service, &client_tls, "review", &bound)?;
    Ok(Running { bound, router: router(state).merge(grpc_health), registrar, drain: settings.service.drain })
}

async fn connect_redis(
    url: &str,
    tls: &liner_shared::redis::RedisTls,
) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = liner_shared::redis::open(url, tls).await?;
    redis::aio::ConnectionManager::new(client).await.map_err(|e| anyhow::anyhow!("cannot reach Redis: {e}"))
}

/// The whole HTTP surface: API under [`BASE_PATH`], plus `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    let db = state.db.clone();
    let ready: liner_shared::http::ReadyCheck = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await })
    });
    let jwks = state.signer.jwks();
    let api = Router::new()
        .merge(users::router())
        .merge(reviews::router())
        .merge(likes::router())
        .merge(follows::router())
        .merge(lists::router())
        .route("/.well-known/jwks.json", get(move || std::future::ready(axum::Json(jwks.clone()))))
        .route("/openapi.json", get(|| async { axum::Json(openapi::ApiDoc::openapi()) }))
        .with_state(state);
    let app = Router::new()
        .nest(BASE_PATH, api)
        .merge(liner_shared::http::ops_router(ready))
        .merge(liner_shared::http::metrics_router());
    liner_shared::http::with_common_layers(app, "review", Duration::from_secs(30))
}
