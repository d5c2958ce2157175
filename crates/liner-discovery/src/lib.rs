//! The service registry: a small gRPC service (`discovery.v1.Discovery`) where service
//! instances register with a lease and renew it by heartbeat, and where the gateway
//! lists or watches the live instances of each service.
//!
//! Why its own process: every other piece (gateway, replicas) can then come and go
//! independently, and `liner up` runs the same registry on a loopback port so the
//! embedded mode takes the cluster's code path. State is in memory only and is rebuilt
//! from heartbeats after a restart (see `proto/discovery/v1/discovery.proto`).
//!
//! One port serves gRPC (discovery, `grpc.health.v1.Health`, reflection) and the
//! operational HTTP endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! [`client`] holds what the other processes use: the registration loop every service
//! runs, and the watch helper the gateway uses; [`grpc_health`] lets an HTTP service
//! serve `grpc.health.v1.Health` on its own port.

pub mod client;
pub mod grpc_health;
pub mod peers;
pub mod registry;
pub mod service;

pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("discovery.v1");

    /// The encoded descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("discovery_descriptor");
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use liner_shared::server::Bound;
use tokio_util::sync::CancellationToken;

use crate::proto::discovery_server::DiscoveryServer;
use crate::registry::Registry;
use crate::service::{Access, DiscoveryService};
use liner_shared::config::DiscoveryToken;

/// Everything the registry is configured by.
#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on (gRPC and /healthz, /readyz, /metrics on one port).
    #[arg(long, env = "LINER_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Lease TTL in seconds granted to instances that ask for none; also how long a
    /// restarted registry calls its state incomplete.
    #[arg(long, env = "LINER_DISCOVERY_TTL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub default_ttl_secs: u64,
    /// The shared secret every call must carry (unset: an open registry, for one machine).
    #[command(flatten)]
    pub token: DiscoveryToken,
    /// Let List and Watch through without the token (Register, Heartbeat and Deregister
    /// still need it).
    #[arg(long, env = "LINER_DISCOVERY_OPEN_READS", default_value_t = false)]
    pub open_reads: bool,
    /// TLS of the registry's port (its `--tls-ca-file` is not used: it calls no one).
    #[command(flatten)]
    pub tls: liner_shared::tls::TlsArgs,
}

impl Settings {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            default_ttl_secs: 10,
            token: DiscoveryToken::default(),
            open_reads: false,
            tls: Default::default(),
        }
    }
}

/// A bound registry that has not started serving.
pub struct Running {
    bound: Bound,
    registry: Arc<Registry>,
    access: Access,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.bound.addr()
    }

    /// `http://ADDR` (`https://` with TLS), what clients pass as their discovery URL.
    pub fn url(&self) -> String {
        self.bound.url()
    }

    /// Serves until `token` is cancelled; open watch streams end then.
    pub async fn run_until(self, token: CancellationToken) -> anyhow::Result<()> {
        let expiry = tokio::spawn(self.registry.clone().expire_until(token.child_token()));
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<DiscoveryServer<DiscoveryService>>().await;
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;
        let discovery = DiscoveryServer::new(DiscoveryService::new(self.registry.clone(), token.clone(), self.access));
        let grpc = tonic::service::Routes::new(discovery)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .into_axum_router();
        let ready: liner_shared::http::ReadyCheck = Arc::new(|| Box::pin(async { true }));
        let router = grpc.merge(liner_shared::http::ops_router(ready)).merge(liner_shared::http::metrics_router());
        let served = self.bound.serve(router, token.clone()).await;
        health.set_not_serving::<DiscoveryServer<DiscoveryService>>().await;
        token.cancel();
        let _ = expiry.await;
        served
    }
}

/// Binds the listener; nothing is served until [`Running::run_until`].
pub async fn build(settings: Settings) -> anyhow::Result<Running> {
    build_with(settings, None).await
}

/// [`build`] on a listener the caller already holds, in place of binding
/// `settings.listen`: for a test that keeps the registry's port bound while no registry
/// answers on it yet (the registrar's retries in `tests/registry.rs`), so the port is
/// never let go and bound again.
pub async fn build_on(settings: Settings, listener: tokio::net::TcpListener) -> anyhow::Result<Running> {
    build_with(settings, Some(listener)).await
}

async fn build_with(settings: Settings, listener: Option<tokio::net::TcpListener>) -> anyhow::Result<Running> {
    let token = settings.token.resolve()?;
    if token.is_none() {
        tracing::warn!("discovery runs without a token: any process that reaches it can register");
    }
    let access = Access::new(token.as_deref(), settings.open_reads);
    let registry = Arc::new(Registry::new(Duration::from_secs(settings.default_ttl_secs)));
    let tls = settings.tls.server()?;
    let bound = match listener {
        Some(listener) => Bound::from_listener(listener, "discovery", tls)?,
        None => Bound::bind_tls(settings.listen, "discovery", tls).await?,
    };
    Ok(Running { bound, registry, access })
}
