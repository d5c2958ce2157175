//! The cluster as separate processes, all spawned from the real `liner` binary:
//! `liner discovery`, `liner gateway`, two `liner review` and two `liner forum`
//! replicas (review on one PostgreSQL database, forum on another, one Redis). Every
//! request goes through the gateway, as a client's would.
//!
//! Under steady, bounded load (4 HTTP clients writing reviews and reading them back, one
//! client reading a chat room's history, 6 WebSocket members chatting in that room,
//! about 130 requests/s in all) one review and one forum replica are SIGKILLed:
//!
//! - no acknowledged write is lost: every review answered 201 is readable afterwards,
//!   every chat message acked is in the room history under its acked seq;
//! - no HTTP client sees two failed reads in a row (the gateway retries reads on a
//!   failed connect, so usually none fails at all); members that were on the killed
//!   forum replica reconnect through the gateway with `since=<last seq>` (at most one
//!   failed connect in a row), resend their unacked messages with the same
//!   `clientMsgId`, and every member ends with every message exactly once, in order;
//! - the killed instances leave the rotation (the gateway's active check) and then the
//!   gateway's pool (their 10 s discovery lease expires) within the bounds below;
//! - both killed replicas are restarted on their old port (a new one only if the port
//!   was taken meanwhile; printed), rejoin the pool and receive traffic, proven by the
//!   request counters on the restarted replicas' own `/metrics`.
//!
//! Then the registry is SIGKILLed and restarted on the same port: routing never stops
//! (no request fails while it is down or rebuilding), the gateway keeps its last known
//! set (never fewer than 2 + 2 instances), the registry relearns all four instances
//! from their next heartbeats, and once it calls itself complete the gateway's pool is
//! still whole.
//!
//! Last, a rolling restart under the same load: each of the four replicas in turn gets
//! SIGTERM (started with `--drain-secs 2`), answers 503 on `/readyz` while it drains,
//! is gone from the registry, exits 0, and is started again; no HTTP request fails
//! meanwhile, and chat members on a stopped forum replica resume on the other.
//!
//! The gateway's pool is observed from outside through its admin `/metrics`
//! (`gateway_upstream_instances`, `gateway_upstream_ready`,
//! `gateway_upstream_breaker_state`, `gateway_upstream_requests_total`), the registry
//! through its gRPC `List`. Every child's stdout/stderr goes to a file in a temp dir;
//! on failure the tail of each is printed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

// Stated bounds. They are generous on purpose: CI machines are shared and slow, and the
// test runs debug builds of five processes plus PostgreSQL on maybe two cores. What is
// expected on an idle machine is in the comment; the measured figures are printed.
/// Kill → the gateway's active check (`--health-interval-ms 500`) marks the instance
/// not ready, so no new request is sent to it. Expected: under 1 s.
const OUT_OF_ROTATION_BOUND: Duration = Duration::from_secs(10);
/// Kill → the instance is gone from the gateway's pool. The services register with a
/// fixed 10 s lease (heartbeat every 10/3 s; no flag changes it), so expected:
/// 6.7–10 s plus the watch push.
const POOL_LEAVE_BOUND: Duration = Duration::from_secs(30);
/// Restart → back in the pool and serving requests routed by the gateway. Expected: 1–3 s.
const REJOIN_BOUND: Duration = Duration::from_secs(30);
/// Registry restart → it lists every live instance again. Expected: one heartbeat
/// interval (3.3 s) at most.
const REGISTRY_REBUILD_BOUND: Duration = Duration::from_secs(20);
/// Hard cap on the load phase, whatever happens.
const LOAD_CAP: Duration = Duration::from_secs(150);
/// What the replicas are started with: the drain after SIGTERM (not ready, deregistered,
/// still serving) before the listener closes.
const DRAIN_SECS: &str = "2";

const REVIEW_CLIENTS: usize = 4;
/// Each review client: one request per tick, alternating a write and a read (25/s).
const REVIEW_TICK: Duration = Duration::from_millis(40);
/// The history reader: 10 requests/s.
const HISTORY_TICK: Duration = Duration::from_millis(100);
const MEMBERS: usize = 6;
/// Each member sends one message per tick (3.3/s, under the forum's 5/s limit).
const CHAT_TICK: Duration = Duration::from_millis(300);
const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------
// Processes

/// The temp dir with every child's log; prints their tails when the test fails.
struct Logs {
    dir: tempfile::TempDir,
    files: Mutex<Vec<(String, PathBuf)>>,
}

