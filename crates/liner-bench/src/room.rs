//! `room`: one chat room through the gateway of a real `liner up`, run as a separate
//! process (the release `liner` binary) so that its resident memory is the server's
//! alone and its CPU is not mixed with the clients' in one runtime.
//!
//! 1. `liner up` on loopback port 0 (its banner names the port), fresh data dir,
//!    gateway rate limits off (one loopback client is every member here) and the chat's
//!    per-connection limit left at its default (5 msg/s, burst 20): senders stay under
//!    it.
//! 2. `senders` users register and log in; a room is created.
//! 3. `members` WebSocket clients connect through the gateway (member `i` uses user
//!    `i % senders`); the server's RSS is read before and after, after a settle pause:
//!    idle memory per connection.
//! 4. The first `senders` members send at `rate` messages/s each for `--seconds`; the
//!    text carries the send time (unix µs), so every member measures each delivery's
//!    latency (receive − send) and checks exactly-once, in-order delivery by `seq`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{HttpClient, client, median, request};

#[derive(clap::Args, Clone, Debug)]
pub struct RoomArgs {
    /// WebSocket members in the room (senders included).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=2000))]
    pub members: u64,
    /// Members that send.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=200))]
    pub senders: u64,
    /// Messages per second per sender (the chat allows 5/s per connection).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds to wait after connecting before reading the server's memory.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub settle: u64,
    /// The `liner` binary [default: `liner` next to this executable].
    #[arg(long)]
    pub liner_bin: Option<std::path::PathBuf>,
}

/// What one member saw.
#[derive(Default)]
struct Seen {
    latency: Option<Histogram<u64>>,
    seqs: HashSet<i64>,
    last: i64,
    duplicates: u64,
    reordered: u64,
    closed_early: bool,
    errors: u64,
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))
}

/// Raises the soft open-file limit towards `want` (bounded by the hard limit).
fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < want => {
            let new = want.min(hard);
            if setrlimit(Resource::RLIMIT_NOFILE, new, hard).is_ok() { new } else { soft }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// `liner up` as a child process; SIGTERM then wait when dropped.
struct Server {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGTERM);
        }
        let _ = self.child.start_kill();
    }
}

async fn start_server(args: &RoomArgs) -> anyhow::Result<(Server, String)> {
    spawn_server(args, tempfile::tempdir()?).await
}

/// Stops the server gracefully and starts it again on the same data dir, so users,
/// tokens and rooms survive but the process starts with a clean heap: the memory
/// baseline is then not inflated (or, with an allocator that reuses freed pages,
/// deflated) by the registration phase's Argon2 blocks. It comes back on a new port;
/// the gateway address returned is the new one.
async fn restart_server(args: &RoomArgs, mut server: Server) -> anyhow::Result<(Server, String)> {
    if let Some(pid) = server.child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGTERM);
    }
    tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await??;
    let dir = tempfile::tempdir()?;
    let old = std::mem::replace(&mut server.dir, dir);
    drop(server);
    spawn_server(args, old).await
}

/// Starts `liner up --listen 127.0.0.1:0`: the child binds a port of the kernel's
/// choosing and says which in the banner it prints once it is up (`Liner is up:
/// http://ADDR/`), where its gateway's address is read. Nothing picks a port, lets it
/// go and hands it to the child (another process could take it in between).
async fn spawn_server(args: &RoomArgs, dir: tempfile::TempDir) -> anyhow::Result<(Server, String)> {
    use tokio::io::AsyncBufReadExt;
    let bin = match &args.liner_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("liner"),
    };
    anyhow::ensure!(bin.exists(), "{} not found: build it with `cargo build --release -p liner`", bin.display());
    let log_path = dir.path().join("liner.log");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    let mut child = tokio::process::Command::new(&bin)
        .args(["up", "--listen", "127.0.0.1:0", "--rate-limit-ip", "0", "--rate-limit-user", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("liner up: no stdout"))?;
    let server = Server { child, dir };
    let mut banner = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), banner.next_line()).await;
    let first = first.map_err(|_| anyhow::anyhow!("liner up not up in 20 s (log: {})", log_path.display()))??;
    let first =
        first.ok_or_else(|| anyhow::anyhow!("liner up exited before it was up (log: {})", log_path.display()))?;
    let base = first
        .strip_prefix("Liner is up: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .ok_or_else(|| anyhow::anyhow!("unexpected first line from liner up: {first:?}"))?
        .to_owned();
    // The rest of the banner is not needed; read it so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = banner.next_line().await {} });
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Ready when the gateway routes to both services.
        let forum = request(&http, "GET", &format!("http://{base}/api/forums/rooms"), None, None).await;
        let review =
            request(&http, "GET", &format!("http://{base}/api/users-reviews/reviews/album/x"), None, None).await;
        if matches!((forum, review), (Ok((200, _)), Ok((200, _)))) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "liner up did not become ready in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((server, base))
}

