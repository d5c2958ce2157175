//! The gateway over real sockets: a real registry, fake upstreams (small axum servers
//! that say who they are) and, for edge auth, a real review service. Every wait is
//! bounded and asserts an eventual outcome, never a speed.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

// === tests ===

#[tokio::test]
async fn discovered_instances_share_the_load_and_a_dead_one_leaves_the_pool() {
    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 2).await;
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let ttl = Duration::from_secs(2);
    let (_keep_a, reg_a) = register(&registry.url(), "forum", a.addr, ttl);
    let (keep_b, reg_b) = register(&registry.url(), "forum", b.addr, ttl);
    let gw = Gateway::start(settings(vec![]).with_discovery(registry.url())).await;
    eventually("both instances discovered", async || gw.view.instances("forum").len() == 2).await;

    let client = http();
    for _ in 0..40 {
        name_of(client.get(gw.url("/api/forums/whoami")).send().await.unwrap()).await;
    }
    assert!(a.hits() >= 5 && b.hits() >= 5, "both got traffic: a={} b={}", a.hits(), b.hits());

    // Crash a: the server stops and its registration stops without deregistering.
    reg_a.abort();
    let dead = a.url();
    a.stop().await;
    for _ in 0..40 {
        let res = client.get(gw.url("/api/forums/whoami")).send().await.unwrap();
        assert_eq!(name_of(res).await, "b", "reads keep succeeding (retried on another instance)");
    }
    // Out of rotation fast (breaker / active check), out of the set after the lease TTL.
    eventually("dead instance not eligible", async || !gw.view.eligible("forum").contains(&dead)).await;
    eventually("dead instance leaves the pool", async || !gw.view.instances("forum").contains(&dead)).await;
    let dead_label = format!("upstream=\"{}\"", dead.trim_start_matches("http://"));
    let gauges = gw.metrics().await;
    assert!(
        !gauges.lines().any(|l| l.starts_with("gateway_upstream_ready") && l.contains(&dead_label)),
        "an instance that left the pool has no gauges: {gauges}"
    );
    let live = format!("gateway_upstream_ready{{service=\"forum\",upstream=\"{}\"}} 1", b.addr);
    assert!(gauges.contains(&live), "the live one has: {gauges}");

    keep_b.cancel();
    let _ = reg_b.await;
    eventually("deregistered instance leaves the pool", async || gw.view.instances("forum").is_empty()).await;
    let (code, headers) = gateway_error(client.get(gw.url("/api/forums/whoami")).send().await.unwrap(), 503).await;
    assert_eq!(code, "unavailable");
    assert!(headers.contains_key("retry-after"));
    b.stop().await;
    registry.stop().await;
}

#[tokio::test]
async fn gateway_keeps_routing_through_a_registry_restart() {
    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 2).await;
    let registry_addr = registry.addr;
    let url = registry.url();
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let ttl = Duration::from_secs(2);
    let (keep_a, _ra) = register(&url, "review", a.addr, ttl);
    let (keep_b, _rb) = register(&url, "review", b.addr, ttl);
    let gw = Gateway::start(settings(vec![]).with_discovery(url.clone())).await;
    eventually("both discovered", async || gw.view.instances("review").len() == 2).await;

    registry.stop().await;
    let client = http();
    for _ in 0..20 {
        name_of(client.get(gw.url("/api/users-reviews/whoami")).send().await.unwrap()).await;
    }
    assert_eq!(gw.view.instances("review").len(), 2, "last known set kept while the registry is down");

    let registry = Registry::start_at(registry_addr, 2).await;
    // The restarted registry learns both back from heartbeats; the gateway never lost them.
    let mut direct = liner_discovery::proto::discovery_client::DiscoveryClient::connect(registry.url()).await.unwrap();
    eventually("registry rebuilt from heartbeats", async || {
        direct
            .list(liner_discovery::proto::ListRequest { service: "review".into() })
            .await
            .is_ok_and(|r| r.into_inner().instances.len() == 2)
    })
    .await;
    assert_eq!(gw.view.instances("review").len(), 2);
    for _ in 0..10 {
        name_of(client.get(gw.url("/api/users-reviews/whoami")).send().await.unwrap()).await;
    }
    keep_a.cancel();
    keep_b.cancel();
    a.stop().await;
    b.stop().await;
    registry.stop().await;
}