impl Logs {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir"), files: Mutex::new(Vec::new()) }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (name, path) in self.files.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("----- {name}: last {} lines of {} -----", tail.len(), path.display());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// One `liner` child process; SIGKILLed when dropped, however the test ends.
struct Proc {
    name: String,
    addr: String,
    child: Option<Child>,
}

impl Proc {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// SIGTERM, as a rollout stops a pod; waits for the exit (within `bound`).
    async fn terminate(&mut self, bound: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit within {bound:?} of SIGTERM", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The registry's shared secret for this cluster.
const DISCOVERY_TOKEN: &str = "cluster-test-discovery-secret";

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// Starts `liner <args…> --listen <addr>` with its output in `<name>.log`.
fn spawn(logs: &Logs, name: &str, addr: &str, args: &[String]) -> Proc {
    let path = logs.dir.path().join(format!("{name}.log"));
    let file = File::create(&path).expect("log file");
    logs.files.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_owned(), path));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liner"));
    // Only the flags given here configure the child.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("LINER_") || key == "DATABASE_URL" || key == "REDIS_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    let child = cmd
        .args(args)
        .args(["--listen", addr])
        .env("LINER_LOG", "info")
        .env("NO_COLOR", "1")
        // Every child shares the registry's secret, as a deployment's secret would give it.
        .env("LINER_DISCOVERY_TOKEN", DISCOVERY_TOKEN)
        // Redis keeps sign-up counts across runs: the cluster's users all come from loopback.
        .env("LINER_REGISTRATIONS_PER_ADDRESS", "0")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("spawn liner");
    Proc { name: name.to_owned(), addr: addr.to_owned(), child: Some(child) }
}

/// Waits for `/readyz`; false when the process exited first (e.g. its port was taken).
async fn ready(http: &reqwest::Client, proc: &mut Proc) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = http.get(format!("{}/readyz", proc.url())).send().await
            && res.status().is_success()
        {
            return true;
        }
        if proc.exited() {
            return false;
        }
        assert!(Instant::now() < deadline, "{} did not become ready in 60 s", proc.name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Restarts a killed replica on its old address, or on a new one if that is taken.
async fn restart(http: &reqwest::Client, logs: &Logs, old: &Proc, args: &[String]) -> Proc {
    let mut proc = spawn(logs, &format!("{}-restarted", old.name), &old.addr, args);
    if ready(http, &mut proc).await {
        return proc;
    }
    let addr = free_addr();
    eprintln!("{}: port {} was taken; restarted on {addr}", old.name, old.addr);
    let mut proc = spawn(logs, &format!("{}-restarted-new-port", old.name), &addr, args);
    assert!(ready(http, &mut proc).await, "{} did not restart", old.name);
    proc
}

// ---------------------------------------------------------------------------------------
// Observing from outside

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    match http.get(format!("{base}/metrics")).send().await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sum of the samples of `name` whose label set contains every one of `having`
/// (raw substrings such as `service="review"`); None when no sample matches.
fn metric(text: &str, name: &str, having: &[&str]) -> Option<f64> {
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
struct GatewayView(String);

impl GatewayView {
    async fn fetch(http: &reqwest::Client, gw: &str) -> Self {
        Self(scrape(http, gw).await)
    }

    fn instances(&self, service: &str) -> Option<u64> {
        metric(&self.0, "gateway_upstream_instances", &[&format!("service=\"{service}\"")]).map(|v| v as u64)
    }

    fn ready(&self, addr: &str) -> Option<bool> {
        metric(&self.0, "gateway_upstream_ready", &[&format!("upstream=\"{addr}\"")]).map(|v| v > 0.5)
    }

    fn breaker_open(&self, addr: &str) -> bool {
        metric(&self.0, "gateway_upstream_breaker_state", &[&format!("upstream=\"{addr}\"")]).is_some_and(|v| v > 1.5)
    }

    /// Requests the gateway sent to `addr` (answered or not).
    fn attempts(&self, addr: &str) -> u64 {
        metric(&self.0, "gateway_upstream_requests_total", &[&format!("upstream=\"{addr}\"")]).unwrap_or(0.0) as u64
    }
}

/// API requests a replica served, from its own `/metrics` (a fresh process starts at 0).
async fn api_requests(http: &reqwest::Client, replica: &str) -> u64 {
    metric(&scrape(http, replica).await, "http_requests_total", &["route=\"/api/"]).unwrap_or(0.0) as u64
}

/// WebSocket upgrades a forum replica accepted.
async fn ws_upgrades(http: &reqwest::Client, replica: &str) -> u64 {
    metric(&scrape(http, replica).await, "http_requests_total", &["connect\"", "status=\"101\""]).unwrap_or(0.0) as u64
}

/// The registry's own view through its gRPC `List`: (addresses, complete).
async fn registry_list(url: &str, service: &str) -> Option<(Vec<String>, bool)> {
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

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client")
}

struct User {
    id: String,
    token: String,
}

async fn user(http: &reqwest::Client, gw: &str, name: &str) -> User {
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
struct HttpLog {
    /// (review id, albumId) of every write answered 201.
    acked: Vec<(String, String)>,
    writes: usize,
    failed_writes: usize,
    reads: usize,
    failed_reads: usize,
    max_failed_reads_in_row: usize,
    /// When each failed request (read or write) ended, and why.
    failures: Vec<(Instant, String)>,
}

impl HttpLog {
    fn read(&mut self, ok: Result<(), String>, in_row: &mut usize, done: &AtomicU64) {
        self.reads += 1;
        match ok {
            Ok(()) => {
                *in_row = 0;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                self.failed_reads += 1;
                *in_row += 1;
                self.max_failed_reads_in_row = self.max_failed_reads_in_row.max(*in_row);
                self.failures.push((Instant::now(), format!("read: {why}")));
            }
        }
    }
}

async fn expect_status(res: reqwest::Result<reqwest::Response>, want: u16) -> Result<Value, String> {
    let res = res.map_err(|e| format!("{e}"))?;
    let status = res.status().as_u16();
    let bytes = res.bytes().await.map_err(|e| format!("body: {e}"))?;
    if status != want {
        return Err(format!("{status} {}", String::from_utf8_lossy(&bytes)));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("json: {e}"))
}

/// Alternates writing a review (a new album each time) and reading back its last
/// acknowledged one, until `running` turns false.
async fn review_client(gw: String, token: String, c: usize, running: Arc<AtomicBool>, done: Arc<AtomicU64>) -> HttpLog {
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
            let res = http.post(format!("{gw}/api/users-reviews/reviews")).bearer_auth(&token).json(&body).send().await;
            match expect_status(res, 201).await {
                Ok(v) => {
                    log.acked.push((v["id"].as_str().expect("review id").to_owned(), album));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Err(why) => {
                    log.failed_writes += 1;
                    log.failures.push((Instant::now(), format!("write: {why}")));
                }
            }
        } else if let Some((id, album)) = log.acked.last().cloned() {
            let res = http.get(format!("{gw}/api/users-reviews/reviews/{id}")).send().await;
            let ok = expect_status(res, 200)
                .await
                .and_then(|v| if v["albumId"] == album.as_str() { Ok(()) } else { Err(format!("wrong review: {v}")) });
            log.read(ok, &mut in_row, &done);
        }
    }
    log
}

/// Reads the room's latest messages, until `running` turns false.
async fn history_client(gw: String, room: String, running: Arc<AtomicBool>, done: Arc<AtomicU64>) -> HttpLog {
    let http = http_client();
    let mut log = HttpLog::default();
    let mut tick = tokio::time::interval(HISTORY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_row = 0;
    while running.load(Ordering::Relaxed) {
        tick.tick().await;
        let res = http.get(format!("{gw}/api/forums/rooms/{room}/messages?limit=20")).send().await;
        let ok = expect_status(res, 200).await.and_then(|v| if v.is_array() { Ok(()) } else { Err(format!("{v}")) });
        log.read(ok, &mut in_row, &done);
    }
    log
}

// ---------------------------------------------------------------------------------------
// Chat members

async fn ws_connect(gw_addr: &str, token: &str, room: &str, since: i64) -> Result<Ws, String> {
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
async fn wait_joined(ws: &mut Ws, user_id: &str) {
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
struct ChatCtl {
    stop_sending: Arc<AtomicBool>,
    /// Members with nothing left unacknowledged after `stop_sending`.
    done_sending: Arc<AtomicUsize>,
    /// The room's last seq once known (-1 before): members read up to it, then end.
    target: Arc<AtomicI64>,
    acked: Arc<AtomicU64>,
}

struct Member {
    name: String,
    user: User,
    /// Index of the forum replica its first connection landed on.
    replica: usize,
}

/// What one member saw.
#[derive(Default)]
struct MemberLog {
    name: String,
    replica: usize,
    user_id: String,
    /// Seqs of the `message` frames received, in arrival order.
    received: Vec<i64>,
    /// clientMsgId → acked seq.
    acks: HashMap<String, i64>,
    sent: usize,
    resent: usize,
    reconnects: usize,
    connect_failures: usize,
    max_connect_failures_in_row: usize,
    /// Connection lost → connected again.
    reconnect_took: Vec<Duration>,
    /// Connection losses, as instants (to match them with the kill).
    lost_at: Vec<Instant>,
    errors: Vec<String>,
    violations: Vec<String>,
}

impl MemberLog {
    fn last(&self) -> i64 {
        self.received.iter().copied().max().unwrap_or(0)
    }

    fn handle(&mut self, text: &str, pending: &mut BTreeMap<usize, String>, ctl: &ChatCtl) {
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
            }
            Some("error") => {
                self.errors.push(v.to_string());
                if let Some(cid) = v["clientMsgId"].as_str() {
                    pending.retain(|_, c| c != cid);
                }
            }
            _ => {}
        }
    }
}

fn chat_frame(room: &str, cid: &str) -> Message {
    Message::text(json!({"roomId": room, "message": cid, "clientMsgId": cid}).to_string())
}

/// Sends a message per tick until told to stop, reconnecting through the gateway with
/// `since=<last seq>` whenever its connection is lost and resending what was not acked;
/// ends once every message up to the room's final seq has arrived.
async fn member(gw_addr: String, room: String, m: Member, ws: Ws, ctl: ChatCtl) -> MemberLog {
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
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    log
}

/// The whole history of a room, oldest first.
async fn history(http: &reqwest::Client, gw: &str, room: &str) -> Vec<Value> {
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

async fn wait_until<F, Fut>(what: &str, bound: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_replica_kills_and_a_registry_restart() {
    let test_started = Instant::now();
    let logs = Logs::new();
    let http = http_client();
    let review_db = liner_shared::testkit::fresh_pg_database().await;
    let forum_db = liner_shared::testkit::fresh_pg_database().await;
    let redis = liner_shared::testkit::redis_url();
    let key_dir = logs.dir.path().join("review-data");
    std::fs::create_dir_all(&key_dir).expect("key dir");
    let forum_dir = logs.dir.path().join("forum-data");
    std::fs::create_dir_all(&forum_dir).expect("forum dir");

    let discovery_addr = free_addr();
    let discovery_url = format!("http://{discovery_addr}");
    let gw_addr = free_addr();
    let gw = format!("http://{gw_addr}");
    let gw_admin_addr = free_addr();
    let gw_admin = format!("http://{gw_admin_addr}");
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();

    // --- start the cluster -------------------------------------------------------------
    let discovery_args = s(&["discovery"]);
    let mut discovery = spawn(&logs, "discovery", &discovery_addr, &discovery_args);
    assert!(ready(&http, &mut discovery).await, "discovery started");
    let review_args = s(&[
        "review",
        "--discovery",
        &discovery_url,
        "--database-url",
        &review_db,
        "--redis-url",
        &redis,
        "--data-dir",
        key_dir.to_str().expect("utf-8 path"),
        "--db-max-connections",
        "5",
        "--drain-secs",
        DRAIN_SECS,
    ]);
    let forum_args = s(&[
        "forum",
        "--discovery",
        &discovery_url,
        "--database-url",
        &forum_db,
        "--redis-url",
        &redis,
        "--data-dir",
        forum_dir.to_str().expect("utf-8 path"),
        "--db-max-connections",
        "5",
        "--drain-secs",
        DRAIN_SECS,
    ]);
    // On PostgreSQL no replica generates a key: both are given one, as a secret would.
    liner_review::keys::Signer::load_or_generate(&key_dir.join("review-jwt-ed25519.pem"), 60).expect("a signing key");
    let mut reviews = vec![spawn(&logs, "review-1", &free_addr(), &review_args)];
    reviews.push(spawn(&logs, "review-2", &free_addr(), &review_args));
    let mut forums =
        [spawn(&logs, "forum-1", &free_addr(), &forum_args), spawn(&logs, "forum-2", &free_addr(), &forum_args)];
    let gateway_args = s(&[
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
        &gw_admin_addr,
    ]);
    let mut gateway = spawn(&logs, "gateway", &gw_addr, &gateway_args);
    for p in reviews.iter_mut().chain(forums.iter_mut()) {
        assert!(ready(&http, p).await, "{} started", p.name);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http.get(format!("{gw}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(!gateway.exited() && Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_addrs: Vec<String> = reviews.iter().chain(forums.iter()).map(|p| p.addr.clone()).collect();
    wait_until("the gateway routes to all four replicas", Duration::from_secs(60), || async {
        let v = GatewayView::fetch(&http, &gw_admin).await;
        v.instances("review") == Some(2)
            && v.instances("forum") == Some(2)
            && all_addrs.iter().all(|a| v.ready(a) == Some(true))
    })
    .await;
    eprintln!("cluster up in {} ms (logs in {})", ms(test_started.elapsed()), logs.dir.path().display());

    // --- users, room, members -----------------------------------------------------------
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
    let writers = users;
    let res = http
        .post(format!("{gw}/api/forums/rooms"))
        .bearer_auth(&member_users[0].token)
        .json(&json!({"roomType": "genre", "genreId": "cluster-test", "title": "kill -9 listening party"}))
        .send()
        .await
        .expect("create room");
    let room = expect_status(Ok(res), 201).await.expect("room created")["id"].as_str().expect("room id").to_owned();

    // Members connect through the gateway, which balances them over the two forum
    // replicas; each replica's own upgrade counter tells where one landed. Three on
    // each: a connection landing on a full replica is closed and tried again.
    let forum_urls: Vec<String> = forums.iter().map(Proc::url).collect();
    let mut placed = [0usize; 2];
    let mut members = Vec::new();
    let mut attempts = 0;
    for (i, u) in member_users.into_iter().enumerate() {
        loop {
            attempts += 1;
            assert!(attempts < 60, "the gateway never spread the members over both forum replicas");
            let before = [ws_upgrades(&http, &forum_urls[0]).await, ws_upgrades(&http, &forum_urls[1]).await];
            let mut ws = ws_connect(&gw_addr, &u.token, &room, 0).await.expect("member connects");
            wait_joined(&mut ws, &u.id).await;
            let after = [ws_upgrades(&http, &forum_urls[0]).await, ws_upgrades(&http, &forum_urls[1]).await];
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

    // --- load ---------------------------------------------------------------------------
    let running = Arc::new(AtomicBool::new(true));
    let done = Arc::new(AtomicU64::new(0));
    let ctl = ChatCtl { target: Arc::new(AtomicI64::new(-1)), ..Default::default() };
    let load_started = Instant::now();
    let mut review_clients = Vec::new();
    for (c, w) in writers.iter().enumerate() {
        review_clients.push(tokio::spawn(review_client(gw.clone(), w.token.clone(), c, running.clone(), done.clone())));
    }
    let history_reader = tokio::spawn(history_client(gw.clone(), room.clone(), running.clone(), done.clone()));
    let mut member_tasks = Vec::new();
    for (m, ws) in members {
        member_tasks.push(tokio::spawn(member(gw_addr.clone(), room.clone(), m, ws, ctl.clone())));
    }
    // A watchdog: the load is bounded in time whatever happens below.
    {
        let (running, ctl) = (running.clone(), ctl.clone());
        tokio::spawn(async move {
            tokio::time::sleep(LOAD_CAP).await;
            running.store(false, Ordering::Relaxed);
            ctl.stop_sending.store(true, Ordering::Relaxed);
        });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(done.load(Ordering::Relaxed) > 30, "the load is running");

    // --- SIGKILL one review and one forum replica -----------------------------------------
    let killed = [("review", reviews[0].addr.clone()), ("forum", forums[0].addr.clone())];
    let killed_at = Instant::now();
    reviews[0].kill9();
    forums[0].kill9();
    eprintln!("SIGKILLed {} (review-1) and {} (forum-1)", killed[0].1, killed[1].1);
    let mut out_of_rotation: [Option<Duration>; 2] = [None; 2];
    let mut breaker_open: [Option<Duration>; 2] = [None; 2];
    let mut left_pool: [Option<Duration>; 2] = [None; 2];
    let mut last_attempt: [(u64, Duration); 2] = [(0, Duration::ZERO); 2];
    while left_pool.iter().any(Option::is_none) {
        let elapsed = killed_at.elapsed();
        assert!(
            elapsed < POOL_LEAVE_BOUND,
            "killed instances still in the gateway's pool after {elapsed:?}: {left_pool:?}"
        );
        let v = GatewayView::fetch(&http, &gw_admin).await;
        for (i, (service, addr)) in killed.iter().enumerate() {
            if out_of_rotation[i].is_none() && v.ready(addr) == Some(false) {
                out_of_rotation[i] = Some(elapsed);
            }
            if breaker_open[i].is_none() && v.breaker_open(addr) {
                breaker_open[i] = Some(elapsed);
            }
            let n = v.attempts(addr);
            if n != last_attempt[i].0 {
                last_attempt[i] = (n, elapsed);
            }
            if left_pool[i].is_none() && v.instances(service) == Some(1) {
                left_pool[i] = Some(elapsed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, (service, addr)) in killed.iter().enumerate() {
        let rotation = out_of_rotation[i].unwrap_or_else(|| panic!("{service} {addr} never marked not ready"));
        eprintln!(
            "killed {service} {addr}: breaker open after {:?} ms, out of rotation (active check) after {} ms, \
             last request sent to it ≤ {} ms, out of the gateway's pool after {} ms",
            breaker_open[i].map(ms),
            ms(rotation),
            ms(last_attempt[i].1),
            ms(left_pool[i].expect("left"))
        );
        assert!(rotation < OUT_OF_ROTATION_BOUND, "{service} out of rotation after {rotation:?}");
        // Nothing is sent to an instance once its check failed (2 s of slack for
        // requests picked just before, and for the 100 ms sampling).
        assert!(
            last_attempt[i].1 <= rotation + Duration::from_secs(2),
            "{service} {addr} still got requests {:?} after the kill, out of rotation at {rotation:?}",
            last_attempt[i].1
        );
    }
    let survivors = [reviews[1].addr.clone(), forums[1].addr.clone()];
    let v = GatewayView::fetch(&http, &gw_admin).await;
    for addr in &survivors {
        assert_eq!(v.ready(addr), Some(true), "surviving {addr} stays in rotation");
    }

    // --- restart both killed replicas ---------------------------------------------------
    let restarted_at = Instant::now();
    let review_back = restart(&http, &logs, &reviews[0], &review_args).await;
    let forum_back = restart(&http, &logs, &forums[0], &forum_args).await;
    let back = [review_back.url(), forum_back.url()];
    let back_addrs = [review_back.addr.clone(), forum_back.addr.clone()];
    let ready_after = restarted_at.elapsed();
    wait_until("restarted replicas back in the gateway's pool", REJOIN_BOUND, || async {
        let v = GatewayView::fetch(&http, &gw_admin).await;
        v.instances("review") == Some(2) && v.instances("forum") == Some(2)
    })
    .await;
    let in_pool = restarted_at.elapsed();
    wait_until("restarted replicas serve requests routed by the gateway", REJOIN_BOUND, || async {
        api_requests(&http, &back[0]).await > 0 && api_requests(&http, &back[1]).await > 0
    })
    .await;
    let serving = restarted_at.elapsed();
    eprintln!(
        "restarted review on {} and forum on {}: ready after {} ms, back in the gateway's pool after {} ms, \
         serving requests routed by the gateway after {} ms (counted on their own /metrics)",
        back_addrs[0],
        back_addrs[1],
        ms(ready_after),
        ms(in_pool),
        ms(serving)
    );
    reviews[0] = review_back;
    forums[0] = forum_back;

    // --- SIGKILL the registry, restart it on the same port --------------------------------
    let live: Vec<String> = reviews.iter().chain(forums.iter()).map(|p| p.addr.clone()).collect();
    let mut want_review: Vec<String> = reviews.iter().map(|p| p.addr.clone()).collect();
    let mut want_forum: Vec<String> = forums.iter().map(|p| p.addr.clone()).collect();
    want_review.sort();
    want_forum.sort();
    let done_before = done.load(Ordering::Relaxed);
    let acked_before = ctl.acked.load(Ordering::Relaxed);
    let registry_killed_at = Instant::now();
    discovery.kill9();
    discovery = spawn(&logs, "discovery-restarted", &discovery_addr, &discovery_args);
    assert!(ready(&http, &mut discovery).await, "the registry restarts on its port {discovery_addr}");
    let registry_back = registry_killed_at.elapsed();
    let mut min_pool = (u64::MAX, u64::MAX);
    let mut rebuilt = None;
    loop {
        let elapsed = registry_killed_at.elapsed();
        let v = GatewayView::fetch(&http, &gw_admin).await;
        min_pool.0 = min_pool.0.min(v.instances("review").unwrap_or(0));
        min_pool.1 = min_pool.1.min(v.instances("forum").unwrap_or(0));
        let review = registry_list(&discovery_url, "review").await;
        let forum = registry_list(&discovery_url, "forum").await;
        if rebuilt.is_none()
            && review.as_ref().is_some_and(|(a, _)| *a == want_review)
            && forum.as_ref().is_some_and(|(a, _)| *a == want_forum)
        {
            rebuilt = Some(elapsed);
        }
        if rebuilt.is_none() {
            assert!(elapsed < REGISTRY_REBUILD_BOUND, "registry not rebuilt: review {review:?}, forum {forum:?}");
        }
        // Complete = the restarted registry no longer expects heartbeats from instances
        // it knew before (one default TTL, 10 s); from then the gateway trusts removals.
        if rebuilt.is_some() && review.is_some_and(|(_, complete)| complete) {
            break;
        }
        assert!(elapsed < Duration::from_secs(40), "the restarted registry never called itself complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let complete_at = registry_killed_at.elapsed();
    // One more watch push and health round, then the gateway's pool must be whole.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = GatewayView::fetch(&http, &gw_admin).await;
    assert_eq!((v.instances("review"), v.instances("forum")), (Some(2), Some(2)), "the gateway's pool is whole");
    for addr in &live {
        assert_eq!(v.ready(addr), Some(true), "{addr} in rotation after the registry restart");
    }
    let served_meanwhile = done.load(Ordering::Relaxed) - done_before;
    let acked_meanwhile = ctl.acked.load(Ordering::Relaxed) - acked_before;
    eprintln!(
        "registry SIGKILLed and restarted: serving again after {} ms, all 4 instances relearned after {} ms, \
         complete after {} ms; the gateway's pool never went below {:?} (review, forum); \
         {served_meanwhile} HTTP requests and {acked_meanwhile} chat messages served meanwhile",
        ms(registry_back),
        ms(rebuilt.expect("rebuilt")),
        ms(complete_at),
        min_pool
    );
    assert_eq!(min_pool, (2, 2), "the gateway kept its last known set while the registry was down or rebuilding");
    assert!(served_meanwhile > 100 && acked_meanwhile > 10, "routing never stopped during the registry restart");

    // --- a rolling restart: each replica in turn gets SIGTERM, as a rollout stops a pod ---------
    let rolling_started = Instant::now();
    for (service, procs, args) in [("review", &mut reviews[..], &review_args), ("forum", &mut forums[..], &forum_args)]
    {
        for proc in procs.iter_mut() {
            let addr = proc.addr.clone();
            let stopping = {
                let (http, url) = (http.clone(), proc.url());
                // Sampled while the process stops: draining shows as 503 on /readyz.
                tokio::spawn(async move {
                    let mut saw_draining = false;
                    while let Ok(res) = http.get(format!("{url}/readyz")).send().await {
                        saw_draining |= res.status() == 503;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    saw_draining
                })
            };
            let terminated_at = Instant::now();
            let stopped = proc.terminate(Duration::from_secs(30)).await;
            let took = terminated_at.elapsed();
            assert!(stopped.success(), "{service} {addr} exits 0 after SIGTERM, got {stopped}");
            assert!(stopping.await.expect("sampler"), "{service} {addr}: /readyz answered 503 while draining");
            let gone = registry_list(&discovery_url, service).await.expect("registry answers");
            assert!(!gone.0.contains(&addr), "{service} {addr} deregistered on SIGTERM: {gone:?}");
            let back = restart(&http, &logs, proc, args).await;
            *proc = back;
            let new_addr = proc.addr.clone();
            wait_until(&format!("{service} {new_addr} back in rotation"), REJOIN_BOUND, || async {
                GatewayView::fetch(&http, &gw_admin).await.ready(&new_addr) == Some(true)
            })
            .await;
            eprintln!("rolling restart: {service} {addr} stopped in {} ms (drain {DRAIN_SECS} s)", ms(took));
        }
    }
    let rolling = rolling_started..Instant::now();
    eprintln!("rolling restart of all four replicas took {} ms", ms(rolling.end - rolling.start));

    // --- stop the load, collect --------------------------------------------------------------
    running.store(false, Ordering::Relaxed);
    ctl.stop_sending.store(true, Ordering::Relaxed);
    let load_time = load_started.elapsed();
    let mut logs_http = Vec::new();
    for c in review_clients {
        logs_http.push(c.await.expect("review client"));
    }
    let history_log = history_reader.await.expect("history client");
    wait_until("every member's messages acknowledged", Duration::from_secs(30), || async {
        ctl.done_sending.load(Ordering::Relaxed) == MEMBERS
    })
    .await;
    let stored = history(&http, &gw, &room).await;
    let last = stored.len() as i64;
    ctl.target.store(last, Ordering::Relaxed);
    let mut member_logs = Vec::new();
    for t in member_tasks {
        member_logs
            .push(tokio::time::timeout(Duration::from_secs(30), t).await.expect("member drains").expect("member"));
    }

    // --- assertions ----------------------------------------------------------------------------
    // Reviews: every 201 is readable, with its album.
    let acked_reviews: Vec<(String, String)> = logs_http.iter().flat_map(|l| l.acked.clone()).collect();
    let mut checks = Vec::new();
    for chunk in acked_reviews.chunks(acked_reviews.len().div_ceil(8).max(1)) {
        let (chunk, http, gw) = (chunk.to_vec(), http.clone(), gw.clone());
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

    // Chat: the history is gap-free and holds every acked message under its acked seq,
    // sent by its sender; every stored message was acked (unacked sends are retried with
    // the same clientMsgId, so none is stored twice either).
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "stored seqs are gap-free");
    let mut acked_msgs = 0;
    let mut acked_texts = std::collections::HashSet::new();
    for l in &member_logs {
        for (cid, seq) in &l.acks {
            let m = &stored[(*seq - 1) as usize];
            assert_eq!(m["message"], cid.as_str(), "acked {cid} is stored under its acked seq {seq}");
            assert_eq!(m["userId"], l.user_id.as_str(), "acked {cid} is stored as its sender's");
            acked_texts.insert(cid.clone());
            acked_msgs += 1;
        }
    }
    for m in &stored {
        assert!(acked_texts.contains(m["message"].as_str().unwrap_or_default()), "stored but never acked: {m}");
    }
    // Every member: every message exactly once, in order.
    for l in &member_logs {
        assert!(l.violations.is_empty(), "{}: {:?}", l.name, l.violations);
        assert_eq!(l.received, (1..=last).collect::<Vec<_>>(), "{} received every message once, in order", l.name);
        assert!(
            l.max_connect_failures_in_row <= 1,
            "{}: {} failed reconnects in a row",
            l.name,
            l.max_connect_failures_in_row
        );
    }
    // Members on the killed forum replica lost their connection and resumed.
    let on_killed: Vec<&MemberLog> = member_logs.iter().filter(|l| l.replica == 0).collect();
    assert!(!on_killed.is_empty(), "members were on the killed forum replica");
    for l in &on_killed {
        assert!(
            l.lost_at.iter().any(|t| *t >= killed_at && *t < killed_at + Duration::from_secs(15)),
            "{} (on the killed replica) reconnected after the kill",
            l.name
        );
    }
    let reconnect_max = on_killed.iter().flat_map(|l| l.reconnect_took.iter()).max().copied().unwrap_or_default();

    // The rolling restart failed no HTTP request.
    let during_rollout: Vec<&(Instant, String)> = logs_http
        .iter()
        .chain(std::iter::once(&history_log))
        .flat_map(|l| &l.failures)
        .filter(|(t, _)| rolling.contains(t))
        .collect();
    assert!(during_rollout.is_empty(), "requests failed during the rolling restart: {during_rollout:?}");

    // HTTP clients: never two failed reads in a row.
    let all_http: Vec<&HttpLog> = logs_http.iter().chain(std::iter::once(&history_log)).collect();
    for (c, l) in all_http.iter().enumerate() {
        assert!(
            l.max_failed_reads_in_row <= 1,
            "client {c}: {} failed reads in a row: {:?}",
            l.max_failed_reads_in_row,
            l.failures
        );
    }
    // Routing never stopped while the registry was away: not one failure from its kill on.
    let failures: Vec<&(Instant, String)> = all_http.iter().flat_map(|l| l.failures.iter()).collect();
    let during_registry: Vec<&&(Instant, String)> = failures.iter().filter(|(t, _)| *t >= registry_killed_at).collect();
    assert!(during_registry.is_empty(), "requests failed during the registry restart: {during_registry:?}");
    let failover = failures.iter().map(|(t, _)| t.saturating_duration_since(killed_at)).max().unwrap_or_default();

    let writes: usize = logs_http.iter().map(|l| l.writes).sum();
    let failed_writes: usize = logs_http.iter().map(|l| l.failed_writes).sum();
    let reads: usize = all_http.iter().map(|l| l.reads).sum();
    let failed_reads: usize = all_http.iter().map(|l| l.failed_reads).sum();
    let sent: usize = member_logs.iter().map(|l| l.sent).sum();
    let resent: usize = member_logs.iter().map(|l| l.resent).sum();
    let failed_connects: usize = member_logs.iter().map(|l| l.connect_failures).sum();
    let rate = (writes + reads + sent) as f64 / load_time.as_secs_f64();
    assert!(acked_reviews.len() > 100 && acked_msgs > 50, "the load ran");
    eprintln!(
        "load: {:.1} s, {rate:.0} requests/s: {writes} review writes ({} acked, {failed_writes} failed, unacked), \
         {reads} reads ({failed_reads} failed; at most {} in a row per client), {sent} chat messages \
         ({acked_msgs} acked, {resent} resent after reconnects, {last} stored), {} members on the killed forum \
         replica reconnected (slowest {} ms, {failed_connects} failed connects)",
        load_time.as_secs_f64(),
        acked_reviews.len(),
        all_http.iter().map(|l| l.max_failed_reads_in_row).max().unwrap_or(0),
        on_killed.len(),
        ms(reconnect_max),
    );
    eprintln!(
        "failover: last failed HTTP request {} ms after the kill ({} failures: {:?})",
        ms(failover),
        failures.len(),
        failures.iter().take(6).map(|(_, why)| why.chars().take(120).collect::<String>()).collect::<Vec<_>>()
    );
    eprintln!("whole test: {:.1} s", test_started.elapsed().as_secs_f64());
    drop(gateway);
}
