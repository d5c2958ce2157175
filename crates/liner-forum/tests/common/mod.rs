//! Test support: a real review service (the token issuer) and real forum replicas on
//! port 0, driven over HTTP and WebSocket like any client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_util::sync::CancellationToken;

pub type Ws = WebSocketStream<TcpStream>;

/// Longest wait for any single expected frame; generous for a loaded 2-core machine.
pub const FRAME_WAIT: Duration = Duration::from_secs(30);

/// Which storage and fan-out the forum replicas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SQLite file, in-process fan-out, one replica.
    Embedded,
    /// A fresh PostgreSQL database, Redis fan-out, two replicas.
    Replicated,
}

pub struct Review {
    pub base: String,
    pub dir: TempDir,
    pub stop: CancellationToken,
}

impl Review {
    pub fn jwks_url(&self) -> String {
        format!("{}/api/users-reviews/.well-known/jwks.json", self.base)
    }
}

pub async fn start_review() -> Review {
    // Silent unless TEST_LOG is set (e.g. TEST_LOG=1 LINER_LOG=debug).
    if std::env::var_os("TEST_LOG").is_some() {
        liner_shared::telemetry::init();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = liner_review::Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().join("review"));
    // Tests sign up hundreds of members from one address.
    settings.registrations_per_address = 0;
    let running = liner_review::build(settings).await.expect("review service builds");
    let base = format!("http://{}", running.addr());
    let stop = CancellationToken::new();
    tokio::spawn(running.run_until(stop.clone()));
    Review { base, dir, stop }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub token: String,
}

pub async fn register(review: &Review, username: &str) -> User {
    let http = reqwest::Client::new();
    let password = "correct horse battery";
    let res = http
        .post(format!("{}/api/users-reviews/users/register", review.base))
        .json(&json!({"username": username, "password": password, "email": format!("{username}@example.com")}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 201, "register {username}");
    let res = http
        .post(format!("{}/api/users-reviews/users/login", review.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200, "login {username}");
    let body: Value = res.json().await.expect("login body");
    User {
        id: body["user"]["id"].as_str().expect("user id").to_owned(),
        username: username.to_owned(),
        token: body["token"].as_str().expect("token").to_owned(),
    }
}

pub async fn register_many(review: &Review, prefix: &str, n: usize) -> Vec<User> {
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        users.push(register(review, &format!("{prefix}{i}")).await);
    }
    users
}

pub struct Forum {
    pub addr: SocketAddr,
    pub http: String,
    /// What the forum holds for connected members (sessions, rooms, memberships).
    pub probe: liner_forum::LiveProbe,
    pub stop: CancellationToken,
    pub dir: TempDir,
}

impl Forum {
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/forums{path}", self.http)
    }
}

/// The database and Redis URLs one deployment's replicas share.
pub struct Backing {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

pub async fn backing(mode: Mode) -> Backing {
    match mode {
        Mode::Embedded => Backing { database_url: None, redis_url: None },
        Mode::Replicated => Backing {
            database_url: Some(liner_shared::testkit::fresh_pg_database().await),
            redis_url: Some(liner_shared::testkit::redis_url()),
        },
    }
}

pub async fn start_forum(review: &Review, backing: &Backing, tweak: impl FnOnce(&mut liner_forum::Settings)) -> Forum {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = liner_forum::Settings::new("127.0.0.1:0".parse().unwrap(), dir.path().join("forum"));
    settings.review = liner_discovery::peers::ReviewArgs::at(review.base.clone());
    settings.service.database_url = backing.database_url.as_ref().map(|u| u.parse().expect("database url"));
    settings.redis_url = backing.redis_url.clone();
    tweak(&mut settings);
    let running = liner_forum::build(settings).await.expect("forum builds");
    let addr = running.addr();
    let probe = running.live_probe();
    let stop = CancellationToken::new();
    tokio::spawn(running.run_until(stop.clone()));
    Forum { addr, http: format!("http://{addr}"), probe, stop, dir }
}

/// One forum replica (embedded) or two sharing PostgreSQL and Redis (replicated).
pub async fn start_forums(
    review: &Review,
    mode: Mode,
    tweak: impl Fn(&mut liner_forum::Settings),
) -> (Backing, Vec<Forum>) {
    let backing = backing(mode).await;
    let n = if mode == Mode::Replicated { 2 } else { 1 };
    let mut forums = Vec::new();
    for _ in 0..n {
        forums.push(start_forum(review, &backing, &tweak).await);
    }
    (backing, forums)
}

pub async fn create_room(forum: &Forum, user: &User, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(forum.api("/rooms"))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .expect("create room");
    assert_eq!(res.status(), 201, "create room {body}");
    res.json().await.expect("room body")
}

pub async fn history(forum: &Forum, room_id: &str, query: &str) -> Vec<Value> {
    let res = reqwest::get(forum.api(&format!("/rooms/{room_id}/messages{query}"))).await.expect("history");
    assert_eq!(res.status(), 200);
    res.json().await.expect("history body")
}

/// The whole history of a room, oldest first, paging backwards with `before`.
pub async fn full_history(forum: &Forum, room_id: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let query = match before {
            Some(b) => format!("?limit=200&before={b}"),
            None => "?limit=200".to_owned(),
        };
        let page = history(forum, room_id, &query).await;
        if page.is_empty() {
            break;
        }
        before = page[0]["seq"].as_i64();
        let mut page = page;
        page.extend(all);
        all = page;
    }
    all
}