#[tokio::test]
async fn forwarding_rewrites_trusted_headers() {
    let up = Upstream::start("one").await;
    let gw = Gateway::start(settings(vec![up.route("forum")])).await;
    let res = http()
        .get(gw.url("/api/forums/whoami"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-liner-user", "admin")
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "req-123");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["xff"], "127.0.0.1", "the gateway writes x-forwarded-for itself");
    assert!(body["internal"].is_null(), "client-supplied internal headers are dropped");
    assert_eq!(body["requestId"], "req-123");

    let res = http().get(gw.url("/api/forums/whoami")).send().await.unwrap();
    let id = res.headers().get("x-request-id").cloned().expect("a request id is set");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["requestId"].as_str(), id.to_str().ok(), "and forwarded");

    let (code, _) = gateway_error(http().get(gw.url("/api/nowhere")).send().await.unwrap(), 404).await;
    assert_eq!(code, "not_found");
    let res = http().post(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    up.stop().await;
}

#[tokio::test]
async fn timeouts_sizes_and_load_shedding_answer_in_the_api_shape() {
    let up = Upstream::start("one").await;
    let mut s = settings(vec![up.route("forum")]);
    s.route_timeouts = vec!["forum=400".parse().unwrap()];
    s.max_request_bytes = 1024;
    let gw = Gateway::start(s).await;
    let client = http();

    let (code, _) = gateway_error(client.get(gw.url("/api/forums/slow")).send().await.unwrap(), 504).await;
    assert_eq!(code, "upstream_timeout");

    let big = vec![b'x'; 4096];
    let res = client.post(gw.url("/api/forums/whoami")).body(big.clone()).send().await.unwrap();
    let (code, _) = gateway_error(res, 413).await;
    assert_eq!(code, "payload_too_large");
    // Without a Content-Length (chunked), the limit still holds.
    let head = chunked_post_status(gw.addr, "/api/forums/whoami", &big).await;
    assert!(head.starts_with("HTTP/1.1 413"), "chunked body over the limit: {head}");
    let small = client.post(gw.url("/api/forums/whoami")).body("ok").send().await.unwrap();
    assert_eq!(small.status(), 200);

    up.stop().await;
}

#[tokio::test]
async fn past_the_in_flight_cap_requests_are_shed_with_503() {
    let up = Upstream::start("one").await;
    let mut s = settings(vec![up.route("forum")]);
    s.max_in_flight = 1;
    let gw = Gateway::start(s).await;
    let client = http();
    // One slot: while a held request occupies it, the next one is shed.
    let slow = tokio::spawn(client.get(gw.url("/api/forums/slow")).send());
    eventually("slow request in flight", async || up.hits() >= 1).await;
    let (code, headers) = gateway_error(client.get(gw.url("/api/forums/whoami")).send().await.unwrap(), 503).await;
    assert_eq!(code, "unavailable");
    assert!(headers.contains_key("retry-after"));
    up.release_slow();
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    let after = client.get(gw.url("/api/forums/whoami")).send().await.unwrap();
    assert_eq!(after.status(), 200, "the slot is free again");
    up.stop().await;
}

#[tokio::test]
async fn rate_limits_per_ip_answer_429_with_retry_after() {
    let up = Upstream::start("one").await;
    let mut s = settings(vec![up.route("forum")]);
    s.rate_limit_ip = 1;
    s.rate_burst_ip = 2;
    let gw = Gateway::start(s).await;
    let client = http();
    let mut limited = None;
    for _ in 0..10 {
        let res = client.get(gw.url("/api/forums/whoami")).send().await.unwrap();
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let (code, headers) = gateway_error(limited.expect("rate limited within 10 requests"), 429).await;
    assert_eq!(code, "rate_limited");
    let secs: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&secs));
    up.stop().await;
}

