//! Rooms and live chat through the gateway of a real `liner up`: discovery routing,
//! edge auth, the WebSocket tunnel and the forum service together, on both backends.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, json_of};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

liner_shared::on_both_backends!(chat_through_the_gateway);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, room: &str, token: &str, since: Option<i64>) -> Ws {
    let since = since.map_or(String::new(), |s| format!("&since={s}"));
    let url = format!("ws://{}/api/forums/connect?roomId={room}{since}", app.gateway);
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    tokio_tungstenite::connect_async(req).await.expect("upgrade through the gateway").0
}

/// The next frame of `kind`, skipping others (presence etc.).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame =
            tokio::time::timeout_at(deadline, ws.next()).await.expect("frame in time").expect("open").expect("ok");
        if let Message::Text(text) = frame {
            let v: Value = serde_json::from_str(&text).expect("json frame");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

async fn chat_through_the_gateway(backend: Backend) {
    let app = TestApp::start(backend).await;
    let forums = format!("http://{}/api/forums", app.gateway);
    let (ann_id, ann) = app.user("ann").await;
    let (_, bob) = app.user("bob").await;

    // Writes without a token never reach the forum: the gateway answers 401.
    let r = app
        .http
        .post(format!("{forums}/rooms"))
        .json(&json!({"roomType": "album", "albumId": "a1"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");

    let r = app
        .http
        .post(format!("{forums}/rooms"))
        .bearer_auth(&ann)
        .json(&json!({"roomType": "album", "albumId": "a1", "title": "Kind of Blue"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::CREATED);
    let room: Value = r.json().await.expect("json");
    let room_id = room["id"].as_str().expect("id").to_owned();
    assert_eq!(room["createdBy"], ann_id.as_str());

    let mut ann_ws = connect(&app, &room_id, &ann, None).await;
    let mut bob_ws = connect(&app, &room_id, &bob, None).await;
    // Bob's session has read its starting position once it delivers anything (his own
    // join is announced to the room): a message sent earlier could count as history.
    next_of(&mut bob_ws, "presence").await;
    ann_ws
        .send(Message::text(
            json!({"userId": ann_id, "roomId": room_id, "message": "So what? 🎺", "clientMsgId": "c1"}).to_string(),
        ))
        .await
        .expect("send");
    let ack = next_of(&mut ann_ws, "ack").await;
    assert_eq!((ack["clientMsgId"].as_str(), ack["seq"].as_i64()), (Some("c1"), Some(1)));
    for ws in [&mut ann_ws, &mut bob_ws] {
        let m = next_of(ws, "message").await;
        assert_eq!(m["message"], "So what? 🎺");
        assert_eq!(m["username"], "ann");
        assert_eq!(m["seq"], 1);
        assert_eq!(m["id"], ack["id"]);
    }

    let rooms: Value =
        app.http.get(format!("{forums}/rooms?albumId=a1")).send().await.expect("sent").json().await.expect("json");
    assert_eq!(rooms[0]["online"], 2, "{rooms}");

    // Reconnect with since=0 replays the stored message.
    drop(bob_ws);
    let mut again = connect(&app, &room_id, &bob, Some(0)).await;
    assert_eq!(next_of(&mut again, "message").await["seq"], 1);

    // Closing reaches the members through the tunnel.
    let r = app.http.delete(format!("{forums}/rooms/{room_id}")).bearer_auth(&ann).send().await.expect("sent");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    next_of(&mut again, "closed").await;
    let history = json_of(app.http.get(format!("{forums}/rooms/{room_id}/messages"))).await;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "history stays readable");
    app.stop().await;
}

/// Reads until the server's close frame and returns its code; a connection that ends
/// without one (a TCP reset, say) fails the test with what ended it.
async fn close_code(ws: &mut Ws) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.expect("close frame in time") {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("connection ended without a close frame: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

#[tokio::test]
async fn oversized_and_invalid_frames_get_their_close_codes_through_the_gateway() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let app = TestApp::start(Backend::Sqlite).await;
    let (_, ann) = app.user("ann").await;
    let r = app
        .http
        .post(format!("http://{}/api/forums/rooms", app.gateway))
        .bearer_auth(&ann)
        .json(&json!({"roomType": "album", "albumId": "a-frames"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::CREATED);
    let room_id = r.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();

    // A 1 MiB frame: the forum refuses it with 1009, and the close frame reaches the
    // client through the tunnel instead of a reset. The send itself may fail part-way
    // once the forum has closed; the close frame must still be readable.
    let mut ws = connect(&app, &room_id, &ann, None).await;
    let _ = ws.send(Message::text("x".repeat(1 << 20))).await;
    assert_eq!(close_code(&mut ws).await, 1009);

    // Invalid UTF-8 in a text frame: 1007 (RFC 6455 §8.1).
    let mut ws = connect(&app, &room_id, &ann, None).await;
    let bad = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(bad)).await.expect("sent");
    assert_eq!(close_code(&mut ws).await, 1007);
}
