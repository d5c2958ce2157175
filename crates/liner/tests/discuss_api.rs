//! "Discuss this review" through the gateway of a real `liner up`, on SQLite and on
//! PostgreSQL: a review opens a thread in its album's room (201, then 200 with the same
//! line), the opening line quotes it, and `?thread=` lists the thread's replies. The
//! rules and the live frames are `liner-forum/tests/threads.rs`'s.

mod common;

use common::{Backend, TestApp};
use serde_json::{Value, json};

liner_shared::on_both_backends!(a_review_opens_a_thread_in_its_album_room_through_the_gateway);

async fn forum(app: &TestApp, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, format!("http://{}/api/forums{path}", app.gateway)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_review_opens_a_thread_in_its_album_room_through_the_gateway(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let review = app.review(&alice, "mb:discussed", 4.0).await;
    let review_id = review["id"].as_str().expect("review id");
    let room = json!({"roomType": "album", "albumId": "mb:discussed"});
    let (status, room) = forum(&app, reqwest::Method::POST, "/rooms", &bob, Some(room)).await;
    assert_eq!(status, 201, "{room}");
    let threads = format!("/rooms/{}/threads", room["id"].as_str().expect("room id"));
    let open = json!({"reviewId": review_id});
    let (status, opener) = forum(&app, reqwest::Method::POST, &threads, &bob, Some(open.clone())).await;
    assert_eq!(status, 201, "{opener}");
    assert_eq!((opener["review"]["id"].as_str(), opener["review"]["rating"].as_f64()), (Some(review_id), Some(4.0)));
    assert_eq!(opener["username"], "bob", "the line is the opener's");
    let (status, again) = forum(&app, reqwest::Method::POST, &threads, &alice, Some(open)).await;
    assert_eq!((status, &again["id"]), (200, &opener["id"]), "one thread per review");
    let history = format!("/rooms/{}/messages?thread={}", room["id"].as_str().unwrap(), opener["id"].as_str().unwrap());
    let (status, replies) = forum(&app, reqwest::Method::GET, &history, &bob, None).await;
    assert_eq!((status, replies), (200, json!([])), "no replies yet");
    app.stop().await;
}
