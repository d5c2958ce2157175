//! The cluster harness of `cluster.rs` and `outages.rs`: the real `liner` binary started
//! as separate processes (discovery, gateway with `--admin-listen`, two review and two
//! forum replicas), observed from outside (the gateway's admin `/metrics`, the registry's
//! gRPC `List`, each replica's own `/metrics`), and a steady, bounded load through the
//! gateway: 4 HTTP clients writing reviews and reading them back, one client reading a
//! chat room's history, 6 WebSocket members chatting in that room (about 130 requests/s
//! in all). Members that lose their connection reconnect through the gateway with
//! `since=<last seq>` and resend their unacked messages with the same `clientMsgId`.
//!
//! The processes are `common/procs.rs`'s: each on port 0, its address read from its own
//! log line, its log in a temp dir whose tails are printed on failure. Not part of
//! `common/mod.rs` (the in-process tests' support): the tests that use it include it and
//! `common/procs.rs` (as `procs`, which this module uses) with `#[path]`, so the other
//! test binaries do not compile it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::procs::{Backoff, DISCOVERY_TOKEN, Logs, Proc, ready, spawn, start, wait_until};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Hard cap on the load phase, whatever happens.
pub const LOAD_CAP: Duration = Duration::from_secs(150);
/// What the replicas are started with: the drain after SIGTERM (not ready, deregistered,
/// still serving) before the listener closes.
pub const DRAIN_SECS: &str = "2";
/// SIGTERM → `/readyz` answers 503: at once, well within the 2 s drain.
pub const DRAIN_BOUND: Duration = Duration::from_secs(2);

pub const REVIEW_CLIENTS: usize = 4;
/// Each review client: one request per tick, alternating a write and a read (25/s).
pub const REVIEW_TICK: Duration = Duration::from_millis(40);
/// The history reader: 10 requests/s.
pub const HISTORY_TICK: Duration = Duration::from_millis(100);
pub const MEMBERS: usize = 6;
/// Each member sends one message per tick (3.3/s, under the forum's 5/s limit).
pub const CHAT_TICK: Duration = Duration::from_millis(300);
pub const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------
// Processes

/// Restarts a stopped replica: a new process on a new port-0 listener (the registry and
/// the gateway learn its new address as they would a new pod's).
pub async fn restart(http: &reqwest::Client, logs: &Logs, old: &Proc, args: &[String]) -> Proc {
    let proc = start(logs, &format!("{}-restarted", old.name), args).await;
    ready(http, &proc).await;
    proc
}

// ---------------------------------------------------------------------------------------
// Observing from outside

