//! Binding and serving, shared by every HTTP service: bind first (port 0 allowed) and
//! report the real address, serve later until a token is cancelled.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A bound listener that has not started serving yet.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub async fn bind(addr: SocketAddr, service: &str) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("{service}: cannot bind {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%service, %addr, "listening");
        Ok(Self { listener, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `token` is cancelled, then drains in-flight requests.
    pub async fn serve(self, router: Router, token: CancellationToken) -> anyhow::Result<()> {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await?;
        Ok(())
    }
}
