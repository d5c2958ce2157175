//! `liner-bench`: bounded load against loopback only, each figure next to a baseline
//! measured in the same run (these machines are shared and noisy, so only ratios and
//! medians of repeated rounds mean anything).
//!
//! - `review-writes`: POST /reviews through the review service vs raw INSERTs of the same
//!   rows into the same PostgreSQL table with the same concurrency.
//! - `gateway`: GET one review through the gateway vs straight to the review service
//!   and vs NGINX proxying the same instance (when `nginx` is installed).
//! - `room`: a 1,000-member chat room with 50 senders through the gateway of a `liner up`
//!   child process: delivery latency, exactly-once in-order checks, idle memory per
//!   WebSocket (see `room.rs`).

mod room;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use liner::up::{System, UpSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Liner load tool (loopback only, bounded in time)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 5, global = true, value_parser = clap::value_parser!(u64).range(1..=60))]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32, global = true, value_parser = clap::value_parser!(u64).range(1..=1024))]
    concurrency: u64,
    /// Rounds; the report gives the median round.
    #[arg(long, default_value_t = 3, global = true, value_parser = clap::value_parser!(u64).range(1..=10))]
    rounds: u64,
    /// Legs of the `gateway` bench to run (comma-separated: direct, gateway, nginx); the
    /// first one is the baseline of the ratios. Useful to profile one leg alone.
    #[arg(long, global = true, value_delimiter = ',', default_value = "direct,gateway,nginx")]
    legs: Vec<String>,
}

#[derive(Subcommand)]
enum Bench {
    /// Review writes through the service vs raw PostgreSQL inserts (uses LINER_TEST_PG_URL).
    ReviewWrites,
    /// Reads through the gateway vs direct to the review service (and vs NGINX).
    Gateway,
    /// Chat fan-out through the gateway of a `liner up` process, and idle WebSocket memory.
    Room(room::RoomArgs),
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Outcome of one timed phase.
struct Phase {
    ops: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} {:>9.0} ops/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
            self.rate(),
            self.latency.value_at_quantile(0.5) as f64 / 1000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1000.0,
            self.errors
        )
    }
}

/// Runs `op(worker, i)` from `concurrency` workers for `seconds`.
async fn run_phase<F, Fut>(concurrency: u64, seconds: u64, op: F) -> Phase
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (op, errors) = (op.clone(), errors.clone());
        workers.spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if !op(w, i).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                let _ = hist.record(t.elapsed().as_micros() as u64);
                i += 1;
            }
            hist
        });
    }
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for hist in workers.join_all().await {
        let _ = latency.add(hist);
    }
    let errors = errors.load(Ordering::Relaxed);
    Phase { ops: latency.len() - errors, errors, elapsed: started.elapsed(), latency }
}

async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(u16, Bytes)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Full::new(Bytes::from(v.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let res = tokio::time::timeout(Duration::from_secs(5), client.request(req.body(body)?)).await??;
    let status = res.status().as_u16();
    Ok((status, res.into_body().collect().await?.to_bytes()))
}

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector)
}

async fn start_system(pg: Option<String>) -> anyhow::Result<(System, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut settings = UpSettings::new(([127, 0, 0, 1], 0).into(), dir.path().to_path_buf());
    settings.review_database_url = pg.map(|u| u.parse()).transpose().map_err(anyhow::Error::msg)?;
    // One loopback client is many users here: the per-address and per-user limits would
    // measure themselves, not the proxy.
    settings.rate_limit_ip = 0;
    settings.rate_limit_user = 0;
    Ok((System::start(settings, CancellationToken::new()).await?, dir))
}

