//! TLS between the services: discovery, review, forum, catalogue and the gateway's
//! clients as separate `liner` processes, every internal listener on TLS with a
//! certificate of a CA the test makes (`TestCa`), the gateway's public listener plain.
//! A user signs up, logs in, reviews and chats through the gateway; the instances
//! registered as `https://`; a plain request to an internal listener gets no answer;
//! a process that trusts another CA reaches no one (not the registry, not an instance).
//!
//! Every child is started by `common/procs.rs`: it binds port 0 and says where in its
//! log (`listening … addr=`), so no port is picked, dropped and raced for.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/procs.rs"]
mod procs;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cluster::{User, expect_status, user, wait_joined, ws_connect};
use futures_util::{SinkExt, StreamExt};
use liner_discovery::client::{Credential, watch_service};
use liner_shared::throwaway::TestCa;
use liner_shared::tls::{ClientTls, PeerClient};
use procs::{DISCOVERY_TOKEN, Logs, Proc, start, wait_until};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_util::sync::CancellationToken;

/// The certificates of one test: a CA, one server certificate for `127.0.0.1` that every
/// listener presents, and a second CA that signed nothing here.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new("liner internal CA").expect("CA");
        let cert = ca.server_cert(&["127.0.0.1", "localhost"]).expect("server certificate");
        let other = TestCa::new("another CA").expect("CA");
        for (name, pem) in [
            ("ca.pem", ca.cert_pem()),
            ("cert.pem", &cert.cert_pem),
            ("key.pem", &cert.key_pem),
            ("other-ca.pem", other.cert_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().expect("utf-8 path").to_owned()
    }

    /// The flags of a listener that speaks TLS.
    fn listener(&self) -> Vec<String> {
        vec!["--tls-cert-file".into(), self.path("cert.pem"), "--tls-key-file".into(), self.path("key.pem")]
    }

    fn client(&self, ca: &str) -> ClientTls {
        ClientTls::from_ca_file(Path::new(&self.path(ca))).expect("CA file")
    }
}

/// The instances of `service` the registry lists, asked over TLS trusting `tls`.
async fn registered(registry: &str, tls: &ClientTls, service: &str) -> Vec<String> {
    let credential = Credential::new(Some(DISCOVERY_TOKEN)).expect("credential");
    let stop = CancellationToken::new();
    let mut watched = watch_service(registry, credential, tls, service, stop.clone()).expect("watch");
    let set = tokio::time::timeout(Duration::from_secs(10), watched.wait_for(|set| set.is_some())).await;
    let set = set.expect("the registry answers over TLS").expect("watching").clone().expect("a set");
    stop.cancel();
    let mut addresses: Vec<String> = set.iter().map(|i| i.address.clone()).collect();
    addresses.sort();
    addresses
}

/// The services of one cluster, all on TLS.
struct Cluster {
    pki: Pki,
    logs: Logs,
    registry: String,
    discovery: Proc,
    review: Proc,
    forum: Proc,
    catalog: Proc,
    gateway: Proc,
}

impl Cluster {
    async fn start() -> Self {
        let pki = Pki::new();
        let logs = Logs::new();
        let discovery = start(&logs, "discovery", &[&["discovery".to_owned()][..], &pki.listener()].concat()).await;
        let registry = format!("https://{}", discovery.addr);
        let review = start(&logs, "review", &service_args(&pki, &logs, &registry, "review", "ca.pem")).await;
        let forum = start(&logs, "forum", &service_args(&pki, &logs, &registry, "forum", "ca.pem")).await;
        let catalog = start(&logs, "catalog", &service_args(&pki, &logs, &registry, "catalog", "ca.pem")).await;
        let gateway_args = [
            "gateway",
            "--discovery",
            &registry,
            "--tls-ca-file",
            &pki.path("ca.pem"),
            "--health-interval-ms",
            "200",
            "--rate-limit-ip",
            "0",
            "--rate-limit-user",
            "0",
        ];
        let gateway = start(&logs, "gateway", &gateway_args.map(str::to_owned)).await;
        Self { pki, logs, registry, discovery, review, forum, catalog, gateway }
    }

    fn gw(&self) -> String {
        format!("http://{}", self.gateway.addr)
    }
}

