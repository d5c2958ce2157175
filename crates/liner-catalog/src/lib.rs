//! The catalogue service: where album ids get titles, artists, years and genres, and
//! where people search for albums.
//!
//! Layout: `albums` (REST, field rules, storage and search), `text` (the one folding
//! of words that search on both backends relies on), `import` (MusicBrainz JSON lines,
//! for `liner catalog import` and the shipped sample), `error` (every failure mapped
//! to the API shape in one place). The crate exposes the same contract as every Liner
//! service — `Settings`, `build` (binds and migrates, does not serve),
//! `Running::run_until` — so `liner up` and a one-service container start it the same way.
//!
//! Decisions, and why:
//! - Own database (SQLite file `catalog.db`, or PostgreSQL): reviews and rooms keep
//!   `albumId` opaque and never need the catalogue to be up.
//! - Search is the database's own full-text index (FTS5 / GIN over a tsvector) fed with
//!   words folded in Rust, so both backends find the same albums; see `text`.
//! - Writes need a token (verified against the review service's JWKS); reads do not.

pub mod albums;
pub mod error;
pub mod import;
pub mod openapi;
pub mod state;
pub mod text;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use liner_discovery::client::{Registrar, registrar_for, serve_registered};
use liner_shared::config::{DatabaseUrl, MigrationMode, ServiceArgs};
use liner_shared::db::{Db, Migrations};
use liner_shared::server::Bound;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use crate::state::AppState;

/// Public path prefix of every catalogue route.
pub const BASE_PATH: &str = "/api/catalog";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// The service's schema, for `build` and for `liner migrate catalog`.
pub static MIGRATIONS: Migrations<'static> = Migrations { sqlite: &SQLITE_MIGRATIONS, postgres: &POSTGRES_MIGRATIONS };

/// Everything the catalogue service is configured by.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,
    /// Storage and registration (`--database-url`, default `catalog.db` in the data dir).
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The review service (token keys): found through the registry unless given.
    #[command(flatten)]
    pub review: liner_discovery::peers::ReviewArgs,
    /// Load the shipped sample (a few hundred albums) on start when the catalogue is empty.
    #[arg(long, env = "LINER_CATALOG_LOAD_SAMPLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub load_sample: bool,
}

impl Settings {
    /// Defaults for a given listen address and data dir (used by `liner up` and tests).
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self { listen, service: ServiceArgs::new(data_dir), review: Default::default(), load_sample: false }
    }
}

/// The file name of the catalogue's default SQLite database, for the service and for
/// `liner catalog import`.
pub const SQLITE_FILE: &str = "catalog.db";

/// Connects and migrates the catalogue database.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Db> {
    Db::connect(url, max_connections, MIGRATIONS, MigrationMode::Apply).await
}

/// A bound, migrated service that has not started serving.
pub struct Running {
    bound: Bound,
    router: Router,
    registrar: Option<Registrar>,
    drain: liner_shared::shutdown::Drain,
    /// Stops the review-instance watch and the key prefetch when serving ends or the
    /// service is dropped unserved.
    _background: tokio_util::sync::DropGuard,
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

/// Connects storage (loading the sample when asked and empty), binds the listener.
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let url = settings.service.database_url_or(SQLITE_FILE)?;
    let client_tls = settings.service.tls.client()?;
    let db = Db::connect(&url, settings.service.db_max_connections, MIGRATIONS, settings.service.migrations).await?;
    if settings.load_sample {
        import::load_sample_if_empty(&db).await?;
    }
    let background = CancellationToken::new();
    let (_, verifier) = settings.review.connect(&settings.service, &client_tls, background.child_token())?;
    let verifier = Arc::new(verifier);
    tokio::spawn({
        let (verifier, token) = (verifier.clone(), background.child_token());
        async move { verifier.prefetch_until(token).await }
    });
    let state = AppState { db, verifier };
    // `grpc.health.v1.Health` on the same port (h2c, or h2 over TLS), as every Liner process serves it.
    let (_, grpc_health) = liner_discovery::grpc_health::router("catalog").await;
    let bound = Bound::bind_tls(settings.listen, "catalog", settings.service.tls.server()?).await?;
    let registrar = registrar_for(&settings.service, &client_tls, "catalog", &bound)?;
    Ok(Running {
        bound,
        router: router(state).merge(grpc_health),
        registrar,
        drain: settings.service.drain,
        _background: background.drop_guard(),
    })
}

/// The whole HTTP surface: API under [`BASE_PATH`], plus `/healthz`, `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    let db = state.db.clone();
    let ready: liner_shared::http::ReadyCheck = Arc::new(move || {
        let db = db.clone();
        Box::pin(async move { db.ping().await })
    });
    let api = Router::new()
        .merge(albums::router())
        .route("/openapi.json", axum::routing::get(|| async { axum::Json(openapi::ApiDoc::openapi()) }))
        .with_state(state);
    let app = Router::new()
        .nest(BASE_PATH, api)
        .merge(liner_shared::http::ops_router(ready))
        .merge(liner_shared::http::metrics_router());
    liner_shared::http::with_common_layers(app, "catalog", Duration::from_secs(30))
}
