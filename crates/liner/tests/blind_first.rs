//! Blind-first rating over HTTP through the gateway of a real `liner up`, on SQLite and
//! on PostgreSQL: the setting is the owner's alone and off by default; `?blind=true`
//! hides an album's score and reviews until the caller has reviewed it, and needs a
//! token; the ordinary album page stays one shared answer, the same bytes for everyone.

mod common;

use common::{Backend, Resp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

liner_shared::on_both_backends!(
    the_setting_is_owner_only_and_defaults_to_false,
    blind_pages_hide_the_album_until_the_callers_review,
    the_shared_page_is_unchanged_and_the_same_bytes_for_every_reader,
);

#[track_caller]
fn ok(r: &Resp) -> &Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    &r.body
}

async fn settings(app: &TestApp, token: Option<&str>, body: Option<Value>) -> Resp {
    let method = if body.is_some() { Method::PUT } else { Method::GET };
    app.call(method, "/users/me/settings", token, body).await
}

async fn the_setting_is_owner_only_and_defaults_to_false(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    assert_eq!(ok(&settings(&app, Some(&alice), None).await)["blindFirst"], false, "default");
    let own = ok(&app.call(Method::GET, &format!("/users/profile/{alice_id}"), Some(&alice), None).await).clone();
    assert_eq!(own["blindFirst"], false, "the owner's profile carries it");

    let on = settings(&app, Some(&alice), Some(json!({"blindFirst": true}))).await;
    assert_eq!(ok(&on)["blindFirst"], true);
    assert_eq!(ok(&settings(&app, Some(&alice), None).await)["blindFirst"], true, "stored");
    assert_eq!(ok(&settings(&app, Some(&bob), None).await)["blindFirst"], false, "bob's own, untouched");

    let others_view = ok(&app.call(Method::GET, &format!("/users/profile/{alice_id}"), Some(&bob), None).await).clone();
    assert!(others_view.get("blindFirst").is_none(), "never shown to others: {others_view}");
    let public = ok(&app.get(&format!("/users/profile/{alice_id}")).await).clone();
    assert!(public.get("blindFirst").is_none(), "never in the shared profile: {public}");

    assert_eq!(settings(&app, None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(settings(&app, None, Some(json!({"blindFirst": false}))).await.status, StatusCode::UNAUTHORIZED);
    settings(&app, Some(&alice), Some(json!({"blindFirst": "yes"}))).await.assert_invalid("blindFirst");
    settings(&app, Some(&alice), Some(json!({"blindFirst": true, "userId": "x"}))).await.assert_invalid("userId");
    app.stop().await;
}

async fn blind_pages_hide_the_album_until_the_callers_review(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    app.review(&alice, "mb:kid-a", 5.0).await;
    let blind = "/reviews/album/mb:kid-a?blind=true";

    let hidden = ok(&app.call(Method::GET, blind, Some(&bob), None).await).clone();
    assert_eq!(hidden, json!({"albumId": "mb:kid-a", "hidden": true, "items": []}), "no score, no reviews");
    let paged = ok(&app.call(Method::GET, &format!("{blind}&sort=highest&limit=5"), Some(&bob), None).await).clone();
    assert_eq!(paged["hidden"], true, "whatever the sort and size");

    app.review(&bob, "mb:kid-a", 3.0).await;
    let shown = ok(&app.call(Method::GET, blind, Some(&bob), None).await).clone();
    assert!(shown.get("hidden").is_none(), "{shown}");
    assert_eq!(shown["total"], 2);
    assert!(shown["score"]["weighted"].is_number(), "{shown}");
    assert_eq!(shown["items"].as_array().map(Vec::len), Some(2));

    let ask = app.call(Method::GET, blind, None, None).await;
    ask.assert_error(401, "unauthorized");
    let unblind = ok(&app.call(Method::GET, "/reviews/album/mb:kid-a?blind=false", Some(&bob), None).await).clone();
    assert_eq!(unblind["total"], 2, "blind=false is the ordinary page");
    app.call(Method::GET, "/reviews/album/mb:kid-a?blind=maybe", Some(&bob), None).await.assert_error(400, "bad_query");
    app.stop().await;
}

/// The raw bytes of an album page as `token` (or nobody) reads it.
async fn page_bytes(app: &TestApp, path: &str, token: Option<&str>) -> Vec<u8> {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    res.bytes().await.expect("body").to_vec()
}

async fn the_shared_page_is_unchanged_and_the_same_bytes_for_every_reader(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let (_, carol) = app.user("carol").await;
    assert_eq!(ok(&settings(&app, Some(&bob), Some(json!({"blindFirst": true}))).await)["blindFirst"], true);
    app.review(&alice, "mb:ok-computer", 4.5).await;
    app.review(&carol, "mb:ok-computer", 4.0).await;
    let path = "/reviews/album/mb:ok-computer";

    // A blind reader asking first must not change what everyone else is served.
    let hidden = page_bytes(&app, &format!("{path}?blind=true"), Some(&bob)).await;
    assert!(String::from_utf8_lossy(&hidden).contains("\"hidden\":true"));
    let anonymous = page_bytes(&app, path, None).await;
    let as_bob = page_bytes(&app, path, Some(&bob)).await;
    let as_alice = page_bytes(&app, path, Some(&alice)).await;
    assert_eq!(anonymous, as_bob, "one answer for every reader, blind-first or not");
    assert_eq!(anonymous, as_alice, "one answer for every reader");
    let page: Value = serde_json::from_slice(&anonymous).expect("json");
    assert!(page.get("hidden").is_none(), "the shared page never says hidden: {page}");
    for field in ["albumId", "total", "averageRating", "histogram", "score", "items", "nextCursor"] {
        assert!(page.get(field).is_some(), "{field} in {page}");
    }
    assert_eq!(page["total"], 2);

    // After bob's review his blind answer is that same shared page, byte for byte.
    app.review(&bob, "mb:ok-computer", 2.0).await;
    let shared = page_bytes(&app, path, None).await;
    assert_eq!(page_bytes(&app, &format!("{path}?blind=true"), Some(&bob)).await, shared);
    app.stop().await;
}
