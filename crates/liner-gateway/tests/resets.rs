//! An upstream that resets the connection before answering a read: the gateway retries
//! the read on another instance instead of answering 502 (found by the cluster test —
//! hyper wraps the reset, and the retry check stopped at the wrapper).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use liner_gateway::upstreams::StaticRoute;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Answers every request with 200.
async fn healthy_upstream(token: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().fallback(get(|| async { "ok" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await }).await;
    });
    addr
}

/// Reads the request, then closes with RST (linger 0) without answering.
async fn resetting_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let std = stream.into_std().expect("std stream");
                let sock = socket2::SockRef::from(&std);
                let _ = sock.set_linger(Some(Duration::ZERO));
                drop(std);
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reset_before_an_answer_are_retried() {
    let token = CancellationToken::new();
    let good = healthy_upstream(token.clone()).await;
    let bad = resetting_upstream().await;
    let routes: Vec<StaticRoute> =
        [good, bad].iter().map(|a| format!("review=http://{a}").parse().expect("route")).collect();
    let mut settings = liner_gateway::Settings::new(([127, 0, 0, 1], 0).into(), routes);
    settings.edge_auth = false;
    settings.breaker_failures = 1000; // keep the bad instance in rotation
    let gateway = liner_gateway::build(settings).await.expect("gateway");
    let url = format!("http://{}/api/users-reviews/reviews/x", gateway.addr());
    tokio::spawn(gateway.run_until(token.clone()));

    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(http.get(&url).send().await.expect("sent").status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200), "every read answered after a retry: {statuses:?}");
    token.cancel();
}
