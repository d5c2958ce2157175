//! Bad frames, bad tokens, foreign origins, floods and slow readers (embedded mode).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::Message;

struct Setup {
    review: Review,
    forum: Forum,
    alice: User,
    bob: User,
    room_id: String,
}

async fn setup(tweak: impl Fn(&mut liner_forum::Settings)) -> Setup {
    let review = start_review().await;
    let (_backing, mut forums) = start_forums(&review, Mode::Embedded, tweak).await;
    let forum = forums.remove(0);
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;
    let room = create_room(&forum, &alice, json!({"roomType": "album", "albumId": "abuse"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    Setup { review, forum, alice, bob, room_id }
}

async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let v = next_of_type(ws, "error").await;
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    v
}

/// Every bad frame gets an `error` frame with a stable code; the connection stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let s = setup(|_| {}).await;
    let room = s.room_id.as_str();
    let mut ws = connect(&s.forum, &s.alice, room, None).await;
    wait_joined(&mut ws, &s.alice).await;

    ws.send(Message::text("this is not json")).await.unwrap();
    expect_error(&mut ws, "bad_frame").await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut ws, "bad_frame").await;
    send_json(&mut ws, json!(["an", "array"])).await;
    expect_error(&mut ws, "bad_frame").await;
    send_json(&mut ws, json!({"roomId": room})).await;
    expect_error(&mut ws, "missing_field").await;
    send_json(&mut ws, json!({"message": "no room"})).await;
    expect_error(&mut ws, "missing_field").await;
    send_json(&mut ws, json!({"roomId": room, "message": 42})).await;
    expect_error(&mut ws, "bad_frame").await;
    send_json(&mut ws, json!({"roomId": "another-room", "message": "hi"})).await;
    expect_error(&mut ws, "wrong_room").await;
    send_json(&mut ws, json!({"roomId": room, "userId": s.bob.id, "message": "hi"})).await;
    expect_error(&mut ws, "wrong_user").await;
    let too_long = "x".repeat(2001);
    send_json(&mut ws, json!({"roomId": room, "message": too_long, "clientMsgId": "long"})).await;
    let e = expect_error(&mut ws, "message_too_long").await;
    assert_eq!(e["clientMsgId"], "long");
    send_json(&mut ws, json!({"roomId": room, "message": "   "})).await;
    expect_error(&mut ws, "invalid_message").await;

    // Still open: exactly 2,000 characters (multi-byte) are accepted.
    let max = "é".repeat(2000);
    send_json(&mut ws, json!({"roomId": room, "userId": s.alice.id, "message": max, "clientMsgId": "max"})).await;
    let ack = next_of_type(&mut ws, "ack").await;
    assert_eq!(ack["clientMsgId"], "max");
    let msg = next_of_type(&mut ws, "message").await;
    assert_eq!(msg["message"].as_str().unwrap().chars().count(), 2000);
    assert!(full_history(&s.forum, room).await.len() == 1, "nothing bad was stored");
}

/// A frame above the 16 KiB limit closes the connection with 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_close_the_connection() {
    let s = setup(|_| {}).await;
    let mut ws = connect(&s.forum, &s.alice, &s.room_id, None).await;
    wait_joined(&mut ws, &s.alice).await;
    let huge = json!({"roomId": s.room_id, "message": "y".repeat(20_000)});
    let _ = ws.send(Message::text(huge.to_string())).await;
    loop {
        match next_frame(&mut ws).await {
            Frame::Json(_) => continue,
            Frame::Close(Some((code, _))) => {
                assert_eq!(code, 1009);
                break;
            }
            Frame::Close(None) | Frame::End => break,
        }
    }
}

