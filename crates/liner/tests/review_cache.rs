//! The review service's caches across two replicas, in a test binary of its own: the
//! album-page load counter it reads is process-wide (one metrics registry), so no other
//! test may read album pages in the same process.

mod common;

use common::{json_of, replica_at};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Album pages and profiles come from the cache — a cold page is loaded once however
/// many readers arrive together, and the other replica takes it from Redis — yet every
/// write is read back at once on either replica (pages and the author's profile), the
/// owner's own profile (with the email) is never cached, and with Redis stopped reads
/// still answer from the database. (A Redis of this test's own: it is stopped midway.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn album_pages_and_profiles_are_cached_yet_every_write_is_read_back_on_either_replica() {
    use liner_shared::throwaway::{RedisOptions, ThrowawayRedis};
    let redis = ThrowawayRedis::start(RedisOptions::default()).expect("a Redis of its own");
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let a = replica_at(&db, data_dir.path(), redis.url(), &stop).await;
    let b = replica_at(&db, data_dir.path(), redis.url(), &stop).await;
    let http = reqwest::Client::new();
    let api = |base: &str, path: &str| format!("{base}/api/users-reviews{path}");
    let album = "rg-cache-test";
    let page = async |base: &str| -> Value {
        let res = http.get(api(base, &format!("/reviews/album/{album}"))).send().await.expect("sent");
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    };
    // Both replicas are in this process: one metrics registry counts both.
    let loads = async || -> f64 {
        let text = http.get(format!("{a}/metrics")).send().await.expect("sent").text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("review_album_page_loads_total "))
            .map_or(0.0, |v| v.trim().parse().expect("number"))
    };
    let (mut tokens, mut user_ids) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let (name, password) = (format!("cachefan{i}"), "password1");
        let body = json!({"username": name, "password": password, "email": format!("{name}@example.com")});
        assert_eq!(http.post(api(&a, "/users/register")).json(&body).send().await.expect("sent").status(), 201);
        let login =
            json_of(http.post(api(&a, "/users/login")).json(&json!({"username": name, "password": password}))).await;
        tokens.push(login["token"].as_str().expect("token").to_owned());
        user_ids.push(login["user"]["id"].as_str().expect("user id").to_owned());
    }

    // A cold page, 200 readers at once: one database load.
    let before = loads().await;
    let readers: Vec<_> = (0..200).map(|_| page(&a)).collect();
    let pages = futures_util::future::join_all(readers).await;
    assert!(pages.iter().all(|p| p == &pages[0] && p["total"] == 0), "every reader got the same page");
    assert_eq!(loads().await - before, 1.0, "200 concurrent readers of a cold album: one load");
    // The other replica takes the page from Redis, not from the database.
    for _ in 0..20 {
        assert_eq!(page(&b).await, pages[0]);
    }
    assert_eq!(loads().await - before, 1.0, "the other replica's reads came from the cache");

    // Every write is read back at once, on the other replica.
    let mut ids = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let body = json!({"albumId": album, "rating": 3.0, "reviewText": format!("take {i}")});
        let res = http.post(api(writer, "/reviews")).bearer_auth(token).json(&body).send().await.expect("sent");
        assert_eq!(res.status(), 201);
        let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
        let seen = page(reader).await;
        assert_eq!(seen["total"], i + 1, "write {i} on one replica, read on the other: {seen}");
        assert!(seen["items"].as_array().expect("items").iter().any(|r| r["id"] == id.as_str()), "review {i} listed");
        ids.push(id);
    }
    let res = http.put(api(&b, &format!("/reviews/{}", ids[0]))).bearer_auth(&tokens[0]).json(&json!({"rating": 5.0}));
    assert_eq!(res.send().await.expect("sent").status(), 200);
    let seen = page(&a).await;
    let first = seen["items"].as_array().expect("items").iter().find(|r| r["id"] == ids[0].as_str()).cloned();
    assert_eq!(first.expect("still listed")["rating"], 5.0, "an update is read back on the other replica");
    let res = http.delete(api(&a, &format!("/reviews/{}", ids[1]))).bearer_auth(&tokens[1]).send().await.expect("sent");
    assert_eq!(res.status(), 204);
    let seen = page(&b).await;
    assert_eq!(seen["total"], 3, "a delete is read back on the other replica: {seen}");

    // Profiles are cached too (for everyone but their owner) and follow the same writes.
    let profile = async |base: &str, token: Option<&str>| {
        let req = http.get(api(base, &format!("/users/profile/{}", user_ids[0])));
        json_of(match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
        .await
    };
    let seen = profile(&b, None).await;
    assert_eq!((seen["reviewCount"].clone(), seen["averageRating"].clone()), (json!(1), json!(5.0)), "{seen}");
    assert!(seen.get("email").is_none(), "a cached profile never carries the email: {seen}");
    let body = json!({"albumId": "rg-cache-other", "rating": 1.0, "reviewText": ""});
    let res = http.post(api(&a, "/reviews")).bearer_auth(&tokens[0]).json(&body).send().await.expect("sent");
    assert_eq!(res.status(), 201);
    let seen = profile(&b, None).await;
    assert_eq!((seen["reviewCount"].clone(), seen["averageRating"].clone()), (json!(2), json!(3.0)), "{seen}");
    assert!(profile(&b, Some(&tokens[0])).await["email"].is_string(), "the owner sees the email");
    assert!(profile(&b, None).await.get("email").is_none(), "and no one else does after that");

    // Redis stopped: reads still answer, from the database, and see new writes.
    redis.stop();
    let body = json!({"albumId": album, "rating": 1.0, "reviewText": "while Redis is away"});
    let res = http.post(api(&a, "/reviews")).bearer_auth(&tokens[1]).json(&body).send().await.expect("sent");
    assert_eq!(res.status(), 201, "writes do not need Redis");
    for base in [&a, &b] {
        assert_eq!(page(base).await["total"], 4, "read with Redis stopped");
    }
    // Redis back (empty): pages are cached again, and still right.
    redis.start_again().expect("Redis restarts");
    for base in [&a, &b, &a, &b] {
        assert_eq!(page(base).await["total"], 4, "read after Redis came back");
    }
    stop.cancel();
}
