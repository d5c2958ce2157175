//! "Discuss this review" (issue 12): a review of the room's album opens a thread — a
//! sequenced line quoting it, live on every replica — replies name it with `threadId`,
//! history filters them with `?thread=`, a replay reproduces both; opening twice (on two
//! replicas at once) gives one thread; the rules: album rooms only, the room's album only,
//! unknown reviews 404, unknown threads refused, quotes not editable. On SQLite and on two
//! PostgreSQL + Redis replicas.

mod common;

use common::*;
use serde_json::{Value, json};

async fn write_review(review: &Review, user: &User, album: &str, rating: f64, text: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{}/api/users-reviews/reviews", review.base))
        .bearer_auth(&user.token)
        .json(&json!({"albumId": album, "rating": rating, "reviewText": text}))
        .send()
        .await
        .expect("create review");
    assert_eq!(res.status(), 201, "review by {}", user.username);
    res.json().await.expect("review body")
}

async fn open_thread(forum: &Forum, user: &User, room_id: &str, review_id: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(forum.api(&format!("/rooms/{room_id}/threads")))
        .bearer_auth(&user.token)
        .json(&json!({"reviewId": review_id}))
        .send()
        .await
        .expect("open thread");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn reply(room_id: &str, thread_id: &str, text: &str, cid: &str) -> Value {
    json!({"roomId": room_id, "message": text, "threadId": thread_id, "clientMsgId": cid})
}

async fn discuss_a_review(mode: Mode) {
    let review = start_review().await;
    let ann = register(&review, "ann").await;
    let bob = register(&review, "bob").await;
    let long = format!("Side two is where it lives. {}", "la ".repeat(200));
    let ann_review = write_review(&review, &ann, "alb1", 4.5, &long).await;
    let other_album = write_review(&review, &bob, "alb2", 2.0, "meh").await;
    let (_backing, forums) = start_forums(&review, mode, |_| {}).await;
    let room = create_room(&forums[0], &bob, json!({"roomType": "album", "albumId": "alb1"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut a = connect(&forums[0], &ann, &room_id, None).await;
    wait_joined(&mut a, &ann).await;
    let mut b = connect(forums.last().unwrap(), &bob, &room_id, None).await;
    wait_joined(&mut b, &bob).await;

    // Bob opens Ann's review as a thread; both openers racing on two replicas get one line.
    let review_id = ann_review["id"].as_str().unwrap();
    let (first, second) = tokio::join!(
        open_thread(&forums[0], &bob, &room_id, review_id),
        open_thread(forums.last().unwrap(), &ann, &room_id, review_id),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "one thread per review: {first:?} {second:?}");
    assert_eq!(first.1["id"], second.1["id"]);
    let opener = first.1;
    let thread_id = opener["id"].as_str().unwrap().to_owned();
    assert_eq!(opener["seq"], 1);
    assert_eq!(opener["review"]["id"], review_id);
    assert_eq!((opener["review"]["username"].as_str(), opener["review"]["rating"].as_f64()), (Some("ann"), Some(4.5)));
    let excerpt = opener["message"].as_str().unwrap();
    assert!(excerpt.starts_with("Side two is where it lives.") && excerpt.ends_with('…'), "{excerpt}");
    assert!(excerpt.chars().count() <= 281, "280 characters and the ellipsis at most");
    for ws in [&mut a, &mut b] {
        let live = next_of_type(ws, "message").await;
        assert_eq!(
            (live["id"].as_str(), &live["review"]),
            (Some(thread_id.as_str()), &opener["review"]),
            "live on every replica"
        );
    }

    // Replies name the thread; a plain line does not; an unknown thread is refused.
    assert_eq!(
        send_and_answer(&mut a, reply(&room_id, &thread_id, "thanks for reading it", "a1")).await["type"],
        "ack"
    );
    assert_eq!(send_and_answer(&mut b, chat(&room_id, "unrelated", Some("b1"))).await["type"], "ack");
    assert_eq!(send_and_answer(&mut b, reply(&room_id, &thread_id, "side one though", "b2")).await["type"], "ack");
    let bad = send_and_answer(&mut b, reply(&room_id, "no-such-thread", "hello?", "b3")).await;
    assert_eq!(bad["code"], "thread_not_found", "{bad}");
    let plain_line = history(&forums[0], &room_id, "").await[2]["id"].as_str().unwrap().to_owned();
    let not_a_thread = send_and_answer(&mut b, reply(&room_id, &plain_line, "hello?", "b4")).await;
    assert_eq!(not_a_thread["code"], "thread_not_found", "a plain line is no thread: {not_a_thread}");
    let edit =
        json!({"type": "edit", "roomId": room_id, "messageId": thread_id, "message": "rewritten", "clientMsgId": "b5"});
    assert_eq!(send_and_answer(&mut b, edit).await["code"], "not_editable");

    let replies = history(forums.last().unwrap(), &room_id, &format!("?thread={thread_id}")).await;
    let texts: Vec<&str> = replies.iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, ["thanks for reading it", "side one though"]);
    assert!(replies.iter().all(|m| m["threadId"] == thread_id.as_str()));
    let all = history(&forums[0], &room_id, "").await;
    assert_eq!(all.len(), 4, "the thread is part of the room's history");
    assert!(all[2].get("threadId").is_none(), "a plain line names no thread");

    // A replay from 0 reproduces the quote and the replies in order.
    let mut c = connect(&forums[0], &ann, &room_id, Some(0)).await;
    let replay: Vec<Value> = {
        let mut out = Vec::new();
        while out.len() < 4 {
            out.push(next_of_type(&mut c, "message").await);
        }
        out
    };
    assert_eq!(replay[0]["review"], opener["review"]);
    assert_eq!(replay[1]["threadId"], thread_id.as_str());
    assert_eq!(replay[3]["threadId"], thread_id.as_str());

    // The rules: a review of another album, an unknown review, a genre room.
    let (status, body) = open_thread(&forums[0], &bob, &room_id, other_album["id"].as_str().unwrap()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().starts_with("reviewId"), "{body}");
    assert_eq!(open_thread(&forums[0], &bob, &room_id, "no-such-review").await.0, 404);
    let genre = create_room(&forums[0], &bob, json!({"roomType": "genre", "genreId": "jazz"})).await;
    let (status, _) = open_thread(&forums[0], &bob, genre["id"].as_str().unwrap(), review_id).await;
    assert_eq!(status, 422);
    assert_eq!(open_thread(&forums[0], &bob, "no-such-room", review_id).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_a_review_sqlite() {
    discuss_a_review(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discuss_a_review_two_replicas() {
    discuss_a_review(Mode::Replicated).await;
}