async fn register(http: &HttpClient, base: &str, n: u64) -> anyhow::Result<Vec<(String, String)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, base) = (http.clone(), base.to_owned());
        tasks.spawn(async move {
            let name = format!("member{i}");
            let body = json!({"username": name, "password": "password1", "email": format!("{name}@x.io")});
            request(&http, "POST", &format!("{base}/users/register"), None, Some(body)).await?;
            let login = json!({"username": name, "password": "password1"});
            let (status, bytes) = request(&http, "POST", &format!("{base}/users/login"), None, Some(login)).await?;
            anyhow::ensure!(status == 200, "login answered {status}");
            let v: Value = serde_json::from_slice(&bytes)?;
            let id = v["user"]["id"].as_str().unwrap_or_default().to_owned();
            let token = v["token"].as_str().unwrap_or_default().to_owned();
            Ok::<_, anyhow::Error>((i, id, token))
        });
    }
    let mut out = vec![(String::new(), String::new()); n as usize];
    while let Some(done) = tasks.join_next().await {
        let (i, id, token) = done??;
        out[i as usize] = (id, token);
    }
    Ok(out)
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(gateway: &str, room: &str, token: &str) -> anyhow::Result<Ws> {
    let mut req = format!("ws://{gateway}/api/forums/connect?roomId={room}").into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req)).await??;
    Ok(ws)
}

