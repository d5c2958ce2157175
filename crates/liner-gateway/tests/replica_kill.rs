//! Failover with real processes: two review replicas run as separate OS processes
//! (this test binary re-executed in "child" mode), sharing one PostgreSQL database and
//! one signing key, registered in a real registry; the gateway routes to them. Under
//! steady load one replica is SIGKILLed, then restarted.
//!
//! Asserted: no acknowledged write is lost; every client's reads fail at most once;
//! the killed replica leaves the rotation and then the pool within stated bounds; the
//! restarted replica rejoins and receives traffic. Printed (for the README's closing
//! note): time to ejection, time to removal, and gateway overhead vs direct calls.
//!
//! Needs the test PostgreSQL (`LINER_TEST_PG_URL`, see liner-shared's testkit).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

const CHILD_ENV: &str = "LINER_TEST_REVIEW_CHILD";
const LEASE_TTL: Duration = Duration::from_secs(2);
/// Stated bounds (generous for a loaded 2-core machine running debug builds).
const EJECT_BOUND: Duration = Duration::from_secs(5);
const REMOVE_BOUND: Duration = Duration::from_secs(15);

/// Child mode: run one review replica and register it; exits when the parent's pipe
/// closes. In a normal test run (no env var) this does nothing.
#[test]
fn review_replica_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let mut parts = spec.split('|');
    let (Some(db), Some(data_dir), Some(discovery)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("bad child spec")
    };
    // Die with the parent, whatever happens to it.
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), data_dir.into());
        settings.service.database_url = Some(db.parse().unwrap());
        settings.service.db_max_connections = 4;
        settings.registrations_per_address = 0;
        let review = liner_review::build(settings).await.unwrap();
        let addr = review.addr();
        println!("CHILD_ADDR={addr}");
        let _ = std::io::stdout().flush();
        let token = CancellationToken::new();
        let registration = liner_discovery::client::Registration::new("review", addr).with_ttl(LEASE_TTL);
        let registrar = liner_discovery::client::Registrar::new(discovery, registration, &Default::default()).unwrap();
        tokio::spawn(registrar.run(token.clone()));
        let _ = review.run_until(token).await;
    });
}

struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Replica {
    fn spawn(db: &str, data_dir: &str, discovery: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", "review_replica_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{db}|{data_dir}|{discovery}"))
            .env("LINER_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints "test review_replica_child ... " on the same line first.
                if let Some((_, addr)) = line.split_once("CHILD_ADDR=")
                    && let Ok(addr) = addr.trim().parse::<SocketAddr>()
                {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("replica started");
        Self { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn sigkill(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(what: &str, bound: Duration, check: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < bound, "{what} took longer than {bound:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn median_micros(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[derive(Default)]
struct ClientLog {
    acked: Vec<String>,
    failed_writes: usize,
    failed_reads: usize,
    reads: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_replica_leaves_and_a_restarted_one_rejoins_without_losing_writes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();

    let mut registry_settings = liner_discovery::Settings::new(([127, 0, 0, 1], 0).into());
    registry_settings.default_ttl_secs = 2;
    let registry = liner_discovery::build(registry_settings).await.unwrap();
    let discovery = registry.url();
    let stop = CancellationToken::new();
    tokio::spawn(registry.run_until(stop.clone()));

    // One after the other: the first generates the shared signing key.
    let mut r1 = Replica::spawn(&db, &data_dir, &discovery);
    let r2 = Replica::spawn(&db, &data_dir, &discovery);

    let mut settings = liner_gateway::Settings::new(([127, 0, 0, 1], 0).into(), vec![]).with_discovery(&discovery);
    settings.health_interval_ms = 500;
    settings.rate_limit_ip = 0;
    settings.rate_limit_user = 0;
    settings.admin_listen = Some(([127, 0, 0, 1], 0).into());
    let gateway = liner_gateway::build(settings).await.unwrap();
    let gw = format!("http://{}", gateway.addr());
    let admin = format!("http://{}", gateway.admin_addr().expect("admin listener"));
    let view = gateway.view();
    tokio::spawn(gateway.run_until(stop.clone()));
    let (u1, u2) = (r1.url(), r2.url());
    wait_for("both replicas routed", Duration::from_secs(30), || {
        let e = view.eligible("review");
        e.contains(&u1) && e.contains(&u2)
    })
    .await;

    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut tokens = Vec::new();
    for i in 0..4 {
        let user = serde_json::json!({"username": format!("load{i}"), "password": "correct horse", "email": format!("load{i}@example.com")});
        let res = http.post(format!("{gw}/api/users-reviews/users/register")).json(&user).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let login = serde_json::json!({"username": format!("load{i}"), "password": "correct horse"});
        let res = http.post(format!("{gw}/api/users-reviews/users/login")).json(&login).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap_or_else(|| panic!("login: {body}")).to_owned());
    }

    // Gateway overhead: the same read, direct vs through the gateway, same run.
    let probe = {
        let body = serde_json::json!({"albumId": "probe", "rating": 4.0, "reviewText": "x"});
        let res = http
            .post(format!("{gw}/api/users-reviews/reviews"))
            .bearer_auth(&tokens[0])
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (mut direct, mut via) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(http.get(format!("{u2}/api/users-reviews/reviews/{probe}")).send().await.unwrap().status(), 200);
        direct.push(t.elapsed().as_micros());
        let t = Instant::now();
        assert_eq!(http.get(format!("{gw}/api/users-reviews/reviews/{probe}")).send().await.unwrap().status(), 200);
        via.push(t.elapsed().as_micros());
    }
    let (direct, via) = (median_micros(direct), median_micros(via));
    eprintln!(
        "gateway overhead: median direct {direct} us, via gateway {via} us, overhead {} us",
        via.saturating_sub(direct)
    );

    // Steady load: 4 clients, each alternating a write and a read of an acked write,
    // paced at ~25 requests/s per client.
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for (c, token) in tokens.iter().cloned().enumerate() {
        let (http, gw, running) = (http.clone(), gw.clone(), running.clone());
        clients.push(tokio::spawn(async move {
            let mut log = ClientLog::default();
            let mut tick = tokio::time::interval(Duration::from_millis(40));
            let mut i = 0usize;
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                i += 1;
                if i % 2 == 1 {
                    let body = serde_json::json!({"albumId": format!("c{c}-{i}"), "rating": 3.5, "reviewText": "load"});
                    let res = http
                        .post(format!("{gw}/api/users-reviews/reviews"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == 201 => match r.json::<Value>().await {
                            Ok(v) => log.acked.push(v["id"].as_str().unwrap_or_default().to_owned()),
                            Err(_) => log.failed_writes += 1,
                        },
                        _ => log.failed_writes += 1,
                    }
                } else if let Some(id) = log.acked.last().cloned() {
                    log.reads += 1;
                    let res = http.get(format!("{gw}/api/users-reviews/reviews/{id}")).send().await;
                    if !matches!(res, Ok(ref r) if r.status() == 200) {
                        log.failed_reads += 1;
                    }
                }
            }
            log
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    r1.sigkill();
    let ejected =
        wait_for("killed replica out of rotation", EJECT_BOUND, || !view.eligible("review").contains(&u1)).await;
    let removed =
        wait_for("killed replica out of the pool", REMOVE_BOUND, || !view.instances("review").contains(&u1)).await;
    let removed = removed + ejected;
    eprintln!(
        "failover: killed replica out of rotation after {ejected:?}, out of the pool after {removed:?} (lease TTL {LEASE_TTL:?})"
    );

    // Restart: a new process (new port) rejoins and gets traffic.
    let r3 = Replica::spawn(&db, &data_dir, &discovery);
    let u3 = r3.url();
    let rejoined =
        wait_for("restarted replica routed", Duration::from_secs(20), || view.eligible("review").contains(&u3)).await;
    eprintln!("restarted replica in rotation {rejoined:?} after start");
    let label = format!("upstream=\"{}\"", r3.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = http.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
        let served = metrics.lines().any(|l| {
            l.starts_with("gateway_upstream_requests_total")
                && l.contains(&label)
                && (l.contains("status=\"200\"") || l.contains("status=\"201\""))
        });
        if served {
            break;
        }
        assert!(Instant::now() < deadline, "restarted replica never received traffic");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.store(false, Ordering::Relaxed);

    let mut acked = Vec::new();
    let (mut failed_writes, mut reads) = (0, 0);
    for (c, client) in clients.into_iter().enumerate() {
        let log = client.await.unwrap();
        assert!(log.failed_reads <= 1, "client {c}: {} failed reads", log.failed_reads);
        failed_writes += log.failed_writes;
        reads += log.reads;
        acked.extend(log.acked);
    }
    eprintln!(
        "load: {} acknowledged writes, {failed_writes} failed (unacknowledged) writes, {reads} reads",
        acked.len()
    );
    assert!(acked.len() > 20, "the load ran");
    for id in &acked {
        let res = http.get(format!("{gw}/api/users-reviews/reviews/{id}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "acknowledged write {id} is readable");
    }
    drop((r2, r3));
    stop.cancel();
    let _ = killed_at;
}