pub async fn scrape(http: &reqwest::Client, base: &str) -> String {
    match http.get(format!("{base}/metrics")).send().await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sum of the samples of `name` whose label set contains every one of `having`
/// (raw substrings such as `service="review"`); None when no sample matches.
pub fn metric(text: &str, name: &str, having: &[&str]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (labels, value) = if let Some(rest) = rest.strip_prefix('{') {
            // Label values may hold braces (routes like `/rooms/{room_id}`).
            let Some((labels, value)) = rest.rsplit_once('}') else { continue };
            (labels, value)
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue;
        };
        if !having.iter().all(|h| labels.contains(h)) {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// The gateway's view, from its `/metrics`.
pub struct GatewayView(pub String);

impl GatewayView {
    pub async fn fetch(http: &reqwest::Client, gw: &str) -> Self {
        Self(scrape(http, gw).await)
    }

    pub fn instances(&self, service: &str) -> Option<u64> {
        metric(&self.0, "gateway_upstream_instances", &[&format!("service=\"{service}\"")]).map(|v| v as u64)
    }

    pub fn ready(&self, addr: &str) -> Option<bool> {
        metric(&self.0, "gateway_upstream_ready", &[&format!("upstream=\"{addr}\"")]).map(|v| v > 0.5)
    }

    pub fn breaker_open(&self, addr: &str) -> bool {
        metric(&self.0, "gateway_upstream_breaker_state", &[&format!("upstream=\"{addr}\"")]).is_some_and(|v| v > 1.5)
    }

    /// Requests the gateway sent to `addr` (answered or not).
    pub fn attempts(&self, addr: &str) -> u64 {
        metric(&self.0, "gateway_upstream_requests_total", &[&format!("upstream=\"{addr}\"")]).unwrap_or(0.0) as u64
    }
}

/// API requests a replica served, from its own `/metrics` (a fresh process starts at 0).
pub async fn api_requests(http: &reqwest::Client, replica: &str) -> u64 {
    metric(&scrape(http, replica).await, "http_requests_total", &["route=\"/api/"]).unwrap_or(0.0) as u64
}

/// WebSocket upgrades a forum replica accepted.
pub async fn ws_upgrades(http: &reqwest::Client, replica: &str) -> u64 {
    metric(&scrape(http, replica).await, "http_requests_total", &["connect\"", "status=\"101\""]).unwrap_or(0.0) as u64
}

/// The registry's own view through its gRPC `List`: (addresses, complete).
pub async fn registry_list(url: &str, service: &str) -> Option<(Vec<String>, bool)> {
    use liner_discovery::proto::ListRequest;
    use liner_discovery::proto::discovery_client::DiscoveryClient;
    let mut client = DiscoveryClient::connect(url.to_owned()).await.ok()?;
    let mut req = tonic::Request::new(ListRequest { service: service.to_owned() });
    req.metadata_mut().insert("authorization", format!("Bearer {DISCOVERY_TOKEN}").parse().ok()?);
    let res = client.list(req).await.ok()?.into_inner();
    let mut addrs: Vec<String> = res.instances.into_iter().map(|i| i.address).collect();
    addrs.sort();
    Some((addrs, res.complete))
}

// ---------------------------------------------------------------------------------------
// Clients

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client")
}

pub struct User {
    pub id: String,
    pub token: String,
}

pub async fn user(http: &reqwest::Client, gw: &str, name: &str) -> User {
    let base = format!("{gw}/api/users-reviews/users");
    let body = json!({"username": name, "password": PASSWORD, "email": format!("{name}@example.com")});
    let res = http.post(format!("{base}/register")).json(&body).send().await.expect("register");
    assert_eq!(res.status(), 201, "register {name}: {}", res.text().await.unwrap_or_default());
    let login = json!({"username": name, "password": PASSWORD});
    let v: Value =
        http.post(format!("{base}/login")).json(&login).send().await.expect("login").json().await.expect("json");
    User { id: v["user"]["id"].as_str().expect("user id").into(), token: v["token"].as_str().expect("token").into() }
}

/// What one HTTP client saw.
#[derive(Default)]
pub struct HttpLog {
    /// (review id, albumId) of every write answered 201.
    pub acked: Vec<(String, String)>,
    pub writes: usize,
    pub failed_writes: usize,
    pub reads: usize,
    pub failed_reads: usize,
    pub max_failed_reads_in_row: usize,
    /// Every failed request (read or write).
    pub failures: Vec<Failure>,
}

/// A request that did not get the answer it wanted.
#[derive(Debug, Clone)]
pub struct Failure {
    /// When it ended.
    pub at: Instant,
    /// How long it took.
    pub took: Duration,
    /// The status it was answered with (None: no answer).
    pub status: Option<u16>,
    pub why: String,
}

/// Why [`expect_status`] failed: the status (None when there was no answer) and a text.
#[derive(Debug)]
pub struct Failed {
    pub status: Option<u16>,
    pub why: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl Failed {
    fn into_failure(self, what: &str, sent: Instant) -> Failure {
        Failure { at: Instant::now(), took: sent.elapsed(), status: self.status, why: format!("{what}: {}", self.why) }
    }
}

impl HttpLog {
    fn read(&mut self, ok: Result<(), Failed>, sent: Instant, in_row: &mut usize, done: &AtomicU64) {
        self.reads += 1;
        match ok {
            Ok(()) => {
                *in_row = 0;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(failed) => {
                self.failed_reads += 1;
                *in_row += 1;
                self.max_failed_reads_in_row = self.max_failed_reads_in_row.max(*in_row);
                self.failures.push(failed.into_failure("read", sent));
            }
        }
    }
}

pub async fn expect_status(res: reqwest::Result<reqwest::Response>, want: u16) -> Result<Value, Failed> {
    let res = res.map_err(|e| Failed { status: None, why: format!("{e}") })?;
    let status = res.status().as_u16();
    let failed = |why: String| Failed { status: Some(status), why };
    let bytes = res.bytes().await.map_err(|e| failed(format!("body: {e}")))?;
    if status != want {
        return Err(failed(format!("{status} {}", String::from_utf8_lossy(&bytes))));
    }
    serde_json::from_slice(&bytes).map_err(|e| failed(format!("json: {e}")))
}

/// Alternates writing a review (a new album each time) and reading back its last
/// acknowledged one, until `running` turns false.
pub async fn review_client(
    gw: String,
    token: String,
    c: usize,
    running: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> HttpLog {
    let http = http_client();
    let mut log = HttpLog::default();
    let mut tick = tokio::time::interval(REVIEW_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut i, mut in_row) = (0usize, 0usize);
    while running.load(Ordering::Relaxed) {
        tick.tick().await;
        i += 1;
        if i % 2 == 1 {
            let album = format!("cluster:c{c}-{i}");
            log.writes += 1;
            let body = json!({"albumId": album, "rating": 3.5, "reviewText": "under load"});
            let sent = Instant::now();
            let res = http.post(format!("{gw}/api/users-reviews/reviews")).bearer_auth(&token).json(&body).send().await;
            match expect_status(res, 201).await {
                Ok(v) => {
                    log.acked.push((v["id"].as_str().expect("review id").to_owned(), album));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(failed) => {
                    log.failed_writes += 1;
                    log.failures.push(failed.into_failure("write", sent));
                }
            }
        } else if let Some((id, album)) = log.acked.last().cloned() {
            let sent = Instant::now();
            let res = http.get(format!("{gw}/api/users-reviews/reviews/{id}")).send().await;
            let ok = expect_status(res, 200).await.and_then(|v| {
                if v["albumId"] == album.as_str() {
                    Ok(())
                } else {
                    Err(Failed { status: Some(200), why: format!("wrong review: {v}") })
                }
            });
            log.read(ok, sent, &mut in_row, &done);
        }
    }
    log
}

/// Reads the room's latest messages, until `running` turns false.
pub async fn history_client(gw: String, room: String, running: Arc<AtomicBool>, done: Arc<AtomicU64>) -> HttpLog {
    let http = http_client();
    let mut log = HttpLog::default();
    let mut tick = tokio::time::interval(HISTORY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_row = 0;
    while running.load(Ordering::Relaxed) {
        tick.tick().await;
        let sent = Instant::now();
        let res = http.get(format!("{gw}/api/forums/rooms/{room}/messages?limit=20")).send().await;
        let ok = expect_status(res, 200)
            .await
            .and_then(|v| if v.is_array() { Ok(()) } else { Err(Failed { status: Some(200), why: format!("{v}") }) });
        log.read(ok, sent, &mut in_row, &done);
    }
    log
}

// ---------------------------------------------------------------------------------------
// Chat members

pub async fn ws_connect(gw_addr: &str, token: &str, room: &str, since: i64) -> Result<Ws, String> {
    let url = format!("ws://{gw_addr}/api/forums/connect?roomId={room}&since={since}");
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    match tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// Reads until this member's own join is announced: from then on it is live.
pub async fn wait_joined(ws: &mut Ws, user_id: &str) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("join within 30 s");
        let Some(Ok(Message::Text(t))) = frame else {
            assert!(matches!(frame, Some(Ok(_))), "connection lost before join: {frame:?}");
            continue;
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("json frame");
        assert_ne!(v["type"], "message", "no message before the load starts: {v}");
        if v["type"] == "presence" && v["joined"]["userId"] == user_id {
            return;
        }
    }
}

/// Shared by the members and the test.
#[derive(Clone, Default)]
pub struct ChatCtl {
    pub stop_sending: Arc<AtomicBool>,
    /// Members with nothing left unacknowledged after `stop_sending`.
    pub done_sending: Arc<AtomicUsize>,
    /// The room's last seq once known (-1 before): members read up to it, then end.
    pub target: Arc<AtomicI64>,
    pub acked: Arc<AtomicU64>,
    /// The highest seq acked to any member so far.
    pub acked_seq: Arc<AtomicI64>,
    /// Each member's last received seq, by member name.
    pub progress: Arc<Mutex<HashMap<String, i64>>>,
}

impl ChatCtl {
    /// The lowest last-received seq over the members (0 before any has received one).
    pub fn slowest_member(&self) -> i64 {
        let progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if progress.len() < MEMBERS { 0 } else { progress.values().copied().min().unwrap_or(0) }
    }
}

pub struct Member {
    pub name: String,
    pub user: User,
    /// Index of the forum replica its first connection landed on.
    pub replica: usize,
}

/// What one member saw.
#[derive(Default)]
pub struct MemberLog {
    pub name: String,
    pub replica: usize,
    pub user_id: String,
    /// Seqs of the `message` frames received, in arrival order.
    pub received: Vec<i64>,
    /// clientMsgId → acked seq.
    pub acks: HashMap<String, i64>,
    pub sent: usize,
    pub resent: usize,
    pub reconnects: usize,
    pub connect_failures: usize,
    pub max_connect_failures_in_row: usize,
    /// Connection lost → connected again.
    pub reconnect_took: Vec<Duration>,
    /// Connection losses, as instants (to match them with the kill).
    pub lost_at: Vec<Instant>,
    pub errors: Vec<String>,
    pub violations: Vec<String>,
    /// Messages refused as `unavailable`, to send again (one per tick, before new ones).
    pub retry: Vec<String>,
}

impl MemberLog {
    pub fn last(&self) -> i64 {
        self.received.iter().copied().max().unwrap_or(0)
    }

    pub fn handle(&mut self, text: &str, pending: &mut BTreeMap<usize, String>, ctl: &ChatCtl) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.violations.push(format!("not JSON: {text}"));
            return;
        };
        match v["type"].as_str() {
            Some("message") => {
                let seq = v["seq"].as_i64().expect("seq");
                if seq != self.last() + 1 {
                    self.violations.push(format!("message seq {seq} after {}", self.last()));
                }
                self.received.push(seq);
                ctl.progress.lock().unwrap_or_else(|p| p.into_inner()).insert(self.name.clone(), seq);
            }
            Some("ack") => {
                let cid = v["clientMsgId"].as_str().unwrap_or_default().to_owned();
                let seq = v["seq"].as_i64().expect("ack seq");
                if let Some(old) = self.acks.insert(cid.clone(), seq)
                    && old != seq
                {
                    self.violations.push(format!("{cid} acked as {old} and as {seq}"));
                }
                pending.retain(|_, c| *c != cid);
                ctl.acked.fetch_add(1, Ordering::Relaxed);
                ctl.acked_seq.fetch_max(seq, Ordering::Relaxed);
            }
            Some("error") => {
                self.errors.push(v.to_string());
                if let Some(cid) = v["clientMsgId"].as_str() {
                    if v["code"] == "unavailable" {
                        // Not stored (or not known to be): sent again with the same
                        // clientMsgId, as the protocol asks, so it is stored once.
                        self.retry.push(cid.to_owned());
                    } else {
                        pending.retain(|_, c| c != cid);
                    }
                }
            }
            _ => {}
        }
    }
}

pub fn chat_frame(room: &str, cid: &str) -> Message {
    Message::text(json!({"roomId": room, "message": cid, "clientMsgId": cid}).to_string())
}

/// Sends a message per tick until told to stop, reconnecting through the gateway with
/// `since=<last seq>` whenever its connection is lost and resending what was not acked;
/// ends once every message up to the room's final seq has arrived.
pub async fn member(gw_addr: String, room: String, m: Member, ws: Ws, ctl: ChatCtl) -> MemberLog {
    let mut log =
        MemberLog { name: m.name.clone(), replica: m.replica, user_id: m.user.id.clone(), ..Default::default() };
    let mut pending: BTreeMap<usize, String> = BTreeMap::new();
    let mut k = 0usize;
    let (mut sending, mut reported) = (true, false);
    let mut tick = tokio::time::interval(CHAT_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ws = Some(ws);
    'outer: loop {
        let (mut sink, mut stream) = ws.take().expect("a connection").split();
        let mut broken = false;
        log.retry.clear(); // everything pending is sent again now
        for cid in pending.values() {
            log.resent += 1;
            if sink.send(chat_frame(&room, cid)).await.is_err() {
                broken = true;
                break;
            }
        }
        let mut last_frame = Instant::now();
        while !broken {
            if !sending && pending.is_empty() {
                if !reported {
                    reported = true;
                    ctl.done_sending.fetch_add(1, Ordering::Relaxed);
                }
                let target = ctl.target.load(Ordering::Relaxed);
                if target >= 0 && log.last() >= target {
                    break 'outer;
                }
            }
            tokio::select! {
                _ = tick.tick() => {
                    if ctl.stop_sending.load(Ordering::Relaxed) {
                        sending = false;
                    }
                    // Our own messages and acks come back at least every tick: a
                    // silent connection is a dead one.
                    if last_frame.elapsed() > Duration::from_secs(10) {
                        log.errors.push("no frame for 10 s; reconnecting".into());
                        broken = true;
                    } else if !log.retry.is_empty() {
                        let cid = log.retry.remove(0);
                        if pending.values().any(|c| *c == cid) {
                            log.resent += 1;
                            broken = sink.send(chat_frame(&room, &cid)).await.is_err();
                        }
                    } else if sending {
                        k += 1;
                        let cid = format!("{}-{k}", m.name);
                        pending.insert(k, cid.clone());
                        log.sent += 1;
                        broken = sink.send(chat_frame(&room, &cid)).await.is_err();
                    }
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(t))) => {
                        last_frame = Instant::now();
                        log.handle(t.as_str(), &mut pending, &ctl);
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => broken = true,
                    Some(Ok(_)) => last_frame = Instant::now(),
                }
            }
        }
        // Lost: back in through the gateway, resuming after the last seq we have.
        let lost = Instant::now();
        log.lost_at.push(lost);
        let mut in_row = 0;
        // The client under test backs off between attempts, as real ones do.
        let mut backoff = Backoff::up_to(Duration::from_millis(200));
        loop {
            match ws_connect(&gw_addr, &m.user.token, &room, log.last()).await {
                Ok(w) => {
                    ws = Some(w);
                    log.reconnects += 1;
                    log.reconnect_took.push(lost.elapsed());
                    break;
                }
                Err(e) => {
                    log.connect_failures += 1;
                    in_row += 1;
                    log.max_connect_failures_in_row = log.max_connect_failures_in_row.max(in_row);
                    log.errors.push(format!("reconnect: {e}"));
                    assert!(lost.elapsed() < Duration::from_secs(30), "{} could not reconnect: {e}", m.name);
                    backoff.wait().await;
                }
            }
        }
    }
    log
}

/// The whole history of a room, oldest first.
pub async fn history(http: &reqwest::Client, gw: &str, room: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut before = i64::MAX;
    loop {
        let url = format!("{gw}/api/forums/rooms/{room}/messages?limit=200&before={before}");
        let page: Vec<Value> = http.get(url).send().await.expect("history").json().await.expect("history json");
        let Some(first) = page.first() else { break };
        before = first["seq"].as_i64().expect("seq");
        all.splice(0..0, page);
    }
    all
}

pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---------------------------------------------------------------------------------------
// The cluster and its load

/// What the replicas store in: a PostgreSQL database each for review and forum, one Redis.
pub struct Backends {
    pub review_db: String,
    pub forum_db: String,
    pub redis: String,
}

/// The running cluster: every process, how to start each again, and where to reach it.
pub struct Cluster {
    pub http: reqwest::Client,
    pub discovery: Proc,
    pub discovery_addr: String,
    pub discovery_url: String,
    pub discovery_args: Vec<String>,
    pub reviews: Vec<Proc>,
    pub review_args: Vec<String>,
    pub forums: Vec<Proc>,
    pub forum_args: Vec<String>,
    pub gateway: Proc,
    pub gw: String,
    pub gw_addr: String,
    pub gw_admin: String,
    /// Last, so that it is dropped after the processes (it prints their logs' tails).
    pub logs: Logs,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Cluster {
    /// Starts discovery, two review and two forum replicas (`--drain-secs` [`DRAIN_SECS`])
    /// and the gateway (`--health-interval-ms 500`, no rate limits, plus `gateway_extra`),
    /// and waits until the gateway routes to all four replicas.
    pub async fn start(backends: &Backends, gateway_extra: &[&str]) -> Self {
        let started = Instant::now();
        let logs = Logs::new();
        let http = http_client();
        let key_dir = logs.dir.path().join("review-data");
        std::fs::create_dir_all(&key_dir).expect("key dir");
        let forum_dir = logs.dir.path().join("forum-data");
        std::fs::create_dir_all(&forum_dir).expect("forum dir");
        let discovery_args = strings(&["discovery"]);
        let discovery = start(&logs, "discovery", &discovery_args).await;
        ready(&http, &discovery).await;
        let discovery_addr = discovery.addr.clone();
        let discovery_url = discovery.url();

        let replica_args = |service: &str, db: &str, dir: &std::path::Path| {
            strings(&[
                service,
                "--discovery",
                &discovery_url,
                "--database-url",
                db,
                "--redis-url",
                &backends.redis,
                "--data-dir",
                dir.to_str().expect("utf-8 path"),
                "--db-max-connections",
                "5",
                "--drain-secs",
                DRAIN_SECS,
            ])
        };
        let review_args = replica_args("review", &backends.review_db, &key_dir);
        let forum_args = replica_args("forum", &backends.forum_db, &forum_dir);
        // On PostgreSQL no replica generates a key: both are given one, as a secret would.
        liner_review::keys::Signer::load_or_generate(&key_dir.join("review-jwt-ed25519.pem"), 60)
            .expect("a signing key");
        // All four start together; each is then waited for.
        let starting = [
            spawn(&logs, "review-1", &review_args),
            spawn(&logs, "review-2", &review_args),
            spawn(&logs, "forum-1", &forum_args),
            spawn(&logs, "forum-2", &forum_args),
        ];
        let mut gateway_args = strings(&[
            "gateway",
            "--discovery",
            &discovery_url,
            "--health-interval-ms",
            "500",
            "--rate-limit-ip",
            "0",
            "--rate-limit-user",
            "0",
            "--admin-listen",
            "127.0.0.1:0",
        ]);
        gateway_args.extend(strings(gateway_extra));
        let gateway = spawn(&logs, "gateway", &gateway_args);
        let mut replicas = Vec::new();
        for p in starting {
            let p = p.listening().await;
            ready(&http, &p).await;
            replicas.push(p);
        }
        let forums = replicas.split_off(2);
        let reviews = replicas;
        let mut gateway = gateway.listening().await;
        let gw_addr = gateway.addr.clone();
        let gw = gateway.url();
        let gw_admin = format!("http://{}", gateway.listener("gateway admin").await);
        let cluster = Self {
            http,
            discovery,
            discovery_addr,
            discovery_url,
            discovery_args,
            reviews,
            review_args,
            forums,
            forum_args,
            gateway,
            gw,
            gw_addr,
            gw_admin,
            logs,
        };
        let all_addrs: Vec<String> = cluster.replicas().map(|p| p.addr.clone()).collect();
        wait_until("the gateway routes to all four replicas", Duration::from_secs(60), || async {
            let v = cluster.view().await;
            v.instances("review") == Some(2)
                && v.instances("forum") == Some(2)
                && all_addrs.iter().all(|a| v.ready(a) == Some(true))
        })
        .await;
        eprintln!("cluster up in {} ms (logs in {})", ms(started.elapsed()), cluster.logs.dir.path().display());
        cluster
    }

    /// The four replicas.
    pub fn replicas(&self) -> impl Iterator<Item = &Proc> {
        self.reviews.iter().chain(self.forums.iter())
    }

    /// The gateway's view of its pool, now.
    pub async fn view(&self) -> GatewayView {
        GatewayView::fetch(&self.http, &self.gw_admin).await
    }

    /// [`REVIEW_CLIENTS`] writers and [`MEMBERS`] chat members (signed up and logged in),
    /// a room, and the members connected to it through the gateway, three on each forum
    /// replica (each replica's own upgrade counter tells where one landed; a connection
    /// landing on a full replica is closed and tried again).
    pub async fn users_and_room(&self, room_title: &str) -> (Vec<User>, String, Vec<(Member, Ws)>) {
        let (http, gw) = (&self.http, &self.gw);
        let mut registering = Vec::new();
        for i in 0..REVIEW_CLIENTS + MEMBERS {
            let (http, gw) = (http.clone(), gw.clone());
            let name = if i < REVIEW_CLIENTS { format!("writer{i}") } else { format!("member{}", i - REVIEW_CLIENTS) };
            registering.push(tokio::spawn(async move { user(&http, &gw, &name).await }));
        }
        let mut users = Vec::new();
        for r in registering {
            users.push(r.await.expect("user"));
        }
        let member_users = users.split_off(REVIEW_CLIENTS);
        let res = http
            .post(format!("{gw}/api/forums/rooms"))
            .bearer_auth(&member_users[0].token)
            .json(&json!({"roomType": "genre", "genreId": "cluster-test", "title": room_title}))
            .send()
            .await
            .expect("create room");
        let room = expect_status(Ok(res), 201).await.expect("room created")["id"].as_str().expect("room id").to_owned();

        let forum_urls: Vec<String> = self.forums.iter().map(Proc::url).collect();
        let mut placed = [0usize; 2];
        let mut members = Vec::new();
        let mut attempts = 0;
        for (i, u) in member_users.into_iter().enumerate() {
            loop {
                attempts += 1;
                assert!(attempts < 60, "the gateway never spread the members over both forum replicas");
                let before = [ws_upgrades(http, &forum_urls[0]).await, ws_upgrades(http, &forum_urls[1]).await];
                let mut ws = ws_connect(&self.gw_addr, &u.token, &room, 0).await.expect("member connects");
                wait_joined(&mut ws, &u.id).await;
                let after = [ws_upgrades(http, &forum_urls[0]).await, ws_upgrades(http, &forum_urls[1]).await];
                let on: Vec<usize> = (0..2).filter(|&r| after[r] > before[r]).collect();
                assert_eq!(on.len(), 1, "one upgrade per connect: before {before:?}, after {after:?}");
                let r = on[0];
                if placed[r] < MEMBERS / 2 {
                    placed[r] += 1;
                    members.push((Member { name: format!("m{i}"), user: u, replica: r }, ws));
                    break;
                }
                let _ = ws.close(None).await;
            }
        }
        eprintln!("members placed: {placed:?} on forum-1/forum-2 after {attempts} connects through the gateway");
        (users, room, members)
    }
}

/// The steady load: the review clients, the history reader and the chat members, until
/// [`Load::finish`] (or [`LOAD_CAP`], whatever happens).
pub struct Load {
    pub running: Arc<AtomicBool>,
    /// Successful HTTP requests so far.
    pub done: Arc<AtomicU64>,
    pub ctl: ChatCtl,
    pub started: Instant,
    review_clients: Vec<tokio::task::JoinHandle<HttpLog>>,
    history_reader: tokio::task::JoinHandle<HttpLog>,
    member_tasks: Vec<tokio::task::JoinHandle<MemberLog>>,
}

/// What the load saw, once finished.
pub struct Finished {
    pub load_time: Duration,
    /// One per review client.
    pub review_logs: Vec<HttpLog>,
    pub history_log: HttpLog,
    pub member_logs: Vec<MemberLog>,
    /// The room's whole history, oldest first.
    pub stored: Vec<Value>,
}

impl Finished {
    /// The review clients' logs and the history reader's.
    pub fn http_logs(&self) -> impl Iterator<Item = &HttpLog> {
        self.review_logs.iter().chain(std::iter::once(&self.history_log))
    }

    /// Every failed HTTP request, of every client.
    pub fn failures(&self) -> Vec<&Failure> {
        self.http_logs().flat_map(|l| l.failures.iter()).collect()
    }

    /// Every review answered 201 is readable through the gateway, with its album.
    pub async fn assert_acked_reviews_readable(&self, http: &reqwest::Client, gw: &str) -> usize {
        let acked: Vec<(String, String)> = self.review_logs.iter().flat_map(|l| l.acked.clone()).collect();
        let mut checks = Vec::new();
        for chunk in acked.chunks(acked.len().div_ceil(8).max(1)) {
            let (chunk, http, gw) = (chunk.to_vec(), http.clone(), gw.to_owned());
            checks.push(tokio::spawn(async move {
                for (id, album) in chunk {
                    let v = expect_status(http.get(format!("{gw}/api/users-reviews/reviews/{id}")).send().await, 200)
                        .await
                        .unwrap_or_else(|e| panic!("acknowledged review {id} is not readable: {e}"));
                    assert_eq!(v["albumId"], album.as_str(), "review {id}");
                }
            }));
        }
        for c in checks {
            c.await.expect("every acknowledged review is readable");
        }
        acked.len()
    }

    /// The history is gap-free and holds every acked message under its acked seq, sent
    /// by its sender; every stored message was acked (unacked sends are retried with the
    /// same clientMsgId, so none is stored twice either); every member received every
    /// message exactly once, in order. Returns the number of acked messages.
    pub fn assert_chat_complete(&self) -> usize {
        let stored = &self.stored;
        let last = stored.len() as i64;
        let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "stored seqs are gap-free");
        let mut acked_msgs = 0;
        let mut acked_texts = std::collections::HashSet::new();
        for l in &self.member_logs {
            for (cid, seq) in &l.acks {
                let m = &stored[(*seq - 1) as usize];
                assert_eq!(m["message"], cid.as_str(), "acked {cid} is stored under its acked seq {seq}");
                assert_eq!(m["userId"], l.user_id.as_str(), "acked {cid} is stored as its sender's");
                acked_texts.insert(cid.clone());
                acked_msgs += 1;
            }
        }
        for m in stored {
            assert!(acked_texts.contains(m["message"].as_str().unwrap_or_default()), "stored but never acked: {m}");
        }
        for l in &self.member_logs {
            assert!(l.violations.is_empty(), "{}: {:?}", l.name, l.violations);
            assert_eq!(l.received, (1..=last).collect::<Vec<_>>(), "{} received every message once, in order", l.name);
        }
        acked_msgs
    }
}

impl Load {
    /// Starts the load: each writer a review client, one history reader, each member chatting.
    pub fn start(cluster: &Cluster, writers: &[User], room: &str, members: Vec<(Member, Ws)>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicU64::new(0));
        let ctl = ChatCtl { target: Arc::new(AtomicI64::new(-1)), ..Default::default() };
        let gw = &cluster.gw;
        let review_clients = writers
            .iter()
            .enumerate()
            .map(|(c, w)| tokio::spawn(review_client(gw.clone(), w.token.clone(), c, running.clone(), done.clone())))
            .collect();
        let history_reader = tokio::spawn(history_client(gw.clone(), room.to_owned(), running.clone(), done.clone()));
        let member_tasks = members
            .into_iter()
            .map(|(m, ws)| tokio::spawn(member(cluster.gw_addr.clone(), room.to_owned(), m, ws, ctl.clone())))
            .collect();
        // A watchdog: the load is bounded in time whatever happens.
        {
            let (running, ctl) = (running.clone(), ctl.clone());
            tokio::spawn(async move {
                tokio::time::sleep(LOAD_CAP).await;
                running.store(false, Ordering::Relaxed);
                ctl.stop_sending.store(true, Ordering::Relaxed);
            });
        }
        Self { running, done, ctl, started: Instant::now(), review_clients, history_reader, member_tasks }
    }

    /// Stops the load and collects what every client saw: waits until every member's
    /// messages are acknowledged, reads the room's history, and lets every member read
    /// up to its last message.
    pub async fn finish(self, http: &reqwest::Client, gw: &str, room: &str) -> Finished {
        self.running.store(false, Ordering::Relaxed);
        self.ctl.stop_sending.store(true, Ordering::Relaxed);
        let load_time = self.started.elapsed();
        let mut review_logs = Vec::new();
        for c in self.review_clients {
            review_logs.push(c.await.expect("review client"));
        }
        let history_log = self.history_reader.await.expect("history client");
        let ctl = &self.ctl;
        wait_until("every member's messages acknowledged", Duration::from_secs(30), || async {
            ctl.done_sending.load(Ordering::Relaxed) == MEMBERS
        })
        .await;
        let stored = history(http, gw, room).await;
        ctl.target.store(stored.len() as i64, Ordering::Relaxed);
        let mut member_logs = Vec::new();
        for t in self.member_tasks {
            member_logs
                .push(tokio::time::timeout(Duration::from_secs(30), t).await.expect("member drains").expect("member"));
        }
        Finished { load_time, review_logs, history_log, member_logs, stored }
    }
}
