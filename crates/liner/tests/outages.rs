//! Outages of the backing services, on the 2-replica cluster of `cluster.rs` (the same
//! harness, `common/cluster.rs`), under the same load through the gateway; only the
//! PostgreSQL and Redis are throwaway servers of this test
//! (`liner_shared::throwaway`), since the shared ones must never be stopped.
//!
//! **Redis stopped for [`REDIS_OUTAGE`] and started again** (empty: it keeps nothing):
//! - both forum replicas stay in the gateway's rotation the whole time (their
//!   `/readyz` depends on the database only), sampled every 100 ms;
//! - chat keeps working: messages are stored and acked meanwhile, and members on the
//!   other replica receive them before Redis is back (the forum's reconciliation tick
//!   reads them from the database), no member loses its connection, and in the end
//!   every member has every message exactly once, in order;
//! - the room's `online` count, read through the gateway (so from either replica),
//!   is the true 6 again within [`ONLINE_RECOVERY_BOUND`] of Redis's return;
//! - review reads and writes (and a login, whose failure counter lives in Redis) and
//!   the forum's history reads: not one request fails from the stop until the counts
//!   have recovered.
//!
//! **PostgreSQL stopped (`pg_ctl -m fast`, which aborts the transactions in flight)
//! for [`PG_OUTAGE`] and started again** — longer than the services' 5 s wait for a
//! connection, so that requests arriving meanwhile are answered rather than delayed:
//! - every request that fails, from the stop on, fails with 503 (never 500, never a
//!   502 or 504, never without an answer), and within [`ROUTE_TIMEOUT_SECS`] (the
//!   gateway's upstream timeout here);
//! - no request fails later than [`PG_RECOVERY_BOUND`] after the database is back
//!   (the 5 s), with the same processes (none restarted);
//! - every review answered 201 and every chat message acked, before, during and after
//!   both outages, is there afterwards.
//!
//! Both outages run one after the other on one cluster in one test: starting the
//! cluster is a third of its time, and two clusters side by side would share the two
//! cores and blur each other's timings. Measured figures are printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use liner_shared::throwaway::{PostgresOptions, RedisOptions, ThrowawayPostgres, ThrowawayRedis};
use serde_json::{Value, json};

#[path = "common/cluster.rs"]
mod harness;
#[path = "common/procs.rs"]
mod procs;

use harness::*;
use procs::*;

/// How long Redis is away: the scenario itself.
const REDIS_OUTAGE: Duration = Duration::from_secs(10);
/// How long PostgreSQL is away: the scenario itself (see the module doc).
const PG_OUTAGE: Duration = Duration::from_secs(6);
/// The gateway's upstream timeout in this cluster (`--upstream-timeout-secs`): below
/// the test clients' own 10 s, so a hang shows as the gateway's 504.
const ROUTE_TIMEOUT_SECS: u64 = 8;
/// The bound: PostgreSQL back → no request fails any more.
const PG_RECOVERY_BOUND: Duration = Duration::from_secs(5);
/// Redis back → the online count is true again. The replicas rewrite their counts at
/// every presence heartbeat (5 s), so expected: under 6 s.
const ONLINE_RECOVERY_BOUND: Duration = Duration::from_secs(20);
/// During the Redis outage: a message acked → every member has it. The forum's
/// reconciliation tick is 1 s, so expected: 1–2 s.
const CATCH_UP_BOUND: Duration = Duration::from_secs(5);

/// The room's `online` through the gateway (from whichever forum replica answers).
async fn online(http: &reqwest::Client, gw: &str, room: &str) -> Option<u64> {
    let res = http.get(format!("{gw}/api/forums/rooms/{room}")).send().await.ok()?;
    let v: Value = res.json().await.ok()?;
    v["online"].as_u64()
}

/// Samples, every 100 ms until stopped, whether the gateway keeps both forum replicas
/// in rotation; returns the samples where it did not (elapsed, address, ready).
fn watch_forum_rotation(cluster: &Cluster, since: Instant) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (http, admin) = (cluster.http.clone(), cluster.gw_admin.clone());
    let addrs: Vec<String> = cluster.forums.iter().map(|p| p.addr.clone()).collect();
    let watching = stop.clone();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        while !watching.load(Ordering::Relaxed) {
            let v = GatewayView::fetch(&http, &admin).await;
            for a in &addrs {
                if v.ready(a) != Some(true) {
                    out.push(format!("{} ms: {a} ready={:?}", ms(since.elapsed()), v.ready(a)));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out
    });
    (stop, task)
}