/// A flood gets `rate_limited` error frames, then a 1008 close when it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_rate_limited_then_closed() {
    let s = setup(|s| {
        s.rate_per_sec = 1;
        s.rate_burst = 5;
    })
    .await;
    let mut ws = connect(&s.forum, &s.alice, &s.room_id, None).await;
    wait_joined(&mut ws, &s.alice).await;
    for k in 0..60 {
        if ws.send(Message::text(chat(&s.room_id, &format!("spam {k}"), None).to_string())).await.is_err() {
            break;
        }
    }
    let (mut acks, mut limited) = (0, 0);
    let close = loop {
        match next_frame(&mut ws).await {
            Frame::Json(v) if v["type"] == "ack" => acks += 1,
            Frame::Json(v) if v["type"] == "error" => {
                assert_eq!(v["code"], "rate_limited");
                limited += 1;
            }
            Frame::Json(_) => {}
            Frame::Close(c) => break c,
            Frame::End => break None,
        }
    };
    assert!((5..=7).contains(&acks), "the burst passes ({acks} acks)");
    assert!(limited >= 1, "at least one rate_limited error frame");
    assert_eq!(close.map(|c| c.0), Some(1008), "continued abuse closes the connection");
    // Another connection of the same user is unaffected.
    let mut again = connect(&s.forum, &s.alice, &s.room_id, None).await;
    wait_joined(&mut again, &s.alice).await;
}

fn expired_token(review: &Review, user: &User) -> String {
    let key_file = review.dir.path().join("review").join("review-jwt-ed25519.pem");
    let signer = liner_review::keys::Signer::load_or_generate(&key_file, 3600).unwrap();
    let kid = signer.jwks().keys[0].kid.clone();
    let pem = std::fs::read(&key_file).unwrap();
    let now = liner_shared::now_millis() / 1000;
    let claims = liner_shared::auth::Claims {
        sub: user.id.clone(),
        name: user.username.clone(),
        iss: liner_shared::auth::ISSUER.into(),
        iat: now - 7200,
        exp: now - 3600,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_pem(&pem).unwrap()).unwrap()
}

/// Everything refused before the upgrade answers in the API error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_are_refused_before_the_upgrade() {
    let s = setup(|_| {}).await;
    let url = connect_url(&s.forum, &s.room_id, None);
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));

    let refused = |r: Result<Ws, (u16, Value)>| r.expect_err("connect must be refused");
    let (status, body) = refused(try_connect(&url, &[], None).await);
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));

    // Forged: a token from another key, a tampered signature, alg none.
    let other_dir = tempfile::tempdir().unwrap();
    let other = liner_review::keys::Signer::load_or_generate(&other_dir.path().join("k.pem"), 3600).unwrap();
    let forged = other.issue(&s.alice.id, "alice").unwrap();
    let (status, _) = refused(try_connect(&url, &[bearer(&forged)], None).await);
    assert_eq!(status, 401);
    let mut tampered = s.alice.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = refused(try_connect(&url, &[bearer(&tampered)], None).await);
    assert_eq!(status, 401);
    let parts: Vec<&str> = s.alice.token.split('.').collect();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let (status, _) = refused(try_connect(&url, &[bearer(&none)], None).await);
    assert_eq!(status, 401);
    let (status, _) = refused(try_connect(&url, &[bearer(&expired_token(&s.review, &s.alice))], None).await);
    assert_eq!(status, 401);

    // Foreign Origin: 403, even with a good token; an allowed one passes.
    let (status, body) =
        refused(try_connect(&url, &[bearer(&s.alice.token), ("origin", "http://evil.example".into())], None).await);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("origin_not_allowed")));
    let ok = try_connect(&url, &[bearer(&s.alice.token), ("origin", "http://localhost:8080".into())], None).await;
    assert!(ok.is_ok());

    // ?token= for browsers.
    let with_query = format!("{url}&token={}", s.alice.token);
    assert!(try_connect(&with_query, &[], None).await.is_ok());

    // Wrong userId, missing/unknown room, bad since.
    let wrong_user = format!("{url}&userId={}", s.bob.id);
    let (status, body) = refused(try_connect(&wrong_user, &[bearer(&s.alice.token)], None).await);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("wrong_user")));
    let right_user = format!("{url}&userId={}", s.alice.id);
    assert!(try_connect(&right_user, &[bearer(&s.alice.token)], None).await.is_ok());
    let no_room = format!("ws://{}/api/forums/connect", s.forum.addr);
    let (status, _) = refused(try_connect(&no_room, &[bearer(&s.alice.token)], None).await);
    assert_eq!(status, 400);
    let unknown = connect_url(&s.forum, "no-such-room", None);
    let (status, body) = refused(try_connect(&unknown, &[bearer(&s.alice.token)], None).await);
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let bad_since = format!("{url}&since=-1");
    let (status, _) = refused(try_connect(&bad_since, &[bearer(&s.alice.token)], None).await);
    assert_eq!(status, 400);

    // Not a WebSocket request at all.
    let res = reqwest::Client::new()
        .get(s.forum.api(&format!("/connect?roomId={}", s.room_id)))
        .bearer_auth(&s.alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "websocket_required");

    // Closed room: 410.
    let res = reqwest::Client::new()
        .delete(s.forum.api(&format!("/rooms/{}", s.room_id)))
        .bearer_auth(&s.alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = refused(try_connect(&url, &[bearer(&s.alice.token)], None).await);
    assert_eq!((status, body["error"]["code"].as_str()), (410, Some("room_closed")));
}

