//! The gateway: the single public entry. It maps a path prefix to a service, picks a
//! healthy instance of it, and forwards the request (WebSocket upgrades included),
//! answering in the API error shape when no instance can.

pub mod proxy;
pub mod upstreams;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use liner_shared::server::Bound;
use tokio_util::sync::CancellationToken;

use crate::upstreams::{StaticRoute, Upstreams};

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Static upstream, `SERVICE=http://HOST:PORT` (repeatable; SERVICE is `review` or `forum`).
    #[arg(long = "upstream", env = "LINER_UPSTREAMS", value_delimiter = ',')]
    pub upstreams: Vec<StaticRoute>,
    /// Per-request upstream timeout in seconds (504 past it).
    #[arg(long, env = "LINER_UPSTREAM_TIMEOUT_SECS", default_value_t = 30)]
    pub upstream_timeout_secs: u64,
}

impl Settings {
    pub fn new(listen: SocketAddr, upstreams: Vec<StaticRoute>) -> Self {
        Self { listen, upstreams, upstream_timeout_secs: 30 }
    }
}

pub struct Running {
    bound: Bound,
    router: Router,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr()
    }

    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        self.bound.serve(self.router, token).await
    }
}

pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    let upstreams = Arc::new(Upstreams::from_static(&settings.upstreams));
    let proxy = proxy::Proxy::new(upstreams.clone(), Duration::from_secs(settings.upstream_timeout_secs));
    let ready_upstreams = upstreams.clone();
    let ready: liner_shared::http::ReadyCheck = Arc::new(move || {
        let u = ready_upstreams.clone();
        Box::pin(async move { u.has_any() })
    });
    let router = Router::new().fallback(proxy::handle).with_state(proxy).merge(liner_shared::http::ops_router(ready));
    let router = router.layer(axum::middleware::from_fn(proxy::ensure_request_id));
    let bound = Bound::bind(settings.listen, "gateway").await?;
    Ok(Running { bound, router })
}