/// `SERVICE --discovery REGISTRY --tls-ca-file CA` with a TLS listener, on SQLite in a
/// data dir of its own.
fn service_args(pki: &Pki, logs: &Logs, registry: &str, service: &str, ca: &str) -> Vec<String> {
    let data = logs.dir.path().join(format!("{service}-{ca}-data"));
    let data = data.to_str().expect("utf-8 path").to_owned();
    let args = [service, "--discovery", registry, "--tls-ca-file", &pki.path(ca), "--data-dir", &data];
    [args.map(str::to_owned).to_vec(), pki.listener()].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_talk_tls_to_each_other_and_the_gateway_still_serves_plain() {
    let c = Cluster::start().await;
    let trusted = c.pki.client("ca.pem");

    // Each instance registered itself as https://, asked over TLS.
    for (name, p) in [("review", &c.review), ("forum", &c.forum), ("catalog", &c.catalog)] {
        let want = vec![format!("https://{}", p.addr)];
        wait_until(&format!("{name} registered as https://"), Duration::from_secs(30), || async {
            registered(&c.registry, &trusted, name).await == want
        })
        .await;
    }

    // Through the gateway (plain, public): every hop behind it is TLS.
    let http = cluster::http_client();
    let gw = c.gw();
    wait_until("the gateway routes to all three services over TLS", Duration::from_secs(30), || async {
        let mut all = true;
        for path in ["/api/users-reviews/charts", "/api/forums/rooms", "/api/catalog/genres"] {
            all &= http.get(format!("{gw}{path}")).send().await.is_ok_and(|r| r.status() == 200);
        }
        all
    })
    .await;
    let User { id, token } = user(&http, &gw, "tlsuser").await;
    let review = http
        .post(format!("{gw}/api/users-reviews/reviews"))
        .bearer_auth(&token)
        .json(&json!({"albumId": "mb:tls", "rating": 4.5, "reviewText": "encrypted all the way"}))
        .send()
        .await;
    let review = expect_status(review, 201).await.expect("review created (edge auth: keys fetched over TLS)");
    let read = http.get(format!("{gw}/api/users-reviews/reviews/{}", review["id"].as_str().expect("id"))).send().await;
    assert_eq!(expect_status(read, 200).await.expect("read back")["reviewText"], "encrypted all the way");
    let room = http
        .post(format!("{gw}/api/forums/rooms"))
        .bearer_auth(&token)
        .json(&json!({"roomType": "album", "albumId": "mb:tls", "title": "TLS room"}))
        .send()
        .await;
    let room = expect_status(room, 201).await.expect("room (the forum verifies with keys fetched over TLS)");
    let room = room["id"].as_str().expect("room id").to_owned();
    let mut ws = ws_connect(&c.gateway.addr, &token, &room, 0).await.expect("WebSocket through the tunnel over TLS");
    wait_joined(&mut ws, &id).await;
    let frame = json!({"roomId": room, "message": "hello over TLS", "clientMsgId": "m1"});
    ws.send(Message::text(frame.to_string())).await.expect("sent");
    let message = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s");
        if let Some(Ok(Message::Text(t))) = next {
            let v: Value = serde_json::from_str(t.as_str()).expect("JSON frame");
            if v["type"] == "message" {
                break v;
            }
        }
    };
    assert_eq!(message["message"], "hello over TLS");
    assert_eq!(message["username"], "tlsuser");

    // The internal listeners answer TLS only: over TLS with the CA, yes; in plain text, nothing.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    for p in [&c.discovery, &c.review, &c.forum, &c.catalog] {
        let over_tls = PeerClient::new(&trusted).get(&format!("https://{}/healthz", p.addr), SECS_5, 4096).await;
        assert_eq!(over_tls.expect("an answer over TLS").0, 200, "{}", p.addr);
        let res = plain.get(format!("http://{}/healthz", p.addr)).send().await;
        assert!(res.is_err(), "a plain request to the TLS listener {} was answered: {res:?}", p.addr);
    }
    let probed = probe(&format!("https://{}/readyz", c.review.addr), &c.pki.path("ca.pem"));
    assert!(probed.status.success(), "liner probe over TLS: {}", String::from_utf8_lossy(&probed.stderr));
}

/// `liner probe URL --tls-ca-file CA`, the containers' health check.
fn probe(url: &str, ca: &str) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liner"));
    cmd.env_remove("LINER_TLS_CA_FILE").env("LINER_LOG", "off").args(["probe", url, "--tls-ca-file", ca]);
    cmd.stdin(Stdio::null()).output().expect("liner probe runs")
}

const SECS_5: Duration = Duration::from_secs(5);

/// Trusting a CA that did not sign the services' certificates gets nowhere: a client
/// is refused by every listener with a certificate error, and a forum started with that
/// CA cannot register (the registry keeps listing only the forum that trusts the right one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_does_not_trust_the_ca_reaches_no_one() {
    let c = Cluster::start().await;
    let untrusting = PeerClient::new(&c.pki.client("other-ca.pem"));
    for p in [&c.discovery, &c.review, &c.forum, &c.catalog] {
        let refused = untrusting.get(&format!("https://{}/healthz", p.addr), SECS_5, 4096).await;
        let why = format!("{:#}", refused.expect_err("a listener whose certificate the client's CA did not sign"));
        assert!(why.contains("certificate"), "not refused for its certificate: {why}");
    }
    let probed = probe(&format!("https://{}/readyz", c.review.addr), &c.pki.path("other-ca.pem"));
    let err = String::from_utf8_lossy(&probed.stderr);
    assert!(!probed.status.success() && err.lines().count() == 1, "liner probe trusting another CA: {err}");
    assert!(err.starts_with("liner: ") && err.contains("certificate"), "{err}");

    let trusted = c.pki.client("ca.pem");
    let want = vec![format!("https://{}", c.forum.addr)];
    wait_until("the first forum registered", Duration::from_secs(30), || async {
        registered(&c.registry, &trusted, "forum").await == want
    })
    .await;
    let args = service_args(&c.pki, &c.logs, &c.registry, "forum", "other-ca.pem");
    let mut stranger = start(&c.logs, "forum-other-ca", &args).await;
    stranger.logged(&["discovery unreachable", "invalid peer certificate"], Duration::from_secs(30)).await;
    assert_eq!(registered(&c.registry, &trusted, "forum").await, want, "the forum trusting another CA registered");
}
