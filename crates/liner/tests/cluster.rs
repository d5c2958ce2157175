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
//! - both killed replicas are restarted (new processes on new port-0 listeners, as new
//!   pods would be), rejoin the pool under their new addresses and receive traffic,
//!   proven by the request counters on the restarted replicas' own `/metrics`.
//!
//! Then the registry is SIGKILLed and restarted on the same port (the one it bound
//! itself, which every replica and the gateway were given): routing never stops
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
//! through its gRPC `List`. The processes are started by `common/procs.rs`: each on port
//! 0, its address read from its own log line; every child's stdout/stderr goes to a file
//! in a temp dir, and on failure the tail of each is printed.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[path = "common/cluster.rs"]
mod harness;
#[path = "common/procs.rs"]
mod procs;

use harness::*;
use procs::*;

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
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_replica_kills_and_a_registry_restart() {
    let test_started = Instant::now();
    let backends = Backends {
        review_db: liner_shared::testkit::fresh_pg_database().await,
        forum_db: liner_shared::testkit::fresh_pg_database().await,
        redis: liner_shared::testkit::redis_url(),
    };
    let cluster = Cluster::start(&backends, &[]).await;
    let (writers, room, members) = cluster.users_and_room("kill -9 listening party").await;
    let load = Load::start(&cluster, &writers, &room, members);
    let Cluster {
        http,
        mut discovery,
        discovery_addr,
        discovery_url,
        discovery_args,
        mut reviews,
        review_args,
        mut forums,
        forum_args,
        gateway,
        gw,
        gw_admin,
        logs,
        ..
    } = cluster;
    let (done, ctl) = (load.done.clone(), load.ctl.clone());
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
    // Back where every replica and the gateway look for it: its own old port.
    discovery = spawn_on(&logs, "discovery-restarted", &discovery_addr, &discovery_args).listening().await;
    ready(&http, &discovery).await;
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
            let terminated_at = Instant::now();
            proc.sigterm();
            // Draining: not ready, yet still serving.
            let url = proc.url();
            wait_until(&format!("{service} {addr} answers 503 on /readyz while draining"), DRAIN_BOUND, || async {
                http.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status() == 503)
            })
            .await;
            let alive = http.get(format!("{url}/healthz")).send().await.map(|r| r.status().as_u16());
            assert_eq!(alive.ok(), Some(200), "{service} {addr} still serves while draining");
            let stopped = proc.exit_status(Duration::from_secs(30)).await;
            let took = terminated_at.elapsed();
            assert!(stopped.success(), "{service} {addr} exits 0 after SIGTERM, got {stopped}");
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
    let finished = load.finish(&http, &gw, &room).await;
    let load_time = finished.load_time;

    // --- assertions ----------------------------------------------------------------------------
    let acked_reviews = finished.assert_acked_reviews_readable(&http, &gw).await;
    let acked_msgs = finished.assert_chat_complete();
    let last = finished.stored.len();
    let member_logs = &finished.member_logs;
    for l in member_logs {
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
    let failures = finished.failures();
    let during_rollout: Vec<&&Failure> = failures.iter().filter(|f| rolling.contains(&f.at)).collect();
    assert!(during_rollout.is_empty(), "requests failed during the rolling restart: {during_rollout:?}");

    // HTTP clients: never two failed reads in a row.
    let all_http: Vec<&HttpLog> = finished.http_logs().collect();
    for (c, l) in all_http.iter().enumerate() {
        assert!(
            l.max_failed_reads_in_row <= 1,
            "client {c}: {} failed reads in a row: {:?}",
            l.max_failed_reads_in_row,
            l.failures
        );
    }
    // Routing never stopped while the registry was away: not one failure from its kill on.
    let during_registry: Vec<&&Failure> = failures.iter().filter(|f| f.at >= registry_killed_at).collect();
    assert!(during_registry.is_empty(), "requests failed during the registry restart: {during_registry:?}");
    let failover = failures.iter().map(|f| f.at.saturating_duration_since(killed_at)).max().unwrap_or_default();

    let writes: usize = finished.review_logs.iter().map(|l| l.writes).sum();
    let failed_writes: usize = finished.review_logs.iter().map(|l| l.failed_writes).sum();
    let reads: usize = all_http.iter().map(|l| l.reads).sum();
    let failed_reads: usize = all_http.iter().map(|l| l.failed_reads).sum();
    let sent: usize = member_logs.iter().map(|l| l.sent).sum();
    let resent: usize = member_logs.iter().map(|l| l.resent).sum();
    let failed_connects: usize = member_logs.iter().map(|l| l.connect_failures).sum();
    let rate = (writes + reads + sent) as f64 / load_time.as_secs_f64();
    assert!(acked_reviews > 100 && acked_msgs > 50, "the load ran");
    eprintln!(
        "load: {:.1} s, {rate:.0} requests/s: {writes} review writes ({} acked, {failed_writes} failed, unacked), \
         {reads} reads ({failed_reads} failed; at most {} in a row per client), {sent} chat messages \
         ({acked_msgs} acked, {resent} resent after reconnects, {last} stored), {} members on the killed forum \
         replica reconnected (slowest {} ms, {failed_connects} failed connects)",
        load_time.as_secs_f64(),
        acked_reviews,
        all_http.iter().map(|l| l.max_failed_reads_in_row).max().unwrap_or(0),
        on_killed.len(),
        ms(reconnect_max),
    );
    eprintln!(
        "failover: last failed HTTP request {} ms after the kill ({} failures: {:?})",
        ms(failover),
        failures.len(),
        failures.iter().take(6).map(|f| f.why.chars().take(120).collect::<String>()).collect::<Vec<_>>()
    );
    eprintln!("whole test: {:.1} s", test_started.elapsed().as_secs_f64());
    drop(gateway);
}
