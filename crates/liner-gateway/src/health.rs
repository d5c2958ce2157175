//! Active health checks: every interval, `GET /readyz` on every known instance. A
//! failing check takes the instance out of the rotation (without touching its
//! breaker) until a check passes again. Together with the breaker's passive ejection
//! this bounds how long a dead instance keeps receiving traffic even before its
//! discovery lease expires.
//!
//! The same loop closes the request path's upstream connections that sat idle too long
//! (`connections`), so that they go even when no request comes by to notice.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use liner_shared::tls::PeerClient;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::balance::{Endpoint, Pool};

/// Checks every endpoint of `pools` each `interval` until `token` is cancelled.
pub async fn check_until(pools: Vec<Arc<Pool>>, client: PeerClient, interval: Duration, token: CancellationToken) {
    let timeout = interval.min(Duration::from_secs(2));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut probes = JoinSet::new();
        let now = std::time::Instant::now();
        for endpoint in pools.iter().flat_map(|p| p.endpoints().iter().cloned().collect::<Vec<_>>()) {
            endpoint.connections.close_idle(now);
            let client = client.clone();
            probes.spawn(async move {
                let ready = probe(&client, &endpoint, timeout).await;
                if endpoint.set_ready(ready) {
                    if ready {
                        tracing::info!(service = endpoint.service, upstream = %endpoint.address, "active check passes: instance back in rotation");
                    } else {
                        tracing::warn!(service = endpoint.service, upstream = %endpoint.address, "active check fails: instance out of rotation");
                    }
                }
            });
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = async { while probes.join_next().await.is_some() {} } => {}
        }
    }
}

async fn probe(client: &PeerClient, endpoint: &Endpoint, timeout: Duration) -> bool {
    let Ok(req) = Request::get(format!("{}/readyz", endpoint.base_url)).body(Body::empty()) else { return false };
    matches!(
        tokio::time::timeout(timeout, client.request(req)).await,
        Ok(Ok(res)) if res.status() == StatusCode::OK
    )
}