#[tokio::test]
async fn cors_preflight_for_the_allowed_origin_only() {
    let up = Upstream::start("one").await;
    let mut s = settings(vec![up.route("review")]);
    s.cors_origins = vec!["http://app.example".into()];
    let gw = Gateway::start(s).await;
    let client = http();
    let pre = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, gw.url("/api/users-reviews/reviews"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let ok = pre("http://app.example").await.unwrap();
    assert!(ok.status().is_success());
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "http://app.example");
    let other = pre("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple =
        client.get(gw.url("/api/users-reviews/whoami")).header("origin", "http://app.example").send().await.unwrap();
    assert_eq!(simple.headers().get("access-control-allow-origin").unwrap(), "http://app.example");
    up.stop().await;
}

#[tokio::test]
async fn failing_instance_is_ejected_then_readmitted() {
    let good = Upstream::start("good").await;
    let bad = Upstream::start("bad").await;
    bad.state.failing.store(true, Ordering::SeqCst);
    let mut s = settings(vec![good.route("forum"), bad.route("forum")]);
    s.breaker_failures = 2;
    s.breaker_cooldown_ms = 300;
    let gw = Gateway::start(s).await;
    let client = http();
    for _ in 0..30 {
        let _ = client.get(gw.url("/api/forums/flaky")).send().await.unwrap();
    }
    // While ejected, it gets at most the occasional half-open probe.
    let before = bad.hits();
    for _ in 0..20 {
        let _ = client.get(gw.url("/api/forums/flaky")).send().await.unwrap();
    }
    assert!(bad.hits() - before <= 5, "ejected instance got {} of 20", bad.hits() - before);

    bad.state.failing.store(false, Ordering::SeqCst);
    eventually("healed instance re-admitted and receiving traffic", async || {
        let before = bad.hits();
        for _ in 0..10 {
            let _ = client.get(gw.url("/api/forums/flaky")).send().await;
        }
        bad.hits() - before >= 3
    })
    .await;
    let metrics = gw.metrics().await;
    assert!(metrics.contains("gateway_upstream_requests_total"), "per-upstream counters");
    assert!(metrics.contains(&format!("upstream=\"{}\"", bad.addr)), "labelled by upstream");
    assert!(metrics.contains("gateway_upstream_duration_seconds"), "per-upstream latency");
    assert!(metrics.contains("gateway_request_duration_seconds"), "per-route latency");
    let public = client.get(gw.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!public.contains("gateway_"), "no metrics on the public listener");
    good.stop().await;
    bad.stop().await;
}

#[tokio::test]
async fn unsafe_requests_are_not_retried_on_503_but_reads_are() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let mut s = settings(vec![a.route("forum"), b.route("forum")]);
    s.breaker_failures = 100;
    let gw = Gateway::start(s).await;
    let client = http();
    for _ in 0..10 {
        let res = client.post(gw.url("/api/forums/status/503")).send().await.unwrap();
        assert_eq!(res.status(), 503);
        assert!(!res.headers().contains_key("x-liner-error"), "the upstream's own 503 is passed through");
    }
    assert_eq!(a.hits() + b.hits(), 10, "a write is sent once");
    let res = client.get(gw.url("/api/forums/status/503")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(a.hits() + b.hits(), 12, "a read is retried on the other instance (two instances, two tries)");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn websocket_is_tunnelled_both_ways() {
    let up = Upstream::start("ws").await;
    let gw = Gateway::start(settings(vec![up.route("forum")])).await;
    let (mut ws, res) = tokio_tungstenite::connect_async(format!("ws://{}/api/forums/connect", gw.addr)).await.unwrap();
    assert_eq!(res.status(), 101);
    for i in 0..20 {
        ws.send(tokio_tungstenite::tungstenite::Message::text(format!("m{i}"))).await.unwrap();
        let reply = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(reply.into_text().unwrap().as_str(), format!("echo:m{i}"));
    }
    ws.close(None).await.unwrap();
    up.stop().await;
}

/// Edge auth against the real review service, found through discovery: writes and
/// WebSocket connects need a valid token; register and login do not.
#[tokio::test]
async fn edge_auth_with_keys_from_a_discovered_review_instance() {
    let (_dir, review_addr, stop_review) = own_review_instance().await;
    let forum = Upstream::start("forum").await;

    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 5).await;
    let (keep_review, _r) = register(&registry.url(), "review", review_addr, Duration::from_secs(5));
    let mut s = settings(vec![forum.route("forum")]).with_discovery(registry.url());
    s.edge_auth = true;
    let gw = Gateway::start(s).await;
    eventually("review discovered", async || gw.view.instances("review").len() == 1).await;
    let client = http();

    let res = client
        .post(gw.url("/api/users-reviews/users/register"))
        .json(&serde_json::json!({"username": "edge_user", "password": "correct horse", "email": "edge@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "register needs no token");
    let res = client
        .post(gw.url("/api/users-reviews/users/login"))
        .json(&serde_json::json!({"username": "edge_user", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login needs no token");
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();

    let review_body = serde_json::json!({"albumId": "album-1", "rating": 4.5, "reviewText": "good"});
    let res = client.post(gw.url("/api/users-reviews/reviews")).json(&review_body).send().await.unwrap();
    assert_eq!(gateway_error(res, 401).await.0, "unauthorized");
    let res = client
        .post(gw.url("/api/users-reviews/reviews"))
        .bearer_auth("not.a.token")
        .json(&review_body)
        .send()
        .await
        .unwrap();
    assert_eq!(gateway_error(res, 401).await.0, "unauthorized");
    // A token with a valid shape but a signature from another key.
    let mut forged = token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str(if token.ends_with("AAAA") { "BBBB" } else { "AAAA" });
    let res =
        client.post(gw.url("/api/users-reviews/reviews")).bearer_auth(&forged).json(&review_body).send().await.unwrap();
    assert_eq!(gateway_error(res, 401).await.0, "unauthorized");

    let res =
        client.post(gw.url("/api/users-reviews/reviews")).bearer_auth(&token).json(&review_body).send().await.unwrap();
    assert_eq!(res.status(), 201, "a valid token passes the edge and the service");
    let res = client.get(gw.url("/api/users-reviews/reviews/album/album-1")).send().await.unwrap();
    assert_eq!(res.status(), 200, "reads need no token");

    // WebSocket connect: refused without a token, tunnelled with one (query form).
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/api/forums/connect", gw.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 401);
            assert!(res.headers().contains_key("x-liner-error"));
        }
        other => panic!("expected a 401 handshake, got {other:?}"),
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/api/forums/connect?token={token}", gw.addr)).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text("hi")).await.unwrap();
    let reply = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo:hi");

    keep_review.cancel();
    stop_review.cancel();
    forum.stop().await;
    registry.stop().await;
}

#[tokio::test]
async fn per_user_rate_limit_applies_to_authenticated_writes() {
    let (_dir, review_addr, stop_review) = own_review_instance().await;
    let review_url = format!("http://{review_addr}");
    let mut s = settings(vec![format!("review={review_url}").parse().unwrap()]);
    s.edge_auth = true;
    s.jwks_url = Some(format!("{review_url}/api/users-reviews/.well-known/jwks.json"));
    s.rate_limit_user = 1;
    s.rate_burst_user = 2;
    let gw = Gateway::start(s).await;
    let client = http();
    client
        .post(gw.url("/api/users-reviews/users/register"))
        .json(&serde_json::json!({"username": "busy_user", "password": "correct horse", "email": "busy@example.com"}))
        .send()
        .await
        .unwrap();
    let login: Value = client
        .post(gw.url("/api/users-reviews/users/login"))
        .json(&serde_json::json!({"username": "busy_user", "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let mut limited = None;
    for i in 0..10 {
        let body = serde_json::json!({"albumId": format!("album-{i}"), "rating": 3.0, "reviewText": ""});
        let res =
            client.post(gw.url("/api/users-reviews/reviews")).bearer_auth(token).json(&body).send().await.unwrap();
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
        assert_eq!(res.status(), 201);
    }
    let (code, headers) = gateway_error(limited.expect("user rate limited"), 429).await;
    assert_eq!(code, "rate_limited");
    assert!(headers.contains_key("retry-after"));
    stop_review.cancel();
}

#[tokio::test]
async fn writes_get_503_not_401_while_no_keys_can_be_fetched() {
    let forum = Upstream::start("forum").await;
    let mut s = settings(vec![forum.route("forum")]);
    s.edge_auth = true;
    let gw = Gateway::start(s).await;
    // A well-formed token (garbage is 401 whatever the keys) from an issuer not reachable.
    let dir = tempfile::tempdir().unwrap();
    let signer = liner_review::keys::Signer::load_or_generate(&dir.path().join("key.pem"), 3600).unwrap();
    let token = signer.issue("someone", "someone").unwrap();
    let res = http().post(gw.url("/api/forums/rooms")).bearer_auth(&token).send().await.unwrap();
    let (code, headers) = gateway_error(res, 503).await;
    assert_eq!(code, "unavailable");
    assert!(headers.contains_key("retry-after"));
    let res = http().post(gw.url("/api/forums/rooms")).send().await.unwrap();
    assert_eq!(gateway_error(res, 401).await.0, "unauthorized", "a missing token is still 401");
    let res = http().post(gw.url("/api/forums/rooms")).bearer_auth("a.b.c").send().await.unwrap();
    assert_eq!(gateway_error(res, 401).await.0, "unauthorized", "a malformed token is still 401");
    assert_eq!(forum.hits(), 0, "nothing reached the service");
    forum.stop().await;
}

/// A token signed by a key the gateway has not seen (a new replica with a rotated key)
/// makes it refetch the JWKS and then pass.
#[tokio::test]
async fn an_unknown_key_id_triggers_a_jwks_refetch() {
    let start_review = async |dir: &std::path::Path| {
        let review =
            liner_review::build(liner_review::Settings::new(([127, 0, 0, 1], 0).into(), dir.into())).await.unwrap();
        let addr = review.addr();
        let stop = CancellationToken::new();
        tokio::spawn(review.run_until(stop.clone()));
        (addr, stop)
    };
    let db_dir = tempfile::tempdir().unwrap();
    // Two review instances with different signing keys (separate data dirs).
    let (old_addr, stop_old) = start_review(db_dir.path()).await;
    let other_dir = tempfile::tempdir().unwrap();
    let (new_addr, stop_new) = start_review(other_dir.path()).await;
    let forum = Upstream::start("forum").await;

    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 5).await;
    let (keep_old, _o) = register(&registry.url(), "review", old_addr, Duration::from_secs(5));
    let mut s = settings(vec![forum.route("forum")]).with_discovery(registry.url());
    s.edge_auth = true;
    let gw = Gateway::start(s).await;
    eventually("old review discovered", async || gw.view.instances("review").len() == 1).await;

    let client = http();
    let token_from = async |addr: SocketAddr, name: &str| {
        let base = format!("http://{addr}/api/users-reviews");
        let user =
            serde_json::json!({"username": name, "password": "correct horse", "email": format!("{name}@example.com")});
        client.post(format!("{base}/users/register")).json(&user).send().await.unwrap();
        let login = serde_json::json!({"username": name, "password": "correct horse"});
        let body: Value =
            client.post(format!("{base}/users/login")).json(&login).send().await.unwrap().json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let old_token = token_from(old_addr, "old_key_user").await;
    let new_token = token_from(new_addr, "new_key_user").await;
    let write = async |token: &str| client.post(gw.url("/api/forums/whoami")).bearer_auth(token).send().await.unwrap();
    assert_eq!(write(&old_token).await.status(), 200, "keys fetched from the discovered instance");
    assert_eq!(write(&new_token).await.status(), 401, "the new key is not published by any known instance yet");

    // The rotated instance joins; the next unknown-kid token triggers a refetch (at most
    // every 5 s), after which it passes.
    let (keep_new, _n) = register(&registry.url(), "review", new_addr, Duration::from_secs(5));
    eventually("new review discovered", async || gw.view.instances("review").len() == 2).await;
    eventually("new key accepted after a refetch", async || write(&new_token).await.status() == 200).await;
    assert_eq!(write(&old_token).await.status(), 200, "old key still accepted (union of both sets)");

    keep_old.cancel();
    keep_new.cancel();
    stop_old.cancel();
    stop_new.cancel();
    forum.stop().await;
    registry.stop().await;
}

/// A review instance with a signing key (and users) of its own; stops with the token.
async fn own_review_instance() -> (tempfile::TempDir, std::net::SocketAddr, CancellationToken) {
    let dir = tempfile::tempdir().unwrap();
    let review =
        liner_review::build(liner_review::Settings::new(([127, 0, 0, 1], 0).into(), dir.path().into())).await.unwrap();
    let addr = review.addr();
    let stop = CancellationToken::new();
    tokio::spawn(review.run_until(stop.clone()));
    (dir, addr, stop)
}

/// A token signed by the review instance at `addr`, got from it directly.
async fn token_from(addr: std::net::SocketAddr, user: &str) -> String {
    let client = http();
    let base = format!("http://{addr}/api/users-reviews/users");
    let body =
        serde_json::json!({"username": user, "password": "correct horse", "email": format!("{user}@example.com")});
    assert_eq!(client.post(format!("{base}/register")).json(&body).send().await.unwrap().status(), 201);
    let login = serde_json::json!({"username": user, "password": "correct horse"});
    let res = client.post(format!("{base}/login")).json(&login).send().await.unwrap();
    res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signing_key_leaves_with_its_instance() {
    let (_dir_a, a, stop_a) = own_review_instance().await;
    let (_dir_b, b, stop_b) = own_review_instance().await;
    let forum = Upstream::start("forum").await;
    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 5).await;
    let (keep_a, _ra) = register(&registry.url(), "review", a, Duration::from_secs(5));
    let (keep_b, rb) = register(&registry.url(), "review", b, Duration::from_secs(5));
    let mut s = settings(vec![forum.route("forum")]).with_discovery(registry.url());
    s.edge_auth = true;
    let gw = Gateway::start(s).await;
    eventually("both review instances discovered", async || gw.view.instances("review").len() == 2).await;
    let (token_a, token_b) = (token_from(a, "ann").await, token_from(b, "ben").await);
    let client = http();
    let write = async |token: &str| {
        client.post(gw.url("/api/forums/whoami")).bearer_auth(token).send().await.unwrap().status().as_u16()
    };
    eventually("tokens of both instances pass the edge", async || {
        write(&token_a).await == 200 && write(&token_b).await == 200
    })
    .await;

    // b deregisters: the moment it is out of the pool its key no longer verifies, while
    // a's does (before, b's key stayed trusted until a refetch happened to run).
    keep_b.cancel();
    let _ = rb.await;
    eventually("b left the pool", async || gw.view.instances("review").len() == 1).await;
    assert_eq!(write(&token_b).await, 401, "a departed instance's key is dropped");
    assert_eq!(write(&token_a).await, 200);

    keep_a.cancel();
    stop_a.cancel();
    stop_b.cancel();
    forum.stop().await;
    registry.stop().await;
}

/// Behind a trusted proxy the client is the address it forwards; from anyone else the
/// header is ignored. Either way the upstream receives the address the limits used.
#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
    let up = Upstream::start("one").await;
    let get = async |gw: &Gateway, claimed: &str| {
        let res = http().get(gw.url("/api/forums/whoami")).header("x-forwarded-for", claimed).send().await.unwrap();
        let status = res.status().as_u16();
        let xff =
            if status == 200 { res.json::<Value>().await.unwrap()["xff"].as_str().map(str::to_owned) } else { None };
        (status, xff)
    };
    for trusted in [true, false] {
        let mut s = settings(vec![up.route("forum")]);
        s.rate_limit_ip = 1;
        s.rate_burst_ip = 2;
        if trusted {
            s.trusted_proxies = "127.0.0.0/8".parse().unwrap();
        }
        let gw = Gateway::start(s).await;
        let expected = if trusted { "203.0.113.1" } else { "127.0.0.1" };
        for _ in 0..2 {
            assert_eq!(get(&gw, "203.0.113.1").await, (200, Some(expected.to_owned())), "trusted: {trusted}");
        }
        assert_eq!(get(&gw, "203.0.113.1").await.0, 429, "trusted: {trusted}");
        // Another forwarded client has its own budget only when the proxy is trusted.
        let other = get(&gw, "203.0.113.2").await.0;
        assert_eq!(other, if trusted { 200 } else { 429 }, "trusted: {trusted}");
    }
    up.stop().await;
}
