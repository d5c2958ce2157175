//! Binding and serving, shared by every HTTP service: bind first (port 0 allowed) and
//! report the real address, serve later until a token is cancelled.

use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
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
    ///
    /// TCP_NODELAY on every accepted connection: responses and frames are small and
    /// latency-bound, and Nagle's algorithm would hold some of them back up to 40 ms.
    pub async fn serve(self, router: Router, token: CancellationToken) -> anyhow::Result<()> {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await?;
        Ok(())
    }
}
