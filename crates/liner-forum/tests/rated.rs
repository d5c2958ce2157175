//! Rating-aware rooms (issue 12): in an album room a chat line carries its author's
//! rating of the album (`authorRating`, from the review service) on the `message` frame
//! and in history, and `GET /rooms/{id}/ratings` splits the posters by rating — on the
//! embedded mode (SQLite) and on two PostgreSQL + Redis replicas. A review service
//! outage leaves messages without a badge and chat working.

mod common;

use common::*;
use serde_json::{Value, json};

async fn rate(review: &Review, user: &User, album: &str, rating: f64) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/users-reviews/reviews", review.base))
        .bearer_auth(&user.token)
        .json(&json!({"albumId": album, "rating": rating, "reviewText": "thoughts"}))
        .send()
        .await
        .expect("create review");
    assert_eq!(res.status(), 201, "review by {}", user.username);
}

/// Sends a chat line and returns the `message` frame the same connection receives for it.
async fn say(ws: &mut Ws, room_id: &str, text: &str) -> Value {
    send_json(ws, chat(room_id, text, None)).await;
    loop {
        let v = next_of_type(ws, "message").await;
        if v["message"] == text {
            return v;
        }
    }
}

async fn split(forum: &Forum, room_id: &str) -> Value {
    let res = reqwest::get(forum.api(&format!("/rooms/{room_id}/ratings"))).await.expect("ratings");
    assert_eq!(res.status(), 200);
    res.json().await.expect("split body")
}

async fn badges_and_split(mode: Mode) {
    let review = start_review().await;
    let users = register_many(&review, "rater", 4).await;
    rate(&review, &users[0], "alb1", 4.5).await;
    rate(&review, &users[1], "alb1", 3.0).await;
    rate(&review, &users[2], "alb1", 1.5).await;
    rate(&review, &users[3], "other", 5.0).await;
    let (_backing, forums) = start_forums(&review, mode, |_| {}).await;
    let room = create_room(&forums[0], &users[0], json!({"roomType": "album", "albumId": "alb1"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();

    let mut texts = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let forum = &forums[i % forums.len()];
        let mut ws = connect(forum, user, &room_id, None).await;
        wait_joined(&mut ws, user).await;
        let text = format!("hello from {}", user.username);
        let frame = say(&mut ws, &room_id, &text).await;
        texts.push((frame["authorRating"].clone(), text));
    }
    assert_eq!(texts[0].0, json!(4.5), "a rater's frame carries the badge");
    assert_eq!(texts[1].0, json!(3.0));
    assert_eq!(texts[3].0, Value::Null, "no badge for a user who rated another album only");

    let hist = full_history(&forums[forums.len() - 1], &room_id).await;
    let badges: Vec<Value> = hist.iter().map(|m| m["authorRating"].clone()).collect();
    assert_eq!(badges, vec![json!(4.5), json!(3.0), json!(1.5), Value::Null], "history keeps the badges");
    assert!(hist[3].get("authorRating").is_none(), "absent, not null: {}", hist[3]);

    let s = split(&forums[0], &room_id).await;
    assert_eq!(s, json!({"loved": 1, "mixed": 1, "disliked": 1, "unrated": 1, "available": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_and_split_sqlite() {
    badges_and_split(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_and_split_two_replicas() {
    badges_and_split(Mode::Replicated).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genre_rooms_have_no_badges() {
    let review = start_review().await;
    let users = register_many(&review, "genre", 1).await;
    rate(&review, &users[0], "alb1", 4.0).await;
    let (_backing, forums) = start_forums(&review, Mode::Embedded, |_| {}).await;
    let room = create_room(&forums[0], &users[0], json!({"roomType": "genre", "genreId": "jazz"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&forums[0], &users[0], &room_id, None).await;
    wait_joined(&mut ws, &users[0]).await;
    let frame = say(&mut ws, &room_id, "hi").await;
    assert!(frame.get("authorRating").is_none(), "{frame}");
    assert_eq!(split(&forums[0], &room_id).await["unrated"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_outage_means_no_badge_not_an_error() {
    let review = start_review().await;
    let users = register_many(&review, "out", 1).await;
    rate(&review, &users[0], "alb1", 5.0).await;
    let proxy = FlakyProxy::start(review.base.trim_start_matches("http://").to_owned()).await;
    let proxied = format!("http://{}", proxy.addr);
    let backing = backing(Mode::Embedded).await;
    let forum = start_forum(&review, &backing, |s| s.review = liner_discovery::peers::ReviewArgs::at(proxied)).await;
    let room = create_room(&forum, &users[0], json!({"roomType": "album", "albumId": "alb1"})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&forum, &users[0], &room_id, None).await;
    wait_joined(&mut ws, &users[0]).await;

    proxy.cut();
    let frame = say(&mut ws, &room_id, "still here").await;
    assert!(frame.get("authorRating").is_none(), "no badge while the review service is away: {frame}");
    let s = split(&forum, &room_id).await;
    assert_eq!((s["available"].clone(), s["unrated"].clone()), (json!(false), json!(1)), "{s}");
}
