//! Fan-out under load, replay with `since`, idempotent retries: on the embedded mode
//! (SQLite, in-process fan-out, one replica) and on PostgreSQL + Redis with two replicas.
//!
//! Every check is about correctness (exactly once, in seq order, no gap), never speed;
//! the load test prints what it measured.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::Message;

const ROOMS: usize = 3;
const MEMBERS: usize = 20;
const SENDERS: usize = 5;
const PER_SENDER: usize = 100;

/// How the senders send.
#[derive(Debug, Clone, Copy)]
struct Load {
    per_sender: usize,
    /// None: all at once; Some: one message per interval per sender.
    pace: Option<std::time::Duration>,
}

struct Outcome {
    room: usize,
    seqs: Vec<i64>,
    texts: Vec<String>,
    acks: Vec<(String, i64)>,
    latencies_us: Vec<u64>,
}

/// 3 rooms × 20 members spread over the replicas; in each room 5 members send 100
/// messages each, all at once. Every member gets every message of its room exactly
/// once, in seq order, without a gap; every sender gets one ack per message.
async fn fanout_exactly_once(mode: Mode) {
    fanout_run(mode, Load { per_sender: PER_SENDER, pace: None }).await;
}

async fn fanout_run(mode: Mode, load: Load) {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, mode, |s| {
        s.rate_per_sec = 100_000;
        s.rate_burst = 100_000;
    })
    .await;
    let users = register_many(&review, "member", MEMBERS).await;
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let room = create_room(&forums[0], &users[0], json!({"roomType": "genre", "genreId": format!("g{r}")})).await;
        rooms.push(room["id"].as_str().unwrap().to_owned());
    }
    let mut conns = Vec::new();
    for (ri, room) in rooms.iter().enumerate() {
        for (ui, user) in users.iter().enumerate() {
            let forum = &forums[(ri * MEMBERS + ui) % forums.len()];
            let mut ws = connect(forum, user, room, None).await;
            wait_joined(&mut ws, user).await;
            conns.push((ri, ui, ws));
        }
    }
    let started = Instant::now();
    let expected = SENDERS * load.per_sender;
    let mut tasks = Vec::new();
    for (ri, ui, ws) in conns {
        let room_id = rooms[ri].clone();
        tasks.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let sender = (ui < SENDERS).then(|| {
                let room_id = room_id.clone();
                tokio::spawn(async move {
                    let mut tick = load.pace.map(tokio::time::interval);
                    for k in 0..load.per_sender {
                        if let Some(tick) = &mut tick {
                            tick.tick().await;
                        }
                        let sent_us = started.elapsed().as_micros();
                        let text = format!("r{ri} u{ui} k{k} t{sent_us}");
                        let frame = chat(&room_id, &text, Some(&format!("{ri}-{ui}-{k}")));
                        sink.send(Message::text(frame.to_string())).await.expect("send");
                    }
                    sink
                })
            });
            let want_acks = if sender.is_some() { load.per_sender } else { 0 };
            let mut out = Outcome { room: ri, seqs: vec![], texts: vec![], acks: vec![], latencies_us: vec![] };
            while out.seqs.len() < expected || out.acks.len() < want_acks {
                let msg = tokio::time::timeout(FRAME_WAIT, stream.next()).await.expect("frame within the wait");
                let Some(Ok(Message::Text(t))) = msg else {
                    match msg {
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        other => panic!("member {ui} of room {ri}: stream ended: {other:?}"),
                    }
                };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str().unwrap() {
                    "message" => {
                        let text = v["message"].as_str().unwrap().to_owned();
                        if let Some(t) = text.rsplit(" t").next().and_then(|t| t.parse::<u128>().ok()) {
                            out.latencies_us.push((started.elapsed().as_micros().saturating_sub(t)) as u64);
                        }
                        out.seqs.push(v["seq"].as_i64().unwrap());
                        out.texts.push(text);
                    }
                    "ack" => out.acks.push((v["clientMsgId"].as_str().unwrap().to_owned(), v["seq"].as_i64().unwrap())),
                    "presence" => {}
                    other => panic!("unexpected frame {other}: {v}"),
                }
            }
            if let Some(sender) = sender {
                let _sink = sender.await.unwrap();
            }
            out
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("member task"));
    }
    let elapsed = started.elapsed();

    let want_seqs: Vec<i64> = (1..=expected as i64).collect();
    let mut latencies = Vec::new();
    for o in &outcomes {
        assert_eq!(o.seqs, want_seqs, "room {}: every message once, in order, no gap", o.room);
        let got: BTreeSet<String> = o.texts.iter().map(|t| t.rsplit_once(" t").unwrap().0.to_owned()).collect();
        assert_eq!(got.len(), expected);
        assert!(got.iter().all(|t| t.starts_with(&format!("r{} ", o.room))), "only this room's messages");
        if !o.acks.is_empty() {
            assert_eq!(o.acks.len(), load.per_sender);
            let ids: BTreeSet<&String> = o.acks.iter().map(|(c, _)| c).collect();
            assert_eq!(ids.len(), load.per_sender, "one ack per message");
        }
        latencies.extend_from_slice(&o.latencies_us);
    }
    for (ri, room) in rooms.iter().enumerate() {
        let stored = full_history(&forums[ri % forums.len()], room).await;
        let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, want_seqs, "history of room {ri}");
    }
    latencies.sort_unstable();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)] as f64 / 1000.0;
    let delivered = outcomes.iter().map(|o| o.seqs.len()).sum::<usize>();
    println!(
        "fan-out {mode:?} {load:?}: {} messages stored, {delivered} delivered in {:.2}s = {:.0} deliveries/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ROOMS * expected,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(1.0),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exactly_once_in_order_sqlite() {
    fanout_exactly_once(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exactly_once_in_order_two_replicas_postgres_redis() {
    fanout_exactly_once(Mode::Replicated).await;
}

/// Latency at a steady rate (15 senders × 20 messages/s = 300 messages/s stored,
/// 6,000 deliveries/s), for the figures in the README. Not part of the normal run:
/// `cargo test --release -p liner-forum --test fanout -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run in release"]
async fn measure_paced_fanout_latency() {
    let load = Load { per_sender: 200, pace: Some(std::time::Duration::from_millis(50)) };
    fanout_run(Mode::Embedded, load).await;
    fanout_run(Mode::Replicated, load).await;
}

/// A member reconnects with `since` while a burst is running (on the other replica
/// when there are two): it sees every message after `since` once, in order.
async fn reconnect_with_since_during_burst(mode: Mode) {
    const TOTAL: usize = 300;
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, mode, |s| {
        s.rate_per_sec = 100_000;
        s.rate_burst = 100_000;
    })
    .await;
    let sender = register(&review, "sender").await;
    let reader = register(&review, "reader").await;
    let room = create_room(&forums[0], &sender, json!({"roomType": "album", "albumId": "burst"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();

    let mut first = connect(&forums[0], &reader, &room_id, None).await;
    wait_joined(&mut first, &reader).await;
    let mut tx = connect(&forums[0], &sender, &room_id, None).await;
    wait_joined(&mut tx, &sender).await;
    let burst = {
        let room_id = room_id.clone();
        tokio::spawn(async move {
            let mut acked = 0;
            for k in 0..TOTAL {
                send_json(&mut tx, chat(&room_id, &format!("m{k}"), Some(&format!("c{k}")))).await;
            }
            while acked < TOTAL {
                if next_json(&mut tx).await["type"] == "ack" {
                    acked += 1;
                }
            }
            tx
        })
    };
    // Read part of the burst, drop the connection, reconnect with since= mid-burst.
    let mut seen: Vec<i64> = Vec::new();
    while seen.len() < 40 {
        let v = next_json(&mut first).await;
        if v["type"] == "message" {
            seen.push(v["seq"].as_i64().unwrap());
        }
    }
    drop(first);
    let since = *seen.last().unwrap();
    let mut second = connect(forums.last().unwrap(), &reader, &room_id, Some(since)).await;
    while *seen.last().unwrap() < TOTAL as i64 {
        let v = next_json(&mut second).await;
        if v["type"] == "message" {
            seen.push(v["seq"].as_i64().unwrap());
        }
    }
    let _tx = burst.await.unwrap();
    let want: Vec<i64> = (1..=TOTAL as i64).collect();
    assert_eq!(seen, want, "no gap, no duplicate across the reconnect");

    // A late joiner replays everything from 0, then goes live.
    let mut late = connect(&forums[0], &reader, &room_id, Some(0)).await;
    let mut replayed = Vec::new();
    while replayed.len() < TOTAL {
        let v = next_json(&mut late).await;
        if v["type"] == "message" {
            replayed.push(v["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(replayed, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_since_during_burst_sqlite() {
    reconnect_with_since_during_burst(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_since_during_burst_two_replicas() {
    reconnect_with_since_during_burst(Mode::Replicated).await;
}

/// A retried send with the same clientMsgId gets the same ack and is stored once, also
/// when the retry goes to another replica over a new connection.
async fn idempotent_retry(mode: Mode) {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, mode, |_| {}).await;
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "album", "albumId": "retry"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut watcher = connect(forums.last().unwrap(), &bob, &room_id, None).await;
    wait_joined(&mut watcher, &bob).await;

    let mut ws = connect(&forums[0], &alice, &room_id, None).await;
    send_json(&mut ws, chat(&room_id, "hello", Some("once"))).await;
    let ack1 = next_of_type(&mut ws, "ack").await;
    send_json(&mut ws, chat(&room_id, "hello", Some("once"))).await;
    let ack2 = next_of_type(&mut ws, "ack").await;
    assert_eq!(ack1, ack2);
    assert_eq!(ack1["clientMsgId"], "once");
    assert_eq!(ack1["seq"], 1);
    drop(ws);
    let mut ws = connect(forums.last().unwrap(), &alice, &room_id, None).await;
    send_json(&mut ws, chat(&room_id, "hello", Some("once"))).await;
    assert_eq!(next_of_type(&mut ws, "ack").await, ack1);
    send_json(&mut ws, chat(&room_id, "next", Some("twice"))).await;
    assert_eq!(next_of_type(&mut ws, "ack").await["seq"], 2);

    // The watcher saw each message once.
    let m1 = next_of_type(&mut watcher, "message").await;
    assert_eq!((m1["seq"].as_i64(), m1["message"].as_str()), (Some(1), Some("hello")));
    assert_eq!(m1["id"], ack1["id"]);
    assert_eq!(m1["username"], "alice");
    assert_eq!(m1["userId"], alice.id.as_str());
    assert_eq!(m1["roomId"], room_id.as_str());
    assert!(m1["sentAt"].as_str().unwrap().ends_with('Z'));
    let m2 = next_of_type(&mut watcher, "message").await;
    assert_eq!(m2["seq"], 2);
    let stored = full_history(&forums[0], &room_id).await;
    assert_eq!(stored.len(), 2);
    // Same client id from another user is a different message.
    let mut bob_ws = connect(&forums[0], &bob, &room_id, None).await;
    send_json(&mut bob_ws, chat(&room_id, "mine", Some("once"))).await;
    assert_eq!(next_of_type(&mut bob_ws, "ack").await["seq"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_sqlite() {
    idempotent_retry(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_two_replicas() {
    idempotent_retry(Mode::Replicated).await;
}

/// Presence frames and `online` counts across replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_online_across_replicas() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Replicated, |_| {}).await;
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "genre", "genreId": "ambient"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();

    let mut a = connect(&forums[0], &alice, &room_id, None).await;
    let joined = wait_joined(&mut a, &alice).await;
    assert_eq!(joined["joined"]["username"], "alice");
    assert_eq!(joined["online"], 1);
    let mut b = connect(&forums[1], &bob, &room_id, None).await;
    assert_eq!(wait_joined(&mut b, &bob).await["online"], 2);
    let seen_by_a = wait_joined(&mut a, &bob).await;
    assert_eq!(seen_by_a["online"], 2);

    let online_on = |forum: &Forum| {
        let url = forum.api(&format!("/rooms/{room_id}"));
        async move { reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["online"].as_u64().unwrap() }
    };
    assert_eq!(online_on(&forums[0]).await, 2);
    assert_eq!(online_on(&forums[1]).await, 2);
    let listed: Vec<Value> = reqwest::get(forums[1].api("/rooms")).await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["online"], 2);

    drop(b);
    let left = next_of_type(&mut a, "presence").await;
    assert_eq!(left["left"]["userId"], bob.id.as_str());
    assert_eq!(left["online"], 1);
    assert_eq!(online_on(&forums[0]).await, 1);
}

/// Closing a room: members on both replicas get `closed` and close code 4410; new
/// connects get 410; history stays readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_room_reaches_every_replica() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Replicated, |_| {}).await;
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "genre", "genreId": "noise"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut a = connect(&forums[0], &alice, &room_id, None).await;
    wait_joined(&mut a, &alice).await;
    let mut b = connect(&forums[1], &bob, &room_id, None).await;
    wait_joined(&mut b, &bob).await;
    send_json(&mut a, chat(&room_id, "last words", None)).await;
    next_of_type(&mut a, "ack").await;

    let res = reqwest::Client::new()
        .delete(forums[1].api(&format!("/rooms/{room_id}")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for ws in [&mut a, &mut b] {
        let mut saw_message = false;
        loop {
            match next_frame(ws).await {
                Frame::Json(v) if v["type"] == "message" => saw_message = true,
                Frame::Json(v) if v["type"] == "closed" => break,
                Frame::Json(_) => {}
                other => panic!("expected closed, got {other:?}"),
            }
        }
        assert!(saw_message, "messages stored before the close arrive before it");
        match next_frame(ws).await {
            Frame::Close(Some((code, _))) => assert_eq!(code, 4410),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    let url = connect_url(&forums[1], &room_id, None);
    let refused = try_connect(&url, &[("authorization", format!("Bearer {}", bob.token))], None).await;
    let (status, body) = refused.expect_err("refused");
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "room_closed");
    assert_eq!(history(&forums[0], &room_id, "").await.len(), 1);
}

/// The history endpoint pages backwards with `before`, newest last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_backwards() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Embedded, |s| s.rate_burst = 100).await;
    let alice = register(&review, "alice").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "album", "albumId": "pages"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&forums[0], &alice, &room_id, None).await;
    for k in 1..=30 {
        send_json(&mut ws, chat(&room_id, &format!("n{k}"), None)).await;
    }
    let mut acks = HashMap::new();
    while acks.len() < 30 {
        let v = next_of_type(&mut ws, "ack").await;
        acks.insert(v["seq"].as_i64().unwrap(), v);
    }
    let newest = history(&forums[0], &room_id, "?limit=10").await;
    let seqs: Vec<i64> = newest.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (21..=30).collect::<Vec<_>>());
    assert_eq!(newest[9]["message"], "n30");
    assert_eq!(newest[9]["username"], "alice");
    let older = history(&forums[0], &room_id, "?limit=10&before=21").await;
    assert_eq!(older[0]["seq"], 11);
    assert_eq!(history(&forums[0], &room_id, "").await.len(), 30);
}

/// A client that sends right after the handshake (before its `joined` frame) still
/// receives its own message, and a second member receives it too.
async fn first_message_right_after_connect(mode: Mode) {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, mode, |s| s.rate_burst = 100).await;
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let room = create_room(&forums[0], &alice, json!({"roomType": "album", "albumId": "first"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut watcher = connect(forums.last().unwrap(), &bob, &room_id, None).await;
    wait_joined(&mut watcher, &bob).await;
    for k in 1..=20 {
        let mut ws = connect(&forums[k % forums.len()], &alice, &room_id, None).await;
        send_json(&mut ws, chat(&room_id, &format!("hello {k}"), None)).await;
        let own = next_of_type(&mut ws, "message").await;
        assert_eq!(own["message"], format!("hello {k}"));
        assert_eq!(next_of_type(&mut watcher, "message").await["seq"], k as i64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_right_after_connect_sqlite() {
    first_message_right_after_connect(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_right_after_connect_two_replicas() {
    first_message_right_after_connect(Mode::Replicated).await;
}