/// A member that stops reading is disconnected (4008) once its queue of 16 frames and
/// the socket buffers are full; the other member meanwhile receives every message in
/// order — the room never waits for the slow one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_disconnected_without_delaying_the_room() {
    let s = setup(|s| {
        s.rate_per_sec = 100_000;
        s.rate_burst = 100_000;
        s.send_queue = 16;
        // Thousands of lines a second: a stress of the reader, not of adaptive slow mode.
        s.adaptive = liner_forum::moderation::adaptive::AdaptiveSettings::off();
    })
    .await;
    let room = s.room_id.as_str();
    let carol = register(&s.review, "carol").await;
    // The slow member: a tiny receive buffer, and it never reads after joining.
    let url = connect_url(&s.forum, room, None);
    let mut slow = try_connect(&url, &[("authorization", format!("Bearer {}", carol.token))], Some(4096))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    wait_joined(&mut slow, &carol).await;
    let mut fast = connect(&s.forum, &s.bob, room, None).await;
    wait_joined(&mut fast, &s.bob).await;
    let mut sender = connect(&s.forum, &s.alice, room, None).await;
    wait_joined(&mut sender, &s.alice).await;
    // The sender reads everything it is sent, on the side.
    let (mut sender, mut sender_rx) = sender.split();
    tokio::spawn(async move { while let Some(Ok(_)) = sender_rx.next().await {} });

    // ~6 KB messages (2,000 three-byte characters) fill the slow socket quickly.
    let big = "€".repeat(2000);
    let mut sent = 0i64;
    let mut received = 0i64;
    let mut slow_left = false;
    while !slow_left {
        // Kernel socket buffers (autotuned up to several MB on loopback) absorb a few
        // thousand frames before the server feels back-pressure; 8,000 × 6 KB is ~48 MB.
        assert!(sent < 8000, "the slow member was never disconnected");
        for _ in 0..10 {
            sender.send(Message::text(chat(room, &big, None).to_string())).await.unwrap();
            sent += 1;
        }
        // The fast member gets each message, in order, while the slow one stalls.
        while received < sent {
            let v = next_json(&mut fast).await;
            match v["type"].as_str() {
                Some("message") => {
                    received += 1;
                    assert_eq!(v["seq"].as_i64(), Some(received));
                }
                Some("presence") if v["left"]["userId"] == carol.id.as_str() => slow_left = true,
                _ => {}
            }
        }
    }
    // The slow member's stream ends after what was already buffered (close 4008 if it got through).
    let mut buffered = 0;
    loop {
        match next_frame(&mut slow).await {
            Frame::Json(_) => buffered += 1,
            Frame::Close(c) => {
                println!("slow reader dropped after {sent} sends; {buffered} frames had reached it; close {c:?}");
                if let Some((code, _)) = c {
                    assert_eq!(code, 4008);
                }
                break;
            }
            Frame::End => {
                println!("slow reader dropped after {sent} sends; {buffered} frames had reached it; no close frame");
                break;
            }
        }
    }
}

