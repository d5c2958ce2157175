//! Two `liner forum` processes share PostgreSQL and Redis; one is killed with SIGKILL
//! in the middle of a burst. Members on the surviving replica still receive every
//! stored message exactly once, in seq order, and every acknowledged message is in the
//! history (the survivor notices messages its dead peer stored but never published by
//! comparing the database's last seq with what it delivered), and the dead replica's
//! members drop out of the `online` count when its presence entries expire.
//!
//! The forums are `common/procs.rs` processes: on port 0, their addresses read from
//! their own logs, their logs' tails printed if the test fails.

#[path = "common/procs.rs"]
mod procs;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use procs::{Logs, Proc, ready, start};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const FRAME_WAIT: Duration = Duration::from_secs(30);
const PER_SENDER: usize = 300;

/// A `liner forum` on `db` and the shared Redis, ready; returns it and its base URL.
async fn spawn_forum(logs: &Logs, name: &str, db: &str, review: &str, data_dir: &std::path::Path) -> (Proc, String) {
    let args = [
        "forum",
        "--database-url",
        db,
        "--redis-url",
        &liner_shared::testkit::redis_url(),
        "--data-dir",
        data_dir.to_str().expect("utf-8 path"),
        "--jwks-url",
        &format!("{review}/api/users-reviews/.well-known/jwks.json"),
        "--review-url",
        review,
        "--rate-per-sec",
        "100000",
        "--rate-burst",
        "100000",
    ];
    let proc = start(logs, name, &args.map(str::to_owned)).await;
    ready(&reqwest::Client::new(), &proc).await;
    let base = proc.url();
    (proc, base)
}

struct User {
    id: String,
    token: String,
}

async fn user(review: &str, name: &str) -> User {
    let http = reqwest::Client::new();
    let body = json!({"username": name, "password": "password123", "email": format!("{name}@example.com")});
    let res =
        http.post(format!("{review}/api/users-reviews/users/register")).json(&body).send().await.expect("register");
    assert_eq!(res.status().as_u16(), 201);
    let res = http
        .post(format!("{review}/api/users-reviews/users/login"))
        .json(&json!({"username": name, "password": "password123"}))
        .send()
        .await
        .expect("login");
    let v: Value = res.json().await.expect("login body");
    User { id: v["user"]["id"].as_str().expect("id").into(), token: v["token"].as_str().expect("token").into() }
}

async fn connect(base: &str, user: &User, room: &str) -> Ws {
    let url = format!("{}/api/forums/connect?roomId={room}", base.replace("http://", "ws://"));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert("authorization", format!("Bearer {}", user.token).parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    // Wait for our own join: from then on every stored message reaches us.
    loop {
        let v = next_json(&mut ws).await.expect("joined");
        if v["type"] == "presence" && v["joined"]["userId"] == user.id.as_str() {
            return ws;
        }
    }
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(FRAME_WAIT, ws.next()).await.expect("a frame within the wait") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).ok(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return None,
        }
    }
}

