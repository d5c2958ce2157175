//! The gateway's test harness: fake upstreams (small axum servers that say who they
//! are), a gateway and a registry in-process on port 0, and bounded waits.
#![allow(dead_code, unused_imports)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use liner_gateway::upstreams::StaticRoute;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const DEADLINE: Duration = Duration::from_secs(30);

// === fake upstreams ===

#[derive(Clone)]
pub struct Fake {
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    pub failing: Arc<AtomicBool>,
    /// `/slow` answers only once this is closed (`Upstream::release_slow`).
    pub slow_gate: Arc<tokio::sync::Semaphore>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub state: Fake,
    pub token: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let state = Fake {
            name: name.to_owned(),
            hits: Arc::new(AtomicUsize::new(0)),
            failing: Arc::new(AtomicBool::new(false)),
            slow_gate: Arc::new(tokio::sync::Semaphore::new(0)),
        };
        let api = Router::new()
            .route("/whoami", any(whoami))
            .route("/slow", get(slow))
            .route("/flaky", get(flaky))
            .route("/status/{code}", any(status))
            .route("/connect", get(echo_ws));
        let app = Router::new()
            .nest("/api/forums", api.clone())
            .nest("/api/users-reviews", api)
            .route("/readyz", get(|| async { "ready" }))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        });
        Self { addr, state, token, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn route(&self, service: &str) -> StaticRoute {
        format!("{service}={}", self.url()).parse().unwrap()
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Lets every held and future `/slow` request answer.
    pub fn release_slow(&self) {
        self.state.slow_gate.close();
    }

    pub async fn stop(self) {
        self.release_slow();
        self.token.cancel();
        let _ = tokio::time::timeout(DEADLINE, self.task).await;
    }
}

pub async fn whoami(State(s): State<Fake>, headers: HeaderMap) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(serde_json::json!({
        "name": s.name,
        "xff": h("x-forwarded-for"),
        "internal": h("x-liner-user"),
        "requestId": h("x-request-id"),
    }))
}

/// Holds the request until the test releases it: as slow as the test needs, no longer.
pub async fn slow(State(s): State<Fake>) -> &'static str {
    s.hits.fetch_add(1, Ordering::SeqCst);
    // The gate never has permits: it only opens by being closed.
    let _ = s.slow_gate.acquire().await;
    "late"
}

pub async fn flaky(State(s): State<Fake>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if s.failing.load(Ordering::SeqCst) { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
}

pub async fn status(State(s): State<Fake>, Path(code): Path<u16>) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

pub async fn echo_ws(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(t) = msg
                && socket.send(Message::Text(format!("echo:{t}").into())).await.is_err()
            {
                break;
            }
        }
    })
}

// === gateway, registry ===

pub struct Gateway {
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`).
    pub admin: Option<SocketAddr>,
    pub view: liner_gateway::PoolsView,
    pub token: CancellationToken,
}

impl Gateway {
    pub async fn start(settings: liner_gateway::Settings) -> Self {
        let running = liner_gateway::build(settings).await.unwrap();
        let addr = running.addr();
        let admin = running.admin_addr();
        let view = running.view();
        let token = CancellationToken::new();
        tokio::spawn(running.run_until(token.clone()));
        Self { addr, admin, view, token }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the admin listener's `/metrics` says now.
    pub async fn metrics(&self) -> String {
        let admin = self.admin.expect("started with an admin listener");
        http().get(format!("http://{admin}/metrics")).send().await.unwrap().text().await.unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

pub fn settings(routes: Vec<StaticRoute>) -> liner_gateway::Settings {
    let mut s = liner_gateway::Settings::new(([127, 0, 0, 1], 0).into(), routes);
    s.edge_auth = false;
    s.admin_listen = Some(([127, 0, 0, 1], 0).into());
    s.health_interval_ms = 200;
    s
}

pub struct Registry {
    pub addr: SocketAddr,
    pub token: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Registry {
    pub async fn start_at(addr: SocketAddr, ttl_secs: u64) -> Self {
        let mut s = liner_discovery::Settings::new(addr);
        s.default_ttl_secs = ttl_secs;
        let mut tries = 0;
        let running = loop {
            match liner_discovery::build(s.clone()).await {
                Ok(r) => break r,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("registry: {e}"),
            }
        };
        let addr = running.addr();
        let token = CancellationToken::new();
        let task = tokio::spawn(running.run_until(token.clone()));
        Self { addr, token, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(DEADLINE, self.task).await;
    }
}

/// Registers `addr` as an instance of `service` until the returned token is cancelled
/// (deregisters) or the task is aborted (crash: the lease expires).
pub fn register(url: &str, service: &str, addr: SocketAddr, ttl: Duration) -> (CancellationToken, JoinHandle<()>) {
    let token = CancellationToken::new();
    let registration = liner_discovery::client::Registration::new(service, addr).with_ttl(ttl);
    let registrar = liner_discovery::client::Registrar::new(url, registration, &Default::default()).unwrap();
    let task = tokio::spawn(registrar.run(token.clone()));
    (token, task)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts the API error shape, the gateway as its source, and returns the code.
pub async fn gateway_error(res: reqwest::Response, status: u16) -> (String, HeaderMap) {
    assert_eq!(res.status().as_u16(), status);
    let headers = res.headers().clone();
    assert!(headers.contains_key("x-liner-error"), "answered by the gateway itself");
    let body: Value = res.json().await.expect("JSON error body");
    let code = body["error"]["code"].as_str().expect("error.code").to_owned();
    assert!(body["error"]["message"].is_string(), "error.message in {body}");
    (code, headers)
}

/// Sends a chunked POST over a raw socket (no Content-Length) and returns the answer's head.
pub async fn chunked_post_status(addr: SocketAddr, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(512) {
        // The gateway may answer and close before taking the whole body.
        if sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || sock.write_all(chunk).await.is_err()
            || sock.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, sock.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
}

pub async fn name_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["name"].as_str().unwrap().to_owned()
}