/// Usernames come from the review service; with it down, from the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_fall_back_to_the_token_when_the_review_service_is_down() {
    let s = setup(|_| {}).await;
    // Sending right after the handshake (before the joined frame): the sender still
    // receives its own message.
    let mut ws = connect(&s.forum, &s.bob, &s.room_id, None).await;
    send_json(&mut ws, chat(&s.room_id, "from the profile", None)).await;
    assert_eq!(next_of_type(&mut ws, "message").await["username"], "bob");
    s.review.stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Alice was never looked up: the lookup fails, the token's name is used.
    let mut ws = connect(&s.forum, &s.alice, &s.room_id, None).await;
    send_json(&mut ws, chat(&s.room_id, "still chatting", None)).await;
    let m = next_of_type(&mut ws, "message").await;
    assert_eq!(m["username"], "alice");
    assert_eq!(m["message"], "still chatting");
}

/// Keep-alive: a client that answers the server's pings stays connected past the idle
/// timeout; one that stops reading (and so never answers) is closed with 4408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_and_live_ones_kept() {
    let s = setup(|s| {
        s.idle_timeout_secs = 3;
        s.ping_interval_secs = 1;
    })
    .await;
    let mut idle = connect(&s.forum, &s.bob, &s.room_id, None).await;
    wait_joined(&mut idle, &s.bob).await;
    let mut live = connect(&s.forum, &s.alice, &s.room_id, None).await;
    wait_joined(&mut live, &s.alice).await;

    // The live client reads (and so answers pings) for longer than the idle timeout.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut pings = 0;
    let mut idle_left = false;
    let is_bob_left = |t: &str| {
        let v: Value = serde_json::from_str(t).unwrap_or_default();
        v["type"] == "presence" && v["left"]["userId"] == s.bob.id.as_str()
    };
    while let Ok(msg) = tokio::time::timeout_at(until, live.next()).await {
        match msg {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(t))) => idle_left |= is_bob_left(t.as_str()),
            Some(Ok(_)) => {}
            other => panic!("the live client was dropped: {other:?}"),
        }
    }
    assert!(pings >= 2, "the server pings ({pings})");
    send_json(&mut live, chat(&s.room_id, "still here", None)).await;
    loop {
        let v = next_json(&mut live).await;
        idle_left |= is_bob_left(&v.to_string());
        if v["type"] == "ack" {
            break;
        }
    }
    while !idle_left {
        idle_left = is_bob_left(&next_of_type(&mut live, "presence").await.to_string());
    }
    // Its close frame (4408) sits behind the frames it never read; answering the queued
    // pings after the server hung up may reset the connection first, so it is optional.
    loop {
        match next_frame(&mut idle).await {
            Frame::Json(_) => continue,
            Frame::Close(c) => {
                assert_eq!(c.map(|c| c.0), Some(4408));
                break;
            }
            Frame::End => break,
        }
    }
}

/// Stopping the service closes every session with 1001 (clients reconnect with `since`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_closes_sessions_with_going_away() {
    let s = setup(|_| {}).await;
    let mut ws = connect(&s.forum, &s.alice, &s.room_id, None).await;
    wait_joined(&mut ws, &s.alice).await;
    s.forum.stop.cancel();
    loop {
        match next_frame(&mut ws).await {
            Frame::Json(_) => continue,
            Frame::Close(c) => {
                assert_eq!(c.map(|c| c.0), Some(1001));
                break;
            }
            Frame::End => panic!("expected a 1001 close frame"),
        }
    }
}