pub fn connect_url(forum: &Forum, room_id: &str, since: Option<i64>) -> String {
    let mut url = format!("ws://{}/api/forums/connect?roomId={room_id}", forum.addr);
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    url
}

/// Opens a WebSocket with these headers; the HTTP status and error body when refused.
pub async fn try_connect(url: &str, headers: &[(&str, String)], recv_buffer: Option<u32>) -> Result<Ws, (u16, Value)> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut()
            .insert(http::HeaderName::from_bytes(k.as_bytes()).expect("header name"), v.parse().expect("header value"));
    }
    let addr: SocketAddr = req.uri().authority().expect("authority").as_str().parse().expect("socket addr");
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("recv buffer");
    }
    let stream = socket.connect(addr).await.expect("tcp connect");
    stream.set_nodelay(true).expect("nodelay");
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            let status = res.status().as_u16();
            let body = res.body().as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
            Err((status, body))
        }
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    }
}

pub async fn connect(forum: &Forum, user: &User, room_id: &str, since: Option<i64>) -> Ws {
    let url = connect_url(forum, room_id, since);
    match try_connect(&url, &[("authorization", format!("Bearer {}", user.token))], None).await {
        Ok(ws) => ws,
        Err((status, body)) => panic!("connect refused: {status} {body}"),
    }
}

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Close(Option<(u16, String)>),
    /// The stream ended without a close frame.
    End,
}

pub async fn next_frame(ws: &mut Ws) -> Frame {
    let next = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return Frame::End,
                Some(Ok(Message::Text(t))) => {
                    return Frame::Json(serde_json::from_str(t.as_str()).expect("JSON frame"));
                }
                Some(Ok(Message::Close(c))) => {
                    return Frame::Close(c.map(|c| (u16::from(c.code), c.reason.to_string())));
                }
                Some(Ok(_)) => continue, // pings and pongs
            }
        }
    };
    tokio::time::timeout(FRAME_WAIT, next).await.expect("a frame within the wait")
}

/// The next JSON frame; panics on a close.
pub async fn next_json(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Frame::Json(v) => v,
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// Skips frames until one of `type` arrives.
pub async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

/// Sends and waits for this connection's answer (ack or error), skipping other frames.
pub async fn send_and_answer(ws: &mut Ws, frame: Value) -> Value {
    let cid = frame["clientMsgId"].as_str().expect("a clientMsgId").to_owned();
    send_json(ws, frame).await;
    loop {
        let v = next_json(ws).await;
        if matches!(v["type"].as_str(), Some("ack" | "error")) && v["clientMsgId"] == cid.as_str() {
            return v;
        }
    }
}

/// Waits for this connection's own `joined` presence: from then on it receives every
/// message stored in the room.
pub async fn wait_joined(ws: &mut Ws, user: &User) -> Value {
    loop {
        let v = next_of_type(ws, "presence").await;
        if v["joined"]["userId"] == user.id.as_str() {
            return v;
        }
    }
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

pub fn chat(room_id: &str, text: &str, client_msg_id: Option<&str>) -> Value {
    let mut v = json!({"roomId": room_id, "message": text});
    if let Some(c) = client_msg_id {
        v["clientMsgId"] = json!(c);
    }
    v
}

/// A TCP proxy that can cut every connection through it and refuse new ones, to
/// simulate losing a dependency (Redis) for a while.
pub struct FlakyProxy {
    pub addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl FlakyProxy {
    pub async fn start(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close at once
                }
                let target = target.clone();
                let mut cut = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, generation }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `host:port` of a `redis://host[:port][/db]` URL.
pub fn redis_host_port(url: &str) -> String {
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:6379") }
}