/// Sends `PER_SENDER` messages at once; returns the acks it got (clientMsgId → seq)
/// before the burst ended or its replica died.
fn burst(
    ws: Ws,
    room: String,
    tag: &'static str,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<HashMap<String, i64>> {
    tokio::spawn(async move {
        let (mut sink, mut stream) = ws.split();
        let room_id = room.clone();
        let writer = tokio::spawn(async move {
            for k in 0..PER_SENDER {
                let frame =
                    json!({"roomId": room_id, "message": format!("{tag} {k}"), "clientMsgId": format!("{tag}-{k}")});
                if sink.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
            }
        });
        let mut acks = HashMap::new();
        while acks.len() < PER_SENDER {
            let frame = match tokio::time::timeout(FRAME_WAIT, stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => t,
                Ok(Some(Ok(_))) => continue,
                _ => break,
            };
            let v: Value = serde_json::from_str(frame.as_str()).expect("json");
            if v["type"] == "ack" {
                acks.insert(v["clientMsgId"].as_str().expect("cid").to_owned(), v["seq"].as_i64().expect("seq"));
                acked.fetch_add(1, Ordering::Relaxed);
            }
        }
        writer.abort();
        acks
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forum_replica_killed_mid_burst_loses_nothing() {
    let review_dir = tempfile::tempdir().expect("tempdir");
    let mut review_settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), review_dir.path().into());
    review_settings.registrations_per_address = 0;
    let review = liner_review::build(review_settings).await.expect("review starts");
    let review_base = format!("http://{}", review.addr());
    let stop = CancellationToken::new();
    tokio::spawn(review.run_until(stop.clone()));

    let db = liner_shared::testkit::fresh_pg_database().await;
    let logs = Logs::new();
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let (mut proc_a, a) = spawn_forum(&logs, "forum-a", &db, &review_base, dir_a.path()).await;
    let (_proc_b, b) = spawn_forum(&logs, "forum-b", &db, &review_base, dir_b.path()).await;

    let mut users = Vec::new();
    for i in 0..5 {
        users.push(user(&review_base, &format!("k9user{i}")).await);
    }
    let res = reqwest::Client::new()
        .post(format!("{b}/api/forums/rooms"))
        .bearer_auth(&users[0].token)
        .json(&json!({"roomType": "genre", "genreId": "kill9"}))
        .send()
        .await
        .expect("create room");
    assert_eq!(res.status().as_u16(), 201);
    let room = res.json::<Value>().await.expect("room")["id"].as_str().expect("id").to_owned();

    // Readers on B; senders on A (to be killed) and on B.
    let mut readers = vec![connect(&b, &users[3], &room).await, connect(&b, &users[4], &room).await];
    let on_a = Arc::new(AtomicUsize::new(0));
    let on_b = Arc::new(AtomicUsize::new(0));
    let senders = vec![
        burst(connect(&a, &users[0], &room).await, room.clone(), "a0", on_a.clone()),
        burst(connect(&a, &users[1], &room).await, room.clone(), "a1", on_a.clone()),
        burst(connect(&b, &users[2], &room).await, room.clone(), "b2", on_b.clone()),
    ];
    // Mid-burst: some of A's messages acknowledged, not all.
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_a.load(Ordering::Relaxed) < 100 {
        assert!(Instant::now() < deadline, "burst on A did not progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proc_a.kill9();

    let mut acked: HashMap<String, i64> = HashMap::new();
    for s in senders {
        acked.extend(s.await.expect("sender"));
    }
    assert!(acked.keys().filter(|c| c.starts_with("b2-")).count() == PER_SENDER, "B's sender finished");
    assert!(acked.len() < 3 * PER_SENDER, "A died mid-burst");

    // History: gap-free, and holds every acknowledged message under its acked seq.
    let mut history: Vec<Value> = Vec::new();
    let mut before = i64::MAX;
    loop {
        let page: Vec<Value> = reqwest::get(format!("{b}/api/forums/rooms/{room}/messages?limit=200&before={before}"))
            .await
            .expect("history")
            .json()
            .await
            .expect("history body");
        let Some(first) = page.first() else { break };
        before = first["seq"].as_i64().expect("seq");
        history.splice(0..0, page);
    }
    let last = history.len() as i64;
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "stored seqs are gap-free");
    let by_text: HashMap<String, i64> = history
        .iter()
        .map(|m| (m["message"].as_str().expect("text").replace(' ', "-"), m["seq"].as_i64().expect("seq")))
        .collect();
    for (cid, seq) in &acked {
        assert_eq!(by_text.get(cid), Some(seq), "acked message {cid} is stored under its acked seq");
    }

    // Members on the surviving replica receive all of it, once, in order.
    for ws in &mut readers {
        let mut got = Vec::new();
        while got.len() < last as usize {
            let v = next_json(ws).await.expect("reader stays connected");
            if v["type"] == "message" {
                got.push(v["seq"].as_i64().expect("seq"));
            }
        }
        assert_eq!(got, seqs, "every stored message once, in order, on the surviving replica");
    }
    println!("kill -9 mid-burst: {} acked, {last} stored, all delivered on the survivor", acked.len());

    // The dead replica's members stop counting once its presence entries expire (15 s):
    // online drops to the two readers still connected to B.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let room: Value =
            reqwest::get(format!("{b}/api/forums/rooms/{room}")).await.expect("room").json().await.expect("json");
        if room["online"] == 2 {
            break;
        }
        assert!(room["online"].as_u64().expect("online") > 2, "online never drops below the live members: {room}");
        assert!(Instant::now() < deadline, "the dead replica's members never expired: {room}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.cancel();
}
