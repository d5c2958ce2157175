//! The review API driven over HTTP through the gateway of a real `liner up`, on SQLite
//! and on PostgreSQL.

mod common;

use common::{Backend, TestApp, json_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

liner_shared::on_both_backends!(
    register_login_and_profile,
    registration_rules,
    malformed_requests_get_the_error_shape,
    login_failures_lock_out,
    review_lifecycle_and_ownership,
    review_field_rules,
    album_listing_aggregates_and_pages,
    album_listing_sorts,
    concurrent_duplicate_reviews_create_one,
    concurrent_registrations_create_one,
);

async fn register_login_and_profile(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = app
        .post(
            "/users/register",
            None,
            json!({"username": "Mingus_1959", "password": "ah um ah um", "email": "Charles@Example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(r.body["username"], "Mingus_1959");
    assert_eq!(r.body["email"], "Charles@Example.com");
    assert!(r.body["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", r.body);
    assert!(r.body.get("password").is_none() && r.body.get("passwordHash").is_none());

    // Usernames are case-insensitive at login; email works too.
    let r = app.post("/users/login", None, json!({"username": "mingus_1959", "password": "ah um ah um"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tokenType"], "Bearer");
    assert!(r.body["expiresIn"].as_i64().is_some_and(|s| s > 0));
    assert_eq!(r.body["user"], json!({"id": id, "username": "Mingus_1959"}));
    let token = r.body["token"].as_str().expect("token").to_owned();
    let r = app.post("/users/login", None, json!({"username": "charles@example.com", "password": "ah um ah um"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Public profile hides the email; the user's own view shows it.
    let r = app.get(&format!("/users/profile/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["username"], "Mingus_1959");
    assert_eq!(r.body["reviewCount"], 0);
    assert_eq!(r.body["averageRating"], Value::Null);
    assert!(r.body.get("email").is_none(), "{}", r.body);
    let r = app.call(Method::GET, &format!("/users/profile/{id}"), Some(&token), None).await;
    assert_eq!(r.body["email"], "Charles@Example.com");

    app.review(&token, "album-1", 4.0).await;
    app.review(&token, "album-2", 3.0).await;
    let r = app.get(&format!("/users/profile/{id}")).await;
    assert_eq!(r.body["reviewCount"], 2);
    assert_eq!(r.body["averageRating"], 3.5);

    app.get("/users/profile/nobody").await.assert_error(404, "not_found");
    app.stop().await;
}

async fn registration_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let reg = |u: &str, p: &str, e: &str| json!({"username": u, "password": p, "email": e});
    for (body, field) in [
        (reg("ab", "password1", "a@x.io"), "username"),
        (reg(&"a".repeat(33), "password1", "a@x.io"), "username"),
        (reg("bad name", "password1", "a@x.io"), "username"),
        (reg("björk", "password1", "a@x.io"), "username"),
        (reg("名前です", "password1", "a@x.io"), "username"),
        (reg("okname", "short", "a@x.io"), "password"),
        (reg("okname", &"p".repeat(129), "a@x.io"), "password"),
        (reg("okname", "password1", "not-an-email"), "email"),
        (reg("okname", "password1", "a@b"), "email"),
    ] {
        app.post("/users/register", None, body).await.assert_invalid(field);
    }
    // Boundaries are accepted.
    let r = app.post("/users/register", None, reg("a.b", &"p".repeat(128), "edge@x.io")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let r = app.post("/users/register", None, reg("Coltrane", "password1", "john@x.io")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.post("/users/register", None, reg("COLTRANE", "password1", "other@x.io"))
        .await
        .assert_error(409, "username_taken");
    app.post("/users/register", None, reg("alice", "password1", "JOHN@x.io")).await.assert_error(409, "email_taken");
    app.stop().await;
}

async fn malformed_requests_get_the_error_shape(backend: Backend) {
    let app = TestApp::start(backend).await;
    let url = format!("{}/users/register", app.base);
    let send = |body: String, ct: &'static str| {
        let req = app.http.post(&url).header("content-type", ct).body(body);
        async move { common::Resp::from(req.send().await.expect("sent")).await }
    };
    send("{\"username\": ".into(), "application/json").await.assert_error(400, "malformed_json");
    send("not json".into(), "application/json").await.assert_error(400, "malformed_json");
    send(r#"{"username":"abc","password":"password1","email":"a@x.io"}"#.into(), "text/plain")
        .await
        .assert_error(415, "unsupported_media_type");
    let r =
        send(r#"{"username":"abc","password":"password1","email":"a@x.io","admin":true}"#.into(), "application/json")
            .await;
    r.assert_invalid("admin");
    send(r#"{"username":"abc","password":"password1"}"#.into(), "application/json").await.assert_invalid("email");
    send(r#"{"username":42,"password":"password1","email":"a@x.io"}"#.into(), "application/json")
        .await
        .assert_error(422, "invalid_field");
    let huge =
        format!(r#"{{"username":"abc","password":"password1","email":"a@x.io","x":"{}"}}"#, "x".repeat(70 * 1024));
    send(huge, "application/json").await.assert_error(413, "payload_too_large");

    app.get("/no/such/route").await.assert_error(404, "not_found");
    app.call(Method::PATCH, "/users/register", None, None).await.assert_error(405, "method_not_allowed");
    app.get("/reviews/album/x?limit=abc").await.assert_error(400, "bad_query");
    // Nothing above created a user.
    let r = app.post("/users/login", None, json!({"username": "abc", "password": "password1"})).await;
    r.assert_error(401, "unauthorized");
    app.stop().await;
}

async fn login_failures_lock_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.user("victim").await;
    let wrong = app.post("/users/login", None, json!({"username": "victim", "password": "wrong password"})).await;
    wrong.assert_error(401, "unauthorized");
    let unknown = app.post("/users/login", None, json!({"username": "nobody", "password": "wrong password"})).await;
    unknown.assert_error(401, "unauthorized");
    assert_eq!(wrong.body["error"]["message"], unknown.body["error"]["message"], "no user enumeration");
    // The account is what is counted: its name in any case and its email share one counter.
    for typed in ["VICTIM", "victim@example.com", "Victim@Example.COM", "vIcTiM"] {
        app.post("/users/login", None, json!({"username": typed, "password": "wrong password"}))
            .await
            .assert_error(401, "unauthorized");
    }
    // Five failures: even the right password is refused until the window passes.
    let r = app.post("/users/login", None, json!({"username": "victim", "password": "correct horse"})).await;
    r.assert_error(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    app.stop().await;
}

async fn review_lifecycle_and_ownership(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice_id, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let text = "Ünïcödé ✓ — 日本語 🎷\u{200d}\n\t\"quoted\" \\ back";
    let r = app
        .post(
            "/reviews",
            Some(&alice),
            json!({"userId": alice_id, "albumId": "mbid:1a2b-3c.4_d", "rating": 4.5, "reviewText": text}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let review = r.body.clone();
    let id = review["id"].as_str().expect("id").to_owned();
    assert_eq!(review["reviewText"], text, "text kept byte for byte");
    assert_eq!(review["rating"], 4.5);
    assert_eq!(review["userId"], alice_id.as_str());
    assert_eq!(review["username"], "alice");
    assert_eq!(review["createdAt"], review["updatedAt"]);

    let r = app.get(&format!("/reviews/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, review, "read back equals what was acknowledged");

    // One review per user per album.
    let r = app
        .post("/reviews", Some(&alice), json!({"albumId": "mbid:1a2b-3c.4_d", "rating": 1.0, "reviewText": ""}))
        .await;
    r.assert_error(409, "review_exists");
    assert_eq!(r.body["error"]["existingId"], id.as_str());

    // userId in the body must be the token's user.
    app.post("/reviews", Some(&bob), json!({"userId": alice_id, "albumId": "other", "rating": 3.0, "reviewText": ""}))
        .await
        .assert_error(403, "forbidden");

    // Only the author may change or delete.
    let path = format!("/reviews/{id}");
    let put = async |token: &str, body: Value| app.call(Method::PUT, &path, Some(token), Some(body)).await;
    put(&bob, json!({"rating": 1.0})).await.assert_error(403, "forbidden");
    app.call(Method::DELETE, &format!("/reviews/{id}"), Some(&bob), None).await.assert_error(403, "forbidden");
    app.call(Method::DELETE, &format!("/reviews/{id}"), None, None).await.assert_error(401, "unauthorized");
    put(&alice, json!({})).await.assert_invalid("rating");
    put(&alice, json!({"rating": 4.25})).await.assert_invalid("rating");

    let r = put(&alice, json!({"rating": 2.5})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["rating"], 2.5);
    assert_eq!(r.body["reviewText"], text, "untouched field kept");
    assert_eq!(r.body["username"], "alice");
    let r = put(&alice, json!({"reviewText": ""})).await;
    assert_eq!(r.body["reviewText"], "");
    assert_eq!(app.get(&format!("/reviews/{id}")).await.body["rating"], 2.5);

    app.call(Method::PUT, "/reviews/missing", Some(&alice), Some(json!({"rating": 1.0})))
        .await
        .assert_error(404, "not_found");
    let r = app.call(Method::DELETE, &format!("/reviews/{id}"), Some(&alice), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&format!("/reviews/{id}")).await.assert_error(404, "not_found");
    app.call(Method::DELETE, &format!("/reviews/{id}"), Some(&alice), None).await.assert_error(404, "not_found");
    // Deleting frees the slot: a new review for the album is allowed.
    app.review(&alice, "mbid:1a2b-3c.4_d", 5.0).await;
    app.stop().await;
}

async fn review_field_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, token) = app.user("critic").await;
    let post = |album: Value, rating: Value, text: Value| {
        app.post("/reviews", Some(&token), json!({"albumId": album, "rating": rating, "reviewText": text}))
    };
    for rating in [json!(0), json!(0.25), json!(5.5), json!(-1), json!(4.75), json!(100)] {
        post(json!("a"), rating, json!("")).await.assert_invalid("rating");
    }
    post(json!("a"), json!("4.5"), json!("")).await.assert_error(422, "invalid_field");
    for album in [json!(""), json!("x".repeat(65)), json!("has space"), json!("slash/no"), json!("ü")] {
        post(album, json!(3), json!("")).await.assert_invalid("albumId");
    }
    post(json!("long"), json!(3), json!("é".repeat(10_001))).await.assert_invalid("reviewText");
    let r = post(json!("long"), json!(3), json!("é".repeat(10_000))).await;
    assert_eq!(r.status, StatusCode::CREATED, "10,000 characters are allowed");
    let r = app.post("/reviews", Some(&token), json!({"albumId": "no-text", "rating": 0.5})).await;
    assert_eq!(r.status, StatusCode::CREATED, "reviewText may be omitted: {}", r.body);
    assert_eq!(r.body["reviewText"], "");
    let r = post(json!("x".repeat(64)), json!(5), json!("")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.stop().await;
}

async fn album_listing_aggregates_and_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let r = app.get("/reviews/album/empty").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 0);
    assert_eq!(r.body["averageRating"], Value::Null);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["nextCursor"], Value::Null);
    assert_eq!(r.body["histogram"].as_object().map(|h| h.len()), Some(10));

    let ratings = [5.0, 4.5, 4.5, 3.0, 0.5];
    for (i, rating) in ratings.iter().enumerate() {
        let (_, token) = app.user(&format!("user{i}")).await;
        app.review(&token, "kind-of-blue", *rating).await;
    }
    let r = app.get("/reviews/album/kind-of-blue").await;
    assert_eq!(r.body["albumId"], "kind-of-blue");
    assert_eq!(r.body["total"], 5);
    assert_eq!(r.body["averageRating"], 3.5);
    let h = &r.body["histogram"];
    assert_eq!(
        (h["5.0"].as_i64(), h["4.5"].as_i64(), h["3.0"].as_i64(), h["0.5"].as_i64(), h["1.0"].as_i64()),
        (Some(1), Some(2), Some(1), Some(1), Some(0))
    );

    // Page through two at a time: every review exactly once, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let q = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let r = app.get(&format!("/reviews/album/kind-of-blue?limit=2{q}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["total"], 5);
        seen.extend(
            r.body["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("id").to_owned()),
        );
        cursor = r.body["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 5, "no review twice");

    for bad in ["limit=0", "limit=101", "limit=-1", "sort=best", "cursor=garbage", "unknown=1"] {
        app.get(&format!("/reviews/album/kind-of-blue?{bad}")).await.assert_error(400, "bad_query");
    }
    let newest_cursor =
        app.get("/reviews/album/kind-of-blue?limit=1").await.body["nextCursor"].as_str().expect("c").to_owned();
    app.get(&format!("/reviews/album/kind-of-blue?sort=highest&cursor={newest_cursor}"))
        .await
        .assert_error(400, "bad_query");
    app.get("/reviews/album/bad%20album").await.assert_invalid("albumId");
    app.stop().await;
}

async fn album_listing_sorts(backend: Backend) {
    let app = TestApp::start(backend).await;
    let ratings = [3.0, 5.0, 1.0, 4.0];
    for (i, rating) in ratings.iter().enumerate() {
        let (_, token) = app.user(&format!("sorter{i}")).await;
        app.review(&token, "a", *rating).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await; // distinct createdAt
    }
    let order = |sort: &'static str| {
        let app = &app;
        async move {
            let mut all = Vec::new();
            let mut cursor = String::new();
            loop {
                let r = app.get(&format!("/reviews/album/a?sort={sort}&limit=1{cursor}")).await;
                all.extend(
                    r.body["items"].as_array().expect("items").iter().map(|i| i["rating"].as_f64().expect("rating")),
                );
                match r.body["nextCursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => return all,
                }
            }
        }
    };
    assert_eq!(order("newest").await, vec![4.0, 1.0, 5.0, 3.0]);
    assert_eq!(order("oldest").await, vec![3.0, 5.0, 1.0, 4.0]);
    assert_eq!(order("highest").await, vec![5.0, 4.0, 3.0, 1.0]);
    assert_eq!(order("lowest").await, vec![1.0, 3.0, 4.0, 5.0]);
    app.stop().await;
}

async fn concurrent_duplicate_reviews_create_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, token) = app.user("racer").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (http, url, token) = (app.http.clone(), format!("{}/reviews", app.base), token.clone());
        tasks.spawn(async move {
            let body = json!({"albumId": "race", "rating": 3.0, "reviewText": format!("attempt {i}")});
            http.post(url).bearer_auth(token).json(&body).send().await.expect("sent").status()
        });
    }
    let statuses: Vec<StatusCode> = tasks.join_all().await;
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 49), "{statuses:?}");
    assert_eq!(app.get("/reviews/album/race").await.body["total"], 1);
    app.stop().await;
}

async fn concurrent_registrations_create_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (http, url) = (app.http.clone(), format!("{}/users/register", app.base));
        tasks.spawn(async move {
            let name = if i % 2 == 0 { "Popular" } else { "popular" };
            let body = json!({"username": name, "password": "password1", "email": format!("p{i}@x.io")});
            http.post(url).json(&body).send().await.expect("sent").status()
        });
    }
    let statuses: Vec<StatusCode> = tasks.join_all().await;
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 49), "{statuses:?}");
    app.stop().await;
}

/// A caller that is not a trusted proxy cannot pick the address its failures count under:
/// `X-Forwarded-For` from it is ignored (here a review service trusting no proxy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_caller_cannot_spoof_its_address_past_the_lockout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let review = liner_review::build(liner_review::Settings::new(([127, 0, 0, 1], 0).into(), dir.path().into()))
        .await
        .expect("review");
    let base = format!("http://{}/api/users-reviews", review.addr());
    let stop = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(review.run_until(stop.clone()));
    let http = reqwest::Client::new();
    let login = async |n: usize| {
        http.post(format!("{base}/users/login"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .json(&json!({"username": format!("nobody{n}"), "password": "wrong password"}))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    };
    for n in 0..30 {
        assert_eq!(login(n).await, 401, "attempt {n}");
    }
    assert_eq!(login(30).await, 429, "30 failures from one peer, whatever it claims to be");
    stop.cancel();
    let _ = served.await;
}

/// Sign-ups are limited per client address (as the trusted gateway names it), and the
/// count is shared by replicas through Redis: three accounts per address here, the
/// fourth is refused on either replica while another address still signs up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_client_address_across_replicas() {
    let stop = tokio_util::sync::CancellationToken::new();
    let mut dirs = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), dir.path().into());
        settings.redis_url = Some(liner_shared::testkit::redis_url());
        settings.trusted_proxies = liner_shared::net::TrustedProxies::loopback();
        settings.registrations_per_address = 3;
        let review = liner_review::build(settings).await.expect("review");
        bases.push(format!("http://{}/api/users-reviews", review.addr()));
        tokio::spawn(review.run_until(stop.clone()));
        dirs.push(dir);
    }
    // Redis outlives the test: an address of this run's own.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let (pid, nanos) = (std::process::id() & 0xffff, nanos & 0xffff);
    let (client, other) = (format!("2001:db8::{pid:x}:{nanos:x}"), format!("2001:db8:1::{pid:x}:{nanos:x}"));
    let http = reqwest::Client::new();
    let register = async |base: &str, from: &str, name: &str| {
        http.post(format!("{base}/users/register"))
            .header("x-forwarded-for", from)
            .json(&json!({"username": name, "password": "password1", "email": format!("{name}@example.com")}))
            .send()
            .await
            .expect("sent")
    };
    for (n, base) in [&bases[0], &bases[1], &bases[0]].into_iter().enumerate() {
        assert_eq!(register(base, &client, &format!("early{n}")).await.status(), 201, "sign-up {n}");
    }
    for base in &bases {
        let refused = register(base, &client, "late").await;
        assert_eq!(refused.status(), 429, "the fourth sign-up from one address, on either replica");
        let wait: u64 = refused.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
        assert!((1..=3600).contains(&wait), "retry-after {wait}");
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    assert_eq!(register(&bases[1], &other, "elsewhere").await.status(), 201, "another address");
    stop.cancel();
}

/// A key rotation logs no one out: with the new key current and the old one configured
/// as previous, the JWKS publishes both, new tokens are signed with the new key, and a
/// token signed with the old key still writes. Without the previous key it would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_keeps_earlier_tokens_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (old_key, new_key) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    liner_review::keys::Signer::load_or_generate(&new_key, 60).expect("new key");
    let start = async |current: &std::path::Path, previous: Option<&std::path::Path>| {
        let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), dir.path().into());
        settings.jwt_key_file = Some(current.into());
        settings.jwt_previous_key_file = previous.map(Into::into);
        let review = liner_review::build(settings).await.expect("review");
        let base = format!("http://{}/api/users-reviews", review.addr());
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(review.run_until(stop.clone()));
        (base, stop)
    };
    let http = reqwest::Client::new();
    let login = async |base: &str| -> String {
        let body = json!({"username": "rotor", "password": "password1"});
        let v = json_of(http.post(format!("{base}/users/login")).json(&body)).await;
        v["token"].as_str().expect("token").to_owned()
    };
    let kid = |token: &str| jsonwebtoken::decode_header(token).expect("header").kid.expect("kid");
    let write = async |base: &str, token: &str, album: &str| {
        let body = json!({"albumId": album, "rating": 4.0, "reviewText": ""});
        http.post(format!("{base}/reviews")).bearer_auth(token).json(&body).send().await.expect("sent").status()
    };

    // Before: the old key signs.
    let (base, stop) = start(&old_key, None).await;
    let body = json!({"username": "rotor", "password": "password1", "email": "rotor@example.com"});
    assert_eq!(http.post(format!("{base}/users/register")).json(&body).send().await.expect("sent").status(), 201);
    let old_token = login(&base).await;
    stop.cancel();

    // During: new key current, old key previous.
    let (base, stop) = start(&new_key, Some(&old_key)).await;
    let jwks: Value =
        http.get(format!("{base}/.well-known/jwks.json")).send().await.expect("sent").json().await.expect("json");
    let kids: Vec<&str> =
        jwks["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid")).collect();
    let new_token = login(&base).await;
    assert_eq!(kids, [kid(&new_token), kid(&old_token)], "the JWKS lists the current key, then the previous");
    assert_ne!(kid(&new_token), kid(&old_token), "new tokens are signed with the new key");
    assert_eq!(write(&base, &old_token, "rg-rotation-1").await, 201, "a token of the old key still writes");
    assert_eq!(write(&base, &new_token, "rg-rotation-2").await, 201, "a token of the new key writes");
    stop.cancel();

    // After the old tokens' lifetime the previous key is dropped: they stop verifying.
    let (base, stop) = start(&new_key, None).await;
    assert_eq!(write(&base, &old_token, "rg-rotation-3").await, 401, "the old key is no longer trusted");
    stop.cancel();
}
