//! Members come and go and the forum keeps nothing of them: after ten cycles of a few
//! hundred connections joining rooms and leaving, no session task, room channel or
//! membership is left, and every room says 0 online. (Memory itself is measured by the
//! footprint benchmark, not asserted here.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CYCLES: usize = 10;
const ROOMS: usize = 5;
const CONNECTIONS: usize = 200;

/// Polls the forum until it holds nothing for members (or says what it still holds).
async fn wait_until_empty(forum: &Forum, cycle: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let live = forum.probe.now();
        if live == (liner_forum::Live { sessions: 0, rooms: 0, members: 0 }) {
            return;
        }
        assert!(Instant::now() < deadline, "cycle {cycle}: still held after every member left: {live:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_connect_leave_cycles_leave_no_members_tasks_or_room_state() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Embedded, |_| {}).await;
    let forum = &forums[0];
    let users = register_many(&review, "member", 20).await;
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let room = create_room(forum, &users[0], json!({"roomType": "genre", "genreId": format!("genre-{i}")})).await;
        rooms.push(room["id"].as_str().unwrap().to_owned());
    }

    for cycle in 0..CYCLES {
        // Everyone joins (and is announced), half of them say something, all leave:
        // half with a close frame, half by dropping the TCP connection.
        let mut members = Vec::with_capacity(CONNECTIONS);
        for i in 0..CONNECTIONS {
            let user = &users[i % users.len()];
            let room = &rooms[i % ROOMS];
            let mut ws = connect(forum, user, room, None).await;
            wait_joined(&mut ws, user).await;
            members.push((ws, room));
        }
        let live = forum.probe.now();
        assert_eq!(
            (live.sessions, live.rooms, live.members),
            (CONNECTIONS, ROOMS, CONNECTIONS),
            "cycle {cycle}: everyone is in"
        );
        for (i, (ws, room)) in members.iter_mut().enumerate().filter(|(i, _)| i % 2 == 0) {
            send_json(ws, chat(room, &format!("cycle {cycle} member {i}"), None)).await;
            next_of_type(ws, "ack").await;
        }
        for (i, (mut ws, _)) in members.into_iter().enumerate() {
            if i % 2 == 0 {
                let _ = ws.send(Message::Close(None)).await;
            }
            drop(ws);
        }
        wait_until_empty(forum, cycle).await;
    }

    let listed: Vec<Value> =
        reqwest::get(forum.api("/rooms?roomType=genre")).await.expect("rooms").json().await.expect("rooms body");
    assert_eq!(listed.len(), ROOMS);
    assert!(listed.iter().all(|r| r["online"] == 0), "nobody is online: {listed:?}");
}
