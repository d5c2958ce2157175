//! Rooms REST, on SQLite and on PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

async fn rooms_rest_contract(mode: Mode) {
    let review = start_review().await;
    let admin = register(&review, "admin").await;
    let (_backing, forums) = start_forums(&review, mode, |s| s.admin_users = vec![admin.id.clone()]).await;
    let forum = &forums[0];
    let http = reqwest::Client::new();
    let alice = register(&review, "alice").await;
    let bob = register(&review, "bob").await;

    // Create: 201 with every field of the contract.
    let room =
        create_room(forum, &alice, json!({"roomType": "album", "albumId": "rg-1", "title": "Kind of Blue"})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    assert_eq!(room["roomType"], "album");
    assert_eq!(room["albumId"], "rg-1");
    assert_eq!(room["genreId"], Value::Null);
    assert_eq!(room["title"], "Kind of Blue");
    assert_eq!(room["createdBy"], alice.id.as_str());
    assert_eq!(room["active"], true);
    assert_eq!(room["online"], 0);
    assert!(room["createdAt"].as_str().unwrap().ends_with('Z'));

    // One active room per album: 409 naming the existing one.
    let res = http
        .post(forum.api("/rooms"))
        .bearer_auth(&bob.token)
        .json(&json!({"roomType": "album", "albumId": "rg-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "room_exists");
    assert_eq!(body["error"]["existingId"], id.as_str());

    // Genre rooms: default title; genre ids match case-insensitively.
    let genre = create_room(forum, &bob, json!({"roomType": "genre", "genreId": "jazz"})).await;
    assert_eq!(genre["title"], "Genre jazz");
    let res = http
        .post(forum.api("/rooms"))
        .bearer_auth(&bob.token)
        .json(&json!({"roomType": "genre", "genreId": "JAZZ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);

    // Validation: 422 naming the field, 400 malformed, 401 without a token.
    for (body, field) in [
        (json!({"roomType": "album"}), "albumId"),
        (json!({"roomType": "genre"}), "genreId"),
        (json!({"roomType": "album", "albumId": "has space"}), "albumId"),
        (json!({"roomType": "album", "albumId": "x", "title": ""}), "title"),
        (json!({"roomType": "planet", "albumId": "x"}), "planet"),
    ] {
        let res = http.post(forum.api("/rooms")).bearer_auth(&alice.token).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 422, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_field");
        assert!(err["error"]["message"].as_str().unwrap().contains(field), "{err}");
    }
    let res = http
        .post(forum.api("/rooms"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http.post(forum.api("/rooms")).json(&json!({"roomType": "genre", "genreId": "x"})).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "unauthorized");

    // List with filters.
    let all: Vec<Value> = reqwest::get(forum.api("/rooms")).await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), 2);
    let albums: Vec<Value> = reqwest::get(forum.api("/rooms?roomType=album")).await.unwrap().json().await.unwrap();
    assert_eq!(albums.len(), 1);
    assert_eq!(albums[0]["id"], id.as_str());
    let by_album: Vec<Value> = reqwest::get(forum.api("/rooms?albumId=rg-1")).await.unwrap().json().await.unwrap();
    assert_eq!(by_album.len(), 1);
    let by_genre: Vec<Value> = reqwest::get(forum.api("/rooms?genreId=Jazz")).await.unwrap().json().await.unwrap();
    assert_eq!(by_genre.len(), 1);
    let res = reqwest::get(forum.api("/rooms?roomType=planet")).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = reqwest::get(forum.api("/rooms?limit=0")).await.unwrap();
    assert_eq!(res.status(), 400);

    // Get one; unknown → 404.
    let got: Value = reqwest::get(forum.api(&format!("/rooms/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(got["id"], id.as_str());
    let res = reqwest::get(forum.api("/rooms/nope")).await.unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "not_found");

    // Close: only the creator or an admin; idempotent; history stays readable.
    let res = http.delete(forum.api(&format!("/rooms/{id}"))).bearer_auth(&bob.token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http.delete(forum.api(&format!("/rooms/{id}"))).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http.delete(forum.api(&format!("/rooms/{id}"))).bearer_auth(&alice.token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = http.delete(forum.api(&format!("/rooms/{id}"))).bearer_auth(&alice.token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let genre_id = genre["id"].as_str().unwrap();
    let res = http.delete(forum.api(&format!("/rooms/{genre_id}"))).bearer_auth(&admin.token).send().await.unwrap();
    assert_eq!(res.status(), 204, "an admin closes any room");
    let got: Value = reqwest::get(forum.api(&format!("/rooms/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(got["active"], false);
    let active: Vec<Value> = reqwest::get(forum.api("/rooms")).await.unwrap().json().await.unwrap();
    assert!(active.is_empty());
    assert!(history(forum, &id, "").await.is_empty());

    // A closed room frees its album for a new one.
    let again = create_room(forum, &bob, json!({"roomType": "album", "albumId": "rg-1"})).await;
    assert_ne!(again["id"], id.as_str());

    // History query validation.
    let res = reqwest::get(forum.api(&format!("/rooms/{id}/messages?limit=201"))).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = reqwest::get(forum.api(&format!("/rooms/{id}/messages?before=x"))).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = reqwest::get(forum.api("/rooms/nope/messages")).await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_rest_contract_sqlite() {
    rooms_rest_contract(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_rest_contract_postgres() {
    rooms_rest_contract(Mode::Replicated).await;
}

/// Twenty racing creates on two replicas for one album make exactly one room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_make_one_room() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Replicated, |_| {}).await;
    let user = register(&review, "racer").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = forums[i % 2].api("/rooms");
        let token = user.token.clone();
        tasks.push(tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"roomType": "album", "albumId": "same"}))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => created += 1,
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 1);
}

/// Operations endpoints and the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_and_openapi() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Replicated, |_| {}).await;
    let forum = &forums[0];
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = reqwest::get(format!("{}{path}", forum.http)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let doc: Value = reqwest::get(forum.api("/openapi.json")).await.unwrap().json().await.unwrap();
    for path in ["/rooms", "/rooms/{roomId}", "/rooms/{roomId}/messages", "/connect"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let res = reqwest::get(forum.api("/no/such/route")).await.unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "not_found");
}

/// A token signed by the review service's own key, for a user it does not have (deleted,
/// or minted against another database), is refused by the forum as by the review
/// service: REST writes and chat connects answer 401; a real user's token still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_user_that_does_not_exist_is_refused() {
    let review = start_review().await;
    let (_backing, forums) = start_forums(&review, Mode::Embedded, |_| {}).await;
    let forum = &forums[0];
    let alice = register(&review, "alice").await;
    let room = create_room(forum, &alice, json!({"roomType": "genre", "genreId": "jazz", "title": "Jazz"})).await;
    let room_id = room["id"].as_str().expect("room id");

    let key_file = review.dir.path().join("review").join("review-jwt-ed25519.pem");
    let signer = liner_review::keys::Signer::load_or_generate(&key_file, 3600).expect("the review service's key");
    let ghost = signer.issue("no-such-user", "ghost").expect("token");

    let res = reqwest::Client::new()
        .post(forum.api("/rooms"))
        .bearer_auth(&ghost)
        .json(&json!({"roomType": "genre", "genreId": "ghosts", "title": "Boo"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status().as_u16(), 401, "a room created with a nonexistent user's token");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");

    let url = connect_url(forum, room_id, None);
    match try_connect(&url, &[("authorization", format!("Bearer {ghost}"))], None).await {
        Ok(_) => panic!("a chat connect with a nonexistent user's token was accepted"),
        Err(refused) => assert_eq!(refused.0, 401, "{refused:?}"),
    }

    let mut ws = connect(forum, &alice, room_id, None).await;
    wait_joined(&mut ws, &alice).await;
}