/// A review write every 100 ms through the gateway until `stop`: what each ended with.
async fn probe(gw: String, token: String, stop: Arc<AtomicBool>) -> Vec<Failure> {
    let http = http_client();
    let mut failures = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let body = json!({"albumId": format!("probe-{i}"), "rating": 4.0, "reviewText": "probe"});
        let sent = Instant::now();
        let res = http.post(format!("{gw}/api/users-reviews/reviews")).bearer_auth(&token).json(&body).send().await;
        if let Err(f) = expect_status(res, 201).await {
            let why = format!("write (probe): {}", f.why);
            failures.push(Failure { at: Instant::now(), took: sent.elapsed(), status: f.status, why });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_rides_out_a_redis_outage_and_a_postgres_restart() {
    let test_started = Instant::now();
    let pg = ThrowawayPostgres::start(PostgresOptions::default()).expect("a throwaway PostgreSQL");
    let redis = ThrowawayRedis::start(RedisOptions::default()).expect("a throwaway Redis");
    let backends = Backends {
        review_db: pg.fresh_database().await.expect("review database"),
        forum_db: pg.fresh_database().await.expect("forum database"),
        redis: redis.url(),
    };
    let timeout = ROUTE_TIMEOUT_SECS.to_string();
    let mut cluster = Cluster::start(&backends, &["--upstream-timeout-secs", &timeout]).await;
    let (http, gw) = (cluster.http.clone(), cluster.gw.clone());
    let (writers, room, members) = cluster.users_and_room("outage listening party").await;
    let load = Load::start(&cluster, &writers, &room, members);
    let ctl = load.ctl.clone();
    wait_until("the load runs", Duration::from_secs(30), || async { load.done.load(Ordering::Relaxed) > 30 }).await;
    wait_until("all 6 members online", Duration::from_secs(30), || async {
        online(&http, &gw, &room).await == Some(6)
    })
    .await;

    // --- Redis: stopped for REDIS_OUTAGE, started again -------------------------------------
    let redis_stopped = Instant::now();
    let (stop_watch, rotation_watch) = watch_forum_rotation(&cluster, redis_stopped);
    tokio::task::block_in_place(|| redis.stop());
    let acked_before = ctl.acked_seq.load(Ordering::Relaxed);
    // A login counts failures in Redis: it must not depend on it.
    let login = json!({"username": "writer0", "password": PASSWORD});
    let sent = Instant::now();
    let res = http.post(format!("{gw}/api/users-reviews/users/login")).json(&login).send().await;
    expect_status(res, 200).await.unwrap_or_else(|e| panic!("login while Redis is down: {e}"));
    let login_took = sent.elapsed();
    let online_during = online(&http, &gw, &room).await;
    // Chat keeps working: what is acked now reaches every member, on both replicas,
    // before Redis is back.
    tokio::time::sleep(REDIS_OUTAGE / 3).await;
    let acked_mid = ctl.acked_seq.load(Ordering::Relaxed);
    assert!(acked_mid > acked_before, "chat messages are stored and acked while Redis is down");
    let catch_up = wait_until("every member receives what was acked while Redis is down", CATCH_UP_BOUND, || async {
        ctl.slowest_member() >= acked_mid
    })
    .await;
    assert!(redis_stopped.elapsed() < REDIS_OUTAGE, "the members caught up before Redis came back");
    tokio::time::sleep(REDIS_OUTAGE.saturating_sub(redis_stopped.elapsed())).await;
    tokio::task::block_in_place(|| redis.start_again()).expect("Redis starts again");
    let online_recovered = wait_until("online counts recover after Redis is back", ONLINE_RECOVERY_BOUND, || async {
        // Five reads in a row, spread by the gateway over both replicas.
        for _ in 0..5 {
            if online(&http, &gw, &room).await != Some(6) {
                return false;
            }
        }
        true
    })
    .await;
    let redis_phase = redis_stopped..Instant::now();
    stop_watch.store(true, Ordering::Relaxed);
    let out_of_rotation = rotation_watch.await.expect("rotation watch");
    assert!(
        out_of_rotation.is_empty(),
        "forum replicas left the rotation during the Redis outage: {out_of_rotation:?}"
    );
    eprintln!(
        "Redis down for {} ms: login answered in {} ms, online count {online_during:?} meanwhile; seq {acked_mid} \
         (acked {} ms into the outage) reached every member {} ms later; online back to 6 {} ms after Redis returned",
        ms(REDIS_OUTAGE),
        ms(login_took),
        ms(REDIS_OUTAGE / 3),
        ms(catch_up),
        ms(online_recovered),
    );

    // --- PostgreSQL: stopped for PG_OUTAGE (fast), started again -----------------------------
    let stop_probe = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(probe(gw.clone(), writers[0].token.clone(), stop_probe.clone()));
    let pg_stopped = Instant::now();
    tokio::task::block_in_place(|| pg.stop()).expect("PostgreSQL stops");
    let stop_took = pg_stopped.elapsed();
    tokio::time::sleep(PG_OUTAGE).await;
    tokio::task::block_in_place(|| pg.start_again()).expect("PostgreSQL starts again");
    let pg_back = Instant::now();
    let addrs: Vec<String> = cluster.replicas().map(|p| p.addr.clone()).collect();
    let rotation_back = wait_until("all four replicas back in rotation", Duration::from_secs(30), || async {
        let v = cluster.view().await;
        addrs.iter().all(|a| v.ready(a) == Some(true))
    })
    .await;
    // Let the load and the probe run on past the recovery bound, so a late failure shows.
    wait_until("the load runs on after the recovery bound", Duration::from_secs(30), || async {
        pg_back.elapsed() > PG_RECOVERY_BOUND + Duration::from_secs(3)
    })
    .await;
    stop_probe.store(true, Ordering::Relaxed);
    let probe_failures = prober.await.expect("probe");
    for p in cluster.reviews.iter_mut().chain(cluster.forums.iter_mut()) {
        assert!(!p.exited(), "{} is still the process it was: recovered without a restart", p.name);
    }

    // --- stop the load, collect, assert -------------------------------------------------------
    let finished = load.finish(&http, &gw, &room).await;
    let acked_reviews = finished.assert_acked_reviews_readable(&http, &gw).await;
    let acked_msgs = finished.assert_chat_complete();

    // Redis: nothing failed, no member lost its connection.
    let failures = finished.failures();
    let in_redis: Vec<&&Failure> = failures.iter().filter(|f| redis_phase.contains(&f.at)).collect();
    assert!(in_redis.is_empty(), "requests failed during the Redis outage: {in_redis:?}");
    for l in &finished.member_logs {
        let lost: Vec<&Instant> = l.lost_at.iter().filter(|t| redis_phase.contains(*t)).collect();
        assert!(lost.is_empty(), "{} lost its connection during the Redis outage ({:?})", l.name, l.errors);
    }

    // PostgreSQL: 503 only, in time, and none after the recovery bound.
    let in_pg: Vec<&Failure> =
        failures.iter().copied().chain(probe_failures.iter()).filter(|f| f.at >= pg_stopped).collect();
    let route_timeout = Duration::from_secs(ROUTE_TIMEOUT_SECS);
    for f in &in_pg {
        assert_eq!(f.status, Some(503), "a request failing while PostgreSQL restarts gets a 503: {f:?}");
        assert!(f.took < route_timeout, "answered within the route timeout: {f:?}");
    }
    let failed_writes = in_pg.iter().filter(|f| f.why.starts_with("write")).count();
    assert!(failed_writes > 0, "the outage was felt: writes failed while PostgreSQL was down");
    let last_failure = in_pg.iter().map(|f| f.at).max().expect("failures");
    let recovery = last_failure.saturating_duration_since(pg_back);
    assert!(
        recovery <= PG_RECOVERY_BOUND,
        "requests still failed {recovery:?} after PostgreSQL was back: {:?}",
        in_pg.iter().filter(|f| f.at > pg_back + PG_RECOVERY_BOUND).collect::<Vec<_>>()
    );
    let internal: Vec<&String> =
        finished.member_logs.iter().flat_map(|l| &l.errors).filter(|e| e.contains("\"internal\"")).collect();
    assert!(internal.is_empty(), "chat errors say unavailable, never internal: {internal:?}");
    let slowest = in_pg.iter().map(|f| f.took).max().unwrap_or_default();
    let refused_msgs =
        finished.member_logs.iter().flat_map(|l| &l.errors).filter(|e| e.contains("unavailable")).count();
    let resent: usize = finished.member_logs.iter().map(|l| l.resent).sum();
    eprintln!(
        "PostgreSQL stopped in {} ms, down for {} ms: {} requests failed, all 503 ({failed_writes} writes incl. the \
         probe's; slowest answer {} ms); last failure {} ms after it was back, all replicas in rotation after {} ms; \
         {refused_msgs} chat messages refused as unavailable, {resent} resent",
        ms(stop_took),
        ms(PG_OUTAGE),
        in_pg.len(),
        ms(slowest),
        ms(recovery),
        ms(rotation_back),
    );
    eprintln!(
        "load: {:.1} s, {acked_reviews} reviews acked (all readable), {acked_msgs} chat messages acked (all stored, \
         every member got every one once, in order); whole test {:.1} s",
        finished.load_time.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}
