//! Losing Redis for a while loses nothing: a replica cut off from Redis keeps its
//! members up to date from the database, and resumes live delivery when Redis returns.

mod common;

use common::*;
use serde_json::json;

async fn read_up_to(ws: &mut Ws, seen: &mut Vec<i64>, upto: i64) {
    while seen.last().copied().unwrap_or(0) < upto {
        let v = next_json(ws).await;
        if v["type"] == "message" {
            seen.push(v["seq"].as_i64().unwrap());
        }
    }
}

async fn send_acked(ws: &mut Ws, room_id: &str, from: usize, to: usize) {
    for k in from..to {
        send_json(ws, chat(room_id, &format!("m{k}"), Some(&format!("c{k}")))).await;
    }
    let mut acks = 0;
    while acks < to - from {
        if next_json(ws).await["type"] == "ack" {
            acks += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_loses_redis_misses_nothing() {
    let review = start_review().await;
    let backing = backing(Mode::Replicated).await;
    let redis = backing.redis_url.clone().unwrap();
    let proxy = FlakyProxy::start(redis_host_port(&redis)).await;
    let tweak = |s: &mut liner_forum::Settings| {
        s.rate_per_sec = 100_000;
        s.rate_burst = 100_000;
    };
    // A reaches Redis through the proxy, B directly.
    let cut_off =
        Backing { database_url: backing.database_url.clone(), redis_url: Some(format!("redis://{}", proxy.addr)) };
    let a = start_forum(&review, &cut_off, tweak).await;
    let b = start_forum(&review, &backing, tweak).await;
    let reader = register(&review, "reader").await;
    let sender = register(&review, "sender").await;
    let room = create_room(&b, &sender, json!({"roomType": "genre", "genreId": "outage"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut rx = connect(&a, &reader, &room_id, None).await;
    wait_joined(&mut rx, &reader).await;
    let mut tx = connect(&b, &sender, &room_id, None).await;
    wait_joined(&mut tx, &sender).await;

    let mut seen = Vec::new();
    send_acked(&mut tx, &room_id, 0, 20).await;
    read_up_to(&mut rx, &mut seen, 20).await;

    proxy.cut();
    // Still ready (the gateway keeps it in rotation): the database is what it serves from.
    let ready = reqwest::get(format!("http://{}/readyz", a.addr)).await.expect("readyz");
    assert_eq!(ready.status(), 200, "a Redis outage does not make the replica unready");
    send_acked(&mut tx, &room_id, 20, 70).await;
    read_up_to(&mut rx, &mut seen, 70).await;

    proxy.restore();
    send_acked(&mut tx, &room_id, 70, 100).await;
    read_up_to(&mut rx, &mut seen, 100).await;
    assert_eq!(seen, (1..=100).collect::<Vec<_>>(), "every message once, in order, across the outage");
}