/// Registers `n` users; returns (id, token) pairs.
async fn users(client: &HttpClient, base: &str, n: u64) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for i in 0..n {
        let name = format!("bench{i}");
        let body = json!({"username": name, "password": "password1", "email": format!("{name}@x.io")});
        request(client, "POST", &format!("{base}/users/register"), None, Some(body)).await?;
        let (_, bytes) = request(
            client,
            "POST",
            &format!("{base}/users/login"),
            None,
            Some(json!({"username": name, "password": "password1"})),
        )
        .await?;
        let v: Value = serde_json::from_slice(&bytes)?;
        out.push((
            v["user"]["id"].as_str().unwrap_or_default().to_owned(),
            v["token"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(out)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

async fn review_writes(cli: &Cli) -> anyhow::Result<()> {
    let db = liner_shared::testkit::fresh_pg_database().await;
    let (system, _dir) = start_system(Some(db.clone())).await?;
    let http = client();
    let direct = format!("http://{}/api/users-reviews", system.review);
    let gateway = format!("http://{}/api/users-reviews", system.gateway);
    let accounts = Arc::new(users(&http, &direct, cli.concurrency).await?);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(&db).await?;
    let (mut raw_rates, mut svc_rates, mut gw_rates) = (vec![], vec![], vec![]);
    for round in 0..cli.rounds {
        let p = pool.clone();
        let acc = accounts.clone();
        let raw = run_phase(cli.concurrency, cli.seconds, move |w, i| {
            let (p, acc) = (p.clone(), acc.clone());
            async move {
                let now = liner_shared::now_millis();
                sqlx::query("INSERT INTO reviews (id, user_id, album_id, rating_half, review_text, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)")
                    .bind(liner_shared::new_id())
                    .bind(&acc[w as usize].0)
                    .bind(format!("raw-{round}-{i}"))
                    .bind(8_i64)
                    .bind("a fine record")
                    .bind(now)
                    .execute(&p)
                    .await
                    .is_ok()
            }
        })
        .await;
        println!("{}", raw.line(&format!("round {round} raw INSERT")));
        for (name, base, rates) in [("service", &direct, &mut svc_rates), ("via gateway", &gateway, &mut gw_rates)] {
            let (http, acc, url) = (http.clone(), accounts.clone(), format!("{base}/reviews"));
            let phase = run_phase(cli.concurrency, cli.seconds, move |w, i| {
                let (http, acc, url) = (http.clone(), acc.clone(), url.clone());
                async move {
                    let body = json!({"albumId": format!("{name}-{round}-{i}").replace(' ', "_"), "rating": 4.0, "reviewText": "a fine record"});
                    matches!(request(&http, "POST", &url, Some(&acc[w as usize].1), Some(body)).await, Ok((201, _)))
                }
            })
            .await;
            println!("{}", phase.line(&format!("round {round} POST /reviews {name}")));
            rates.push(phase.rate());
        }
        raw_rates.push(raw.rate());
    }
    let (raw, svc, gw) = (median(raw_rates), median(svc_rates), median(gw_rates));
    println!(
        "\nmedian: raw {raw:.0}/s, service {svc:.0}/s ({:.2}x raw), via gateway {gw:.0}/s ({:.2}x raw)",
        svc / raw,
        gw / raw
    );
    system.shutdown().await
}

/// NGINX in front of the same review instance, when an `nginx` binary is installed:
/// the reference a gateway should match. Killed when dropped.
struct Nginx {
    bin: &'static str,
    child: std::process::Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    /// `-s stop` ends the workers too (killing only the master would orphan them).
    fn drop(&mut self) {
        let prefix = self.dir.path().display().to_string();
        let _ = std::process::Command::new(self.bin).args(["-p", &prefix, "-c", "nginx.conf", "-s", "stop"]).status();
        let _ = self.child.wait();
    }
}

/// NGINX on a random high loopback port, another if that one is taken. NGINX cannot
/// say which port `listen 127.0.0.1:0` got, so a port is tried rather than picked by
/// binding it, letting it go and handing it over (another process could take it in
/// between): NGINX binds it itself, or logs that it is in use and is stopped.
fn start_nginx(upstream: SocketAddr) -> Option<Nginx> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| std::path::Path::new(p).exists())?;
    for _ in 0..5 {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + (random % 40_000) as u16;
        match try_nginx(bin, upstream, port) {
            Tried::Up(nginx) => return Some(nginx),
            Tried::PortTaken => eprintln!("(nginx: port {port} is taken; trying another)"),
            Tried::Failed => return None,
        }
    }
    None
}

enum Tried {
    Up(Nginx),
    PortTaken,
    Failed,
}

fn try_nginx(bin: &'static str, upstream: SocketAddr, port: u16) -> Tried {
    let Ok(dir) = tempfile::tempdir() else { return Tried::Failed };
    let conf = format!(
        "worker_processes auto; pid {d}/nginx.pid; error_log {d}/error.log; events {{ worker_connections 4096; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  upstream review {{ server {upstream}; keepalive 256; }}
  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://review; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}",
        d = dir.path().display()
    );
    if std::fs::write(dir.path().join("nginx.conf"), conf).is_err() {
        return Tried::Failed;
    }
    let child = std::process::Command::new(bin)
        .args(["-p", &dir.path().display().to_string(), "-c", "nginx.conf", "-g", "daemon off;"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return Tried::Failed };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // NGINX writes its pid file once its listening socket is open; a port in use it
    // logs (and retries for a few seconds before giving up).
    for _ in 0..250 {
        if dir.path().join("nginx.pid").exists() {
            return Tried::Up(Nginx { bin, child, addr, dir });
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        let exited = !matches!(child.try_wait(), Ok(None));
        if log.contains("Address already in use") || exited {
            let _ = child.kill();
            let _ = child.wait();
            return if log.contains("Address already in use") { Tried::PortTaken } else { Tried::Failed };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Tried::Failed
}

async fn gateway(cli: &Cli) -> anyhow::Result<()> {
    let (system, _dir) = start_system(None).await?;
    let http = client();
    let direct = format!("http://{}/api/users-reviews", system.review);
    let via = format!("http://{}/api/users-reviews", system.gateway);
    let nginx = start_nginx(system.review);
    let via_nginx = nginx.as_ref().map(|n| format!("http://{}/api/users-reviews", n.addr));
    if nginx.is_none() {
        println!("(no nginx installed: comparing with direct only)");
    }
    let acc = users(&http, &direct, 1).await?;
    let (_, bytes) = request(
        &http,
        "POST",
        &format!("{direct}/reviews"),
        Some(&acc[0].1),
        Some(json!({"albumId": "bench", "rating": 4.0})),
    )
    .await?;
    let id = serde_json::from_slice::<Value>(&bytes)?["id"].as_str().unwrap_or_default().to_owned();
    let mut legs = Vec::new();
    for leg in &cli.legs {
        match (leg.as_str(), &via_nginx) {
            ("direct", _) => legs.push(("direct", direct.clone())),
            ("gateway", _) => legs.push(("via gateway", via.clone())),
            ("nginx", Some(n)) => legs.push(("via nginx", n.clone())),
            ("nginx", None) => {}
            (other, _) => anyhow::bail!("unknown leg {other:?}: expected direct, gateway or nginx"),
        }
    }
    anyhow::ensure!(!legs.is_empty(), "no leg to run");
    let mut rates: Vec<Vec<f64>> = vec![vec![]; legs.len()];
    let mut p50s: Vec<Vec<f64>> = vec![vec![]; legs.len()];
    for round in 0..cli.rounds {
        for (leg, (name, base)) in legs.iter().enumerate() {
            let (http, url) = (http.clone(), format!("{base}/reviews/{id}"));
            let phase = run_phase(cli.concurrency, cli.seconds, move |_, _| {
                let (http, url) = (http.clone(), url.clone());
                async move { matches!(request(&http, "GET", &url, None, None).await, Ok((200, _))) }
            })
            .await;
            println!("{}", phase.line(&format!("round {round} GET review {name}")));
            rates[leg].push(phase.rate());
            p50s[leg].push(phase.latency.value_at_quantile(0.5) as f64 / 1000.0);
        }
    }
    let direct_rate = median(rates[0].clone());
    println!();
    for (leg, (name, _)) in legs.iter().enumerate() {
        let rate = median(rates[leg].clone());
        println!(
            "median {name:<12} {rate:>8.0}/s  p50 {:.2} ms  ({:.2}x {})",
            median(p50s[leg].clone()),
            rate / direct_rate,
            legs[0].0
        );
    }
    drop(nginx);
    system.shutdown().await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.bench {
        Bench::ReviewWrites => review_writes(&cli).await,
        Bench::Gateway => gateway(&cli).await,
        Bench::Room(args) => room::room(args, cli.seconds).await,
    }
}
