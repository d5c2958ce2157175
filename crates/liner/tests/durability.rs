//! An acknowledged review survives SIGKILL of the process that acknowledged it.
//! Runs the real `liner up` binary as a child process, kills it, starts it again.

mod common;
#[path = "common/procs.rs"]
mod procs;

use common::Backend;
use procs::{Logs, Proc, liner, spawn_command};
use serde_json::{Value, json};

liner_shared::on_both_backends!(acknowledged_review_survives_sigkill);

/// Starts `liner up` on port 0 (`common/procs.rs`) and waits until it says it is up;
/// returns it and the review API's base URL through its gateway.
async fn start(logs: &Logs, name: &str, data_dir: &std::path::Path, db: &Option<String>) -> (Proc, String) {
    let mut cmd = liner(&["up", "--listen", "127.0.0.1:0", "--data-dir"]);
    cmd.arg(data_dir);
    if let Some(url) = db {
        cmd.env("LINER_REVIEW_DATABASE_URL", url);
    }
    let mut up = spawn_command(logs, name, cmd, "gateway").listening().await;
    // Every service registered and routed to: what `liner up` logs before its banner.
    up.logged(&["liner is up"], procs::START_BOUND).await;
    let base = format!("{}/api/users-reviews", up.url());
    (up, base)
}

async fn acknowledged_review_survives_sigkill(backend: Backend) {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let db = common::fresh_database(backend).await.map(|u| u.as_str().to_owned());
    let logs = Logs::new();
    let (mut up, base) = start(&logs, "up", data_dir.path(), &db).await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value, token: Option<String>| {
        let mut req = http.post(url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.expect("sent") }
    };
    let r = post(
        format!("{base}/users/register"),
        json!({"username": "durable", "password": "password1", "email": "d@x.io"}),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let r = post(format!("{base}/users/login"), json!({"username": "durable", "password": "password1"}), None).await;
    let token = r.json::<Value>().await.expect("json")["token"].as_str().expect("token").to_owned();
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = post(
            format!("{base}/reviews"),
            json!({"albumId": format!("album-{i}"), "rating": 4.5, "reviewText": format!("review {i} ✓")}),
            Some(token.clone()),
        )
        .await;
        assert_eq!(r.status().as_u16(), 201);
        acked.push(r.json::<Value>().await.expect("json"));
    }

    up.kill9();

    let (_up, base) = start(&logs, "up-restarted", data_dir.path(), &db).await;
    for review in &acked {
        let r = http.get(format!("{base}/reviews/{}", review["id"].as_str().expect("id"))).send().await.expect("sent");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(&r.json::<Value>().await.expect("json"), review, "the acknowledged review, unchanged");
    }
    // The signing key survived too: the old token still works.
    let r = post(format!("{base}/reviews"), json!({"albumId": "after-restart", "rating": 1.0}), Some(token)).await;
    assert_eq!(r.status().as_u16(), 201);
}
