//! Likes, spoilers, follows, the feed and lists, over HTTP through the gateway of a real
//! `liner up`, on SQLite and on PostgreSQL: idempotent likes and follows, the counts on
//! cached album pages and profiles moving at once, following oneself refused, the feed
//! newest first and paged by cursor with no duplicate or gap (also while reviews arrive),
//! lists with owner checks, reordering and their bounds, racing writes, and the per-user
//! write limit.

mod common;

use std::collections::HashSet;

use common::{Backend, Resp, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

liner_shared::on_both_backends!(
    likes_are_idempotent_and_counted_on_every_listing,
    spoiler_flag_defaults_to_false_and_round_trips,
    follows_are_idempotent_counted_and_never_of_oneself,
    feed_is_newest_first_and_pages_without_duplicates_or_gaps,
    lists_are_owned_ordered_and_bounded,
    community_writes_are_rate_limited_per_user,
    racing_likes_and_list_additions_stay_consistent,
    an_items_note_is_edited_by_the_lists_owner_only,
);

async fn put(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> Resp {
    app.call(Method::PUT, path, Some(token), body).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Resp {
    app.call(Method::DELETE, path, Some(token), None).await
}

async fn get_as(app: &TestApp, path: &str, token: &str) -> Resp {
    app.call(Method::GET, path, Some(token), None).await
}

#[track_caller]
fn ok(r: &Resp) -> &Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    &r.body
}

/// The first review of an album's (cached) first page.
async fn first_on_album_page(app: &TestApp, album: &str) -> Value {
    ok(&app.get(&format!("/reviews/album/{album}")).await)["items"][0].clone()
}

async fn likes_are_idempotent_and_counted_on_every_listing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let review = app.review(&alice, "mb:liked", 4.0).await;
    let id = review["id"].as_str().expect("id");
    assert_eq!(review["likes"], 0);
    assert_eq!(first_on_album_page(&app, "mb:liked").await["likes"], 0, "cached with no likes");

    let like = format!("/reviews/{id}/like");
    for _ in 0..2 {
        let body = ok(&put(&app, &like, &bob, None).await).clone();
        assert_eq!(body, json!({"reviewId": id, "likes": 1, "likedByMe": true}), "liking twice is one like");
    }
    ok(&put(&app, &like, &alice, None).await);
    let page = first_on_album_page(&app, "mb:liked").await;
    assert_eq!(page["likes"], 2, "the cached album page moved at once");
    assert!(page.get("likedByMe").is_none(), "the shared album page says nothing about the caller: {page}");
    let user_page = ok(&get_as(&app, &format!("/reviews/user/{alice_id}"), &bob).await).clone();
    assert_eq!(
        (user_page["items"][0]["likes"].clone(), user_page["items"][0]["likedByMe"].clone()),
        (json!(2), json!(true))
    );
    let one = ok(&get_as(&app, &format!("/reviews/{id}"), &bob).await).clone();
    assert_eq!(one["likedByMe"], true);
    assert!(ok(&app.get(&format!("/reviews/{id}")).await).get("likedByMe").is_none(), "no token, no likedByMe");

    // The album page's reader learns its own likes apart, asking about many ids at once.
    let other = app.review(&bob, "mb:liked", 2.0).await;
    let ids = format!("/reviews/liked?ids={id},{},unknown,{id}", other["id"].as_str().expect("id"));
    assert_eq!(ok(&get_as(&app, &ids, &bob).await)["ids"], json!([id]));
    app.get(&ids).await.assert_error(401, "unauthorized");
    let too_many = vec!["x"; 101].join(",");
    get_as(&app, &format!("/reviews/liked?ids={too_many}"), &bob).await.assert_error(400, "bad_query");

    let bobs_likes = ok(&app.get(&format!("/users/{bob_id}/likes")).await).clone();
    assert_eq!(bobs_likes["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(bobs_likes["items"][0]["id"], id);
    app.get("/users/nobody/likes").await.assert_error(404, "not_found");

    for _ in 0..2 {
        let body = ok(&delete(&app, &like, &bob).await).clone();
        assert_eq!(body, json!({"reviewId": id, "likes": 1, "likedByMe": false}), "unliking twice is one unlike");
    }
    let page = ok(&app.get("/reviews/album/mb:liked").await).clone();
    let mine = page["items"].as_array().expect("items").iter().find(|r| r["id"] == id).cloned();
    assert_eq!(mine.map(|r| r["likes"].clone()), Some(json!(1)), "the cached page moved back");
    put(&app, "/reviews/nope/like", &bob, None).await.assert_error(404, "not_found");
    app.call(Method::PUT, &like, None, None).await.assert_error(401, "unauthorized");

    // A deleted review takes its likes with it.
    assert_eq!(delete(&app, &format!("/reviews/{id}"), &alice).await.status, StatusCode::NO_CONTENT);
    let alices_likes = ok(&app.get(&format!("/users/{alice_id}/likes")).await).clone();
    assert_eq!(alices_likes["items"], json!([]));
    app.stop().await;
}

async fn spoiler_flag_defaults_to_false_and_round_trips(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let plain = app.review(&alice, "mb:plain", 3.0).await;
    assert_eq!(plain["spoiler"], false, "default");
    let r = app
        .post(
            "/reviews",
            Some(&alice),
            json!({"albumId": "mb:twist", "rating": 4.5, "reviewText": "the ending!", "spoiler": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(r.body["spoiler"], true);
    assert_eq!(first_on_album_page(&app, "mb:twist").await["spoiler"], true);
    assert_eq!(ok(&app.get(&format!("/reviews/{id}")).await)["spoiler"], true);
    let listing = ok(&app.get(&format!("/reviews/user/{alice_id}")).await).clone();
    let flags: Vec<&Value> = listing["items"].as_array().expect("items").iter().map(|r| &r["spoiler"]).collect();
    assert_eq!(flags, [&json!(true), &json!(false)], "newest first");

    let changed = ok(&put(&app, &format!("/reviews/{id}"), &alice, Some(json!({"spoiler": false}))).await).clone();
    assert_eq!((changed["spoiler"].clone(), changed["rating"].clone()), (json!(false), json!(4.5)), "only the flag");
    assert_eq!(first_on_album_page(&app, "mb:twist").await["spoiler"], false, "the cached page moved");
    put(&app, &format!("/reviews/{id}"), &alice, Some(json!({"spoiler": "yes"}))).await.assert_invalid("spoiler");
    app.stop().await;
}

async fn follows_are_idempotent_counted_and_never_of_oneself(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let (_, carol) = app.user("carol").await;
    let profile = async |id: String| ok(&app.get(&format!("/users/profile/{id}")).await).clone();
    let before = profile(alice_id.clone()).await;
    assert_eq!((before["followers"].clone(), before["following"].clone()), (json!(0), json!(0)), "cached at 0");

    put(&app, &format!("/users/{alice_id}/follow"), &alice, None).await.assert_error(400, "cannot_follow_self");
    let follow = format!("/users/{alice_id}/follow");
    for _ in 0..2 {
        let body = ok(&put(&app, &follow, &bob, None).await).clone();
        assert_eq!(body, json!({"userId": alice_id, "followers": 1, "followedByMe": true}), "following twice is one");
    }
    ok(&put(&app, &follow, &carol, None).await);
    assert_eq!(profile(alice_id.clone()).await["followers"], 2, "the cached profile moved at once");
    assert_eq!(profile(bob_id.clone()).await["following"], 1);
    assert_eq!(ok(&get_as(&app, &follow, &bob).await)["followedByMe"], true);
    assert_eq!(ok(&get_as(&app, &format!("/users/{bob_id}/follow"), &alice).await)["followedByMe"], false);

    let followers = ok(&app.get(&format!("/users/{alice_id}/followers?limit=1")).await).clone();
    assert_eq!(followers["items"][0]["username"], "carol", "the latest follow first");
    let cursor = followers["nextCursor"].as_str().expect("a second page");
    let rest = ok(&app.get(&format!("/users/{alice_id}/followers?limit=1&cursor={cursor}")).await).clone();
    assert_eq!((rest["items"][0]["username"].clone(), rest["nextCursor"].clone()), (json!("bob"), Value::Null));
    let following = ok(&app.get(&format!("/users/{bob_id}/following")).await).clone();
    assert_eq!(following["items"][0]["id"], alice_id);

    for _ in 0..2 {
        assert_eq!(ok(&delete(&app, &follow, &bob).await)["followers"], 1, "unfollowing twice is one unfollow");
    }
    assert_eq!(profile(bob_id).await["following"], 0);
    put(&app, "/users/nobody/follow", &bob, None).await.assert_error(404, "not_found");
    app.get("/users/nobody/followers").await.assert_error(404, "not_found");
    app.call(Method::PUT, &follow, None, None).await.assert_error(401, "unauthorized");
    app.stop().await;
}

/// Every page of the feed from the start: (review ids in order, pages read).
async fn whole_feed(app: &TestApp, token: &str, limit: usize, mid_way: impl AsyncFn()) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/feed?limit={limit}&cursor={c}"),
            None => format!("/feed?limit={limit}"),
        };
        let page = ok(&get_as(app, &path, token).await).clone();
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(|r| r["id"].as_str().expect("id").to_owned()));
        if ids.len() == limit {
            mid_way().await;
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

async fn feed_is_newest_first_and_pages_without_duplicates_or_gaps(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let (_, carol) = app.user("carol").await;
    let (_, dave) = app.user("dave").await;
    for id in [&alice_id, &bob_id] {
        ok(&put(&app, &format!("/users/{id}/follow"), &carol, None).await);
    }
    let mut written = Vec::new();
    for i in 0..7 {
        let author = if i % 2 == 0 { &alice } else { &bob };
        written.push(app.review(author, &format!("mb:feed-{i}"), 3.5).await);
        app.review(&dave, &format!("mb:feed-{i}"), 1.0).await; // dave is not followed
    }
    // Newest first by (time, id): the stored times in milliseconds (the wire's RFC 3339
    // strings do not sort as text), ties by id.
    let db = app.review_db().await;
    let mut expected = Vec::new();
    for r in &written {
        let id = r["id"].as_str().expect("id").to_owned();
        let at: i64 = sqlx::query_scalar("SELECT created_at FROM reviews WHERE id = $1")
            .bind(&id)
            .fetch_one(&db)
            .await
            .expect("stored");
        expected.push((at, id));
    }
    expected.sort();
    expected.reverse();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    // A review written while carol pages is newer than her cursor: not in later pages,
    // and it pushes nothing out of them.
    let late = std::sync::Mutex::new(None);
    let pages = whole_feed(&app, &carol, 3, async || {
        if late.lock().expect("lock").is_none() {
            let r = app.review(&alice, "mb:feed-late", 5.0).await;
            *late.lock().expect("lock") = r["id"].as_str().map(str::to_owned);
        }
    })
    .await;
    assert_eq!(pages, expected, "every followed review once, newest first, no one else's");
    let unique: HashSet<&String> = pages.iter().collect();
    assert_eq!(unique.len(), pages.len(), "no duplicate");
    let late = late.into_inner().expect("lock").expect("written mid-way");
    let fresh = ok(&get_as(&app, "/feed?limit=2", &carol).await).clone();
    assert_eq!(fresh["items"][0]["id"], late.as_str(), "a new read starts with it");
    assert_eq!(fresh["items"][0]["likedByMe"], false, "feed items say whether the reader likes them");

    app.get("/feed").await.assert_error(401, "unauthorized");
    get_as(&app, "/feed?cursor=garbage", &carol).await.assert_error(400, "bad_query");
    get_as(&app, "/feed?limit=0", &carol).await.assert_error(400, "bad_query");
    assert_eq!(ok(&get_as(&app, "/feed", &dave).await)["items"], json!([]), "dave follows no one");
    app.stop().await;
}

async fn lists_are_owned_ordered_and_bounded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let r = app.post("/lists", Some(&alice), json!({"name": "Desert island", "description": "ten at most"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let list = r.body["id"].as_str().expect("id").to_owned();
    let items = format!("/lists/{list}/items");
    for (album, note) in [("mb:a", "first"), ("mb:b", ""), ("mb:c", "third")] {
        let r = app.post(&items, Some(&alice), json!({"albumId": album, "note": note})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.post(&items, Some(&alice), json!({"albumId": "mb:a"})).await.assert_error(409, "already_in_list");
    let order = |body: &Value| -> Vec<String> {
        body["items"].as_array().expect("items").iter().map(|i| i["albumId"].as_str().expect("id").to_owned()).collect()
    };

    let moved = ok(&put(&app, &items, &alice, Some(json!({"albumIds": ["mb:c", "mb:a", "mb:b"]}))).await).clone();
    assert_eq!(order(&moved), ["mb:c", "mb:a", "mb:b"]);
    assert_eq!(moved["items"][0]["position"], 1);
    assert_eq!(moved["items"][0]["note"], "third", "notes travel with their albums");
    for bad in [json!(["mb:c", "mb:a"]), json!(["mb:c", "mb:a", "mb:a"]), json!(["mb:c", "mb:a", "mb:x"])] {
        put(&app, &items, &alice, Some(json!({"albumIds": bad}))).await.assert_invalid("albumIds");
    }

    // Only the owner changes it; anyone reads it, without a token.
    put(&app, &items, &bob, Some(json!({"albumIds": ["mb:a", "mb:b", "mb:c"]}))).await.assert_error(403, "forbidden");
    app.post(&items, Some(&bob), json!({"albumId": "mb:z"})).await.assert_error(403, "forbidden");
    put(&app, &format!("/lists/{list}"), &bob, Some(json!({"name": "mine now"}))).await.assert_error(403, "forbidden");
    delete(&app, &format!("{items}/mb:a"), &bob).await.assert_error(403, "forbidden");
    delete(&app, &format!("/lists/{list}"), &bob).await.assert_error(403, "forbidden");
    let public = ok(&app.get(&format!("/lists/{list}")).await).clone();
    assert_eq!(
        (order(&public), public["username"].clone()),
        (vec!["mb:c".to_owned(), "mb:a".into(), "mb:b".into()], json!("alice"))
    );

    let renamed = ok(&put(&app, &format!("/lists/{list}"), &alice, Some(json!({"name": "  Island  "}))).await).clone();
    assert_eq!((renamed["name"].clone(), renamed["description"].clone()), (json!("Island"), json!("ten at most")));
    assert_eq!(delete(&app, &format!("{items}/mb:a"), &alice).await.status, StatusCode::NO_CONTENT);
    delete(&app, &format!("{items}/mb:a"), &alice).await.assert_error(404, "not_found");
    assert_eq!(order(ok(&app.get(&format!("/lists/{list}")).await)), ["mb:c", "mb:b"]);
    let mine = ok(&app.get(&format!("/users/{alice_id}/lists")).await).clone();
    assert_eq!((mine["items"][0]["id"].clone(), mine["items"][0]["itemCount"].clone()), (json!(list), json!(2)));

    // Field bounds.
    app.post("/lists", Some(&alice), json!({"name": "x".repeat(101)})).await.assert_invalid("name");
    app.post("/lists", Some(&alice), json!({"name": "   "})).await.assert_invalid("name");
    app.post("/lists", Some(&alice), json!({"name": "ok", "description": "d".repeat(2001)}))
        .await
        .assert_invalid("description");
    app.post(&items, Some(&alice), json!({"albumId": "mb:d", "note": "n".repeat(1001)})).await.assert_invalid("note");
    app.post(&items, Some(&alice), json!({"albumId": "bad id!"})).await.assert_invalid("albumId");
    app.get("/lists/nope").await.assert_error(404, "not_found");

    // Items per list and lists per user, filled behind the API's back up to one short.
    let db = app.review_db().await;
    for i in 0..247 {
        sqlx::query("INSERT INTO list_items (list_id, album_id, position, note, added_at) VALUES ($1, $2, $3, '', 0)")
            .bind(&list)
            .bind(format!("mb:fill-{i}"))
            .bind(i64::from(100 + i))
            .execute(&db)
            .await
            .expect("fill");
    }
    assert_eq!(app.post(&items, Some(&alice), json!({"albumId": "mb:250th"})).await.status, StatusCode::CREATED);
    app.post(&items, Some(&alice), json!({"albumId": "mb:251st"})).await.assert_error(409, "limit_reached");
    let full = ok(&app.get(&format!("/lists/{list}")).await).clone();
    assert_eq!((full["itemCount"].clone(), order(&full).last().cloned()), (json!(250), Some("mb:250th".to_owned())));
    for i in 0..98 {
        sqlx::query(
            "INSERT INTO lists (id, user_id, name, description, created_at, updated_at) VALUES ($1, $2, 'n', '', 0, 0)",
        )
        .bind(format!("filler-{i}"))
        .bind(&alice_id)
        .execute(&db)
        .await
        .expect("fill");
    }
    assert_eq!(app.post("/lists", Some(&alice), json!({"name": "100th"})).await.status, StatusCode::CREATED);
    app.post("/lists", Some(&alice), json!({"name": "101st"})).await.assert_error(409, "limit_reached");

    assert_eq!(delete(&app, &format!("/lists/{list}"), &alice).await.status, StatusCode::NO_CONTENT);
    app.get(&format!("/lists/{list}")).await.assert_error(404, "not_found");
    app.stop().await;
}

async fn community_writes_are_rate_limited_per_user(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let review = app.review(&alice, "mb:busy", 4.0).await;
    let like = format!("/reviews/{}/like", review["id"].as_str().expect("id"));
    let mut limited = None;
    for i in 0..60 {
        let r = if i % 2 == 0 { put(&app, &like, &bob, None).await } else { delete(&app, &like, &bob).await };
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let limited = limited.expect("60 quick writes meet the limit (5/s, bursts of 30)");
    limited.assert_error(429, "rate_limited");
    let wait: u64 = limited.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(put(&app, &like, &alice, None).await.status, StatusCode::OK, "another user is not held up");
    app.stop().await;
}

async fn racing_likes_and_list_additions_stay_consistent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let review = app.review(&alice, "mb:raced", 4.0).await;
    let like = format!("/reviews/{}/like", review["id"].as_str().expect("id"));
    let likes = futures_util::future::join_all((0..20).map(|_| put(&app, &like, &bob, None))).await;
    assert!(likes.iter().all(|r| r.status == StatusCode::OK), "every racing like answers 200");
    assert_eq!(ok(&app.get(&format!("/reviews/{}", review["id"].as_str().expect("id"))).await)["likes"], 1);

    let r = app.post("/lists", Some(&alice), json!({"name": "raced"})).await;
    let items = format!("/lists/{}/items", r.body["id"].as_str().expect("id"));
    let adds = (0..20).map(|i| app.post(&items, Some(&alice), json!({"albumId": format!("mb:r{i}")})));
    let added = futures_util::future::join_all(adds).await;
    assert!(added.iter().all(|r| r.status == StatusCode::CREATED), "every racing addition lands");
    let list = ok(&app.get(&items.replace("/items", "")).await).clone();
    let albums: HashSet<&str> =
        list["items"].as_array().expect("items").iter().filter_map(|i| i["albumId"].as_str()).collect();
    assert_eq!(albums.len(), 20, "all twenty, once each");
    let positions: Vec<i64> =
        list["items"].as_array().expect("items").iter().filter_map(|i| i["position"].as_i64()).collect();
    assert_eq!(positions, (1..=20).collect::<Vec<_>>());
    // Stored positions are distinct too (the list's row lock serializes the additions),
    // so the order is the order they were added in, not a tie broken by album id.
    let db = app.review_db().await;
    let distinct: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT position) FROM list_items WHERE list_id = $1")
        .bind(list["id"].as_str().expect("id"))
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(distinct, 20);
    app.stop().await;
}

async fn an_items_note_is_edited_by_the_lists_owner_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let r = app.post("/lists", Some(&alice), json!({"name": "Mornings"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let list = r.body["id"].as_str().expect("id").to_owned();
    for album in ["mb:a", "mb:b"] {
        let r = app.post(&format!("/lists/{list}/items"), Some(&alice), json!({"albumId": album, "note": "old"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let item = format!("/lists/{list}/items/mb:b");
    let edited = ok(&put(&app, &item, &alice, Some(json!({"note": "with coffee"}))).await).clone();
    let notes: Vec<&Value> = edited["items"].as_array().expect("items").iter().map(|i| &i["note"]).collect();
    assert_eq!(notes, [&json!("old"), &json!("with coffee")], "only that album's note, in place");
    assert_eq!(ok(&app.get(&format!("/lists/{list}")).await)["items"][1]["note"], "with coffee", "stored");

    put(&app, &item, &bob, Some(json!({"note": "mine now"}))).await.assert_error(403, "forbidden");
    put(&app, &format!("/lists/{list}/items/mb:zzz"), &alice, Some(json!({"note": "x"})))
        .await
        .assert_error(404, "not_found");
    put(&app, &item, &alice, Some(json!({"note": "n".repeat(1001)}))).await.assert_invalid("note");
    put(&app, &item, &alice, Some(json!({}))).await.assert_invalid("note");
    assert_eq!(
        ok(&app.get(&format!("/lists/{list}")).await)["items"][1]["note"],
        "with coffee",
        "refused edits changed nothing"
    );
    app.stop().await;
}
