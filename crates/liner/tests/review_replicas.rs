//! Two review replicas sharing PostgreSQL, Redis and a signing key behave as one service.

mod common;
#[path = "common/procs.rs"]
mod procs;

use std::time::Duration;

use common::replica_at;
use procs::{Logs, start};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A review replica on `db` and the shared test Redis; its API base URL.
async fn replica(db: &str, data_dir: &std::path::Path, token: &CancellationToken) -> String {
    let root = replica_at(db, data_dir, liner_shared::testkit::redis_url(), token).await;
    format!("{root}/api/users-reviews")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_users_tokens_and_login_lockout() {
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let stop = CancellationToken::new();
    let a = replica(&db, data_dir.path(), &stop).await;
    let b = replica(&db, data_dir.path(), &stop).await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let req = http.post(url).json(&body);
        async move { req.send().await.expect("sent") }
    };
    // A name no other run has used: the Redis counters outlive the test database.
    let name = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let r = post(
        format!("{a}/users/register"),
        json!({"username": name, "password": "password1", "email": format!("{name}@x.io")}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);

    // A token from B works on A (same key), and A sees B's writes (same database).
    let r = post(format!("{b}/users/login"), json!({"username": name, "password": "password1"})).await;
    let token = r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    let r = http
        .post(format!("{a}/reviews"))
        .bearer_auth(&token)
        .json(&json!({"albumId": "shared", "rating": 3.5}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status().as_u16(), 201);
    let r = http.get(format!("{b}/reviews/album/shared")).send().await.expect("sent");
    assert_eq!(r.json::<Value>().await.expect("json")["total"], 1);

    // Failures counted on A lock the account on B.
    for _ in 0..5 {
        let r = post(format!("{a}/users/login"), json!({"username": name, "password": "wrong one"})).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = post(format!("{b}/users/login"), json!({"username": name, "password": "password1"})).await;
    assert_eq!(r.status().as_u16(), 429, "lockout is shared through Redis");
    assert!(r.headers().contains_key("retry-after"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let logs = Logs::new();
    let args = ["up", "--data-dir", data_dir.path().to_str().expect("utf-8 path")].map(str::to_owned);
    let mut up = start(&logs, "up", &args).await;
    up.logged(&["liner is up"], procs::START_BOUND).await;
    up.sigterm();
    let status = up.exit_status(Duration::from_secs(20)).await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}