/// Reads one member's frames until `stop` says so; records message latencies and seqs.
async fn read_member(
    mut frames: futures_util::stream::SplitStream<Ws>,
    mut stop: watch::Receiver<bool>,
    acks: Option<Arc<AtomicU64>>,
) -> Seen {
    let mut seen = Seen { latency: Histogram::new(3).ok(), ..Seen::default() };
    loop {
        let frame = tokio::select! {
            f = frames.next() => f,
            _ = stop.wait_for(|s| *s) => break,
        };
        let text = match frame {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                seen.closed_early = true;
                break;
            }
        };
        let received = unix_micros();
        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
        match v["type"].as_str() {
            Some("message") => {
                let sent = v["message"].as_str().and_then(|m| m.split(' ').next()?.parse::<u64>().ok());
                if let (Some(sent), Some(h)) = (sent, seen.latency.as_mut()) {
                    let _ = h.record(received.saturating_sub(sent));
                }
                let seq = v["seq"].as_i64().unwrap_or(-1);
                if !seen.seqs.insert(seq) {
                    seen.duplicates += 1;
                } else if seq < seen.last {
                    seen.reordered += 1;
                }
                seen.last = seen.last.max(seq);
            }
            Some("ack") => {
                if let Some(a) = &acks {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("error") => seen.errors += 1,
            _ => {}
        }
    }
    seen
}

pub async fn room(args: &RoomArgs, seconds: u64) -> anyhow::Result<()> {
    anyhow::ensure!(args.senders <= args.members, "--senders must not exceed --members");
    anyhow::ensure!(args.rate > 0.0 && args.rate <= 5.0, "--rate must be in (0, 5] (the chat's per-connection limit)");
    // Client side: one socket per member; the server (a child) inherits the raised limit
    // and needs three per member (client side, gateway → forum, forum side).
    let nofile = raise_nofile(4 * args.members + 512);
    anyhow::ensure!(nofile >= 3 * args.members + 256, "open-file limit {nofile} too low for {} members", args.members);

    let (server, gateway) = start_server(args).await?;
    let http = client();
    let reviews = format!("http://{gateway}/api/users-reviews");
    let users = register(&http, &reviews, args.senders).await?;
    let album = format!("bench-{}", unix_micros());
    let (status, bytes) = request(
        &http,
        "POST",
        &format!("http://{gateway}/api/forums/rooms"),
        Some(&users[0].1),
        Some(json!({"roomType": "album", "albumId": album, "title": "bench room"})),
    )
    .await?;
    anyhow::ensure!(status == 201, "room create answered {status}: {}", String::from_utf8_lossy(&bytes));
    let room_id = serde_json::from_slice::<Value>(&bytes)?["id"].as_str().unwrap_or_default().to_owned();
    let (server, gateway) = restart_server(args, server).await?;
    let pid = server.child.id().ok_or_else(|| anyhow::anyhow!("liner up exited"))?;

    // Warm up the connect path once (lazy allocations, thread pools), then measure.
    drop(connect(&gateway, &room_id, &users[0].1).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let acks = Arc::new(AtomicU64::new(0));
    let mut readers = tokio::task::JoinSet::new();
    let mut sinks = Vec::new();
    let connect_started = Instant::now();
    // Connect in waves so that the presence frames each join broadcasts are read as
    // they come (a member more than 256 frames behind would be disconnected).
    for wave in (0..args.members).collect::<Vec<_>>().chunks(25) {
        let mut conns = tokio::task::JoinSet::new();
        for &i in wave {
            let (gw, room, token) = (gateway.clone(), room_id.clone(), users[(i % args.senders) as usize].1.clone());
            conns.spawn(async move { (i, connect(&gw, &room, &token).await) });
        }
        while let Some(done) = conns.join_next().await {
            let (i, ws) = done?;
            let (sink, frames) = ws?.split();
            let is_sender = i < args.senders;
            readers.spawn(read_member(frames, stop_rx.clone(), is_sender.then(|| acks.clone())));
            if is_sender {
                sinks.push((i, sink));
            }
        }
    }
    let connect_time = connect_started.elapsed();
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let rss_idle = rss_kib(pid)?;
    let per_conn = (rss_idle.saturating_sub(rss_before)) as f64 / args.members as f64;
    println!(
        "connected {} members in {:.1} s; server RSS {} KiB -> {} KiB after {} s idle: {:.1} KiB per connection",
        args.members,
        connect_time.as_secs_f64(),
        rss_before,
        rss_idle,
        args.settle,
        per_conn
    );

    // Senders: fixed rate, starting spread over one interval.
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let sent = Arc::new(AtomicU64::new(0));
    let send_started = Instant::now();
    let send_until = send_started + Duration::from_secs(seconds);
    let mut senders = tokio::task::JoinSet::new();
    for (k, (i, mut sink)) in sinks.into_iter().enumerate() {
        let (room, sent) = (room_id.clone(), sent.clone());
        let offset = interval.mul_f64(k as f64 / args.senders as f64);
        senders.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            loop {
                tick.tick().await;
                if Instant::now() >= send_until {
                    break;
                }
                let text = format!("{} s{i} n{n}", unix_micros());
                let frame = json!({"roomId": room, "message": text, "clientMsgId": format!("b{i}-{n}")});
                if sink.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            sink
        });
    }
    let mut sinks = Vec::new();
    while let Some(done) = senders.join_next().await {
        sinks.push(done?);
    }
    let send_time = send_started.elapsed();
    let sent = sent.load(Ordering::Relaxed);
    // Drain: up to 5 s for the last deliveries and acks.
    let drain_until = Instant::now() + Duration::from_secs(5);
    while acks.load(Ordering::Relaxed) < sent && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);

    let mut latency = Histogram::<u64>::new(3)?;
    let (mut delivered, mut lost, mut dups, mut reordered, mut closed, mut errors) = (0u64, 0u64, 0, 0, 0, 0);
    let mut per_member = Vec::new();
    while let Some(done) = readers.join_next().await {
        let seen = done?;
        if let Some(h) = &seen.latency {
            latency.add(h)?;
        }
        let got = seen.seqs.len() as u64;
        delivered += got + seen.duplicates;
        lost += sent.saturating_sub(got);
        dups += seen.duplicates;
        reordered += seen.reordered;
        closed += u64::from(seen.closed_early);
        errors += seen.errors;
        per_member.push(got as f64);
    }
    drop(sinks);
    let acked = acks.load(Ordering::Relaxed);
    println!(
        "sent {sent} messages ({} senders x {:.1}/s for {:.1} s), acked {acked}, error frames {errors}",
        args.senders,
        args.rate,
        send_time.as_secs_f64()
    );
    println!(
        "delivered {delivered} ({:.0} deliveries/s over the send phase; median member got {:.0} of {sent})",
        delivered as f64 / send_time.as_secs_f64(),
        median(per_member)
    );
    println!(
        "latency p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.value_at_quantile(0.999) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    println!("lost {lost}  duplicates {dups}  reordered {reordered}  members closed early {closed}");
    println!("idle memory: {per_conn:.1} KiB per WebSocket (server RSS delta / members)");
    drop(server);
    Ok(())
}
