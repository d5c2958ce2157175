//! An acknowledged review survives SIGKILL of the process that acknowledged it.
//! Runs the real `liner up` binary as a child process, kills it, starts it again.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::Backend;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

liner_shared::on_both_backends!(acknowledged_review_survives_sigkill);

/// Starts `liner up` on a free port; returns the child and the gateway base URL.
fn start(data_dir: &std::path::Path, db: &Option<String>) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liner"));
    cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
    if let Some(url) = db {
        cmd.env("LINER_REVIEW_DATABASE_URL", url);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn liner");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read banner");
    let site = line.trim().strip_prefix("Liner is up: ").expect("banner").trim_end_matches('/');
    (child, format!("{site}/api/users-reviews"))
}

async fn acknowledged_review_survives_sigkill(backend: Backend) {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let db = common::fresh_database(backend).await.map(|u| u.as_str().to_owned());
    let (child, base) = start(data_dir.path(), &db);
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

    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).expect("kill -9");
    let mut child = child;
    child.wait().expect("reaped");

    let (mut child, base) = start(data_dir.path(), &db);
    for review in &acked {
        let r = http.get(format!("{base}/reviews/{}", review["id"].as_str().expect("id"))).send().await.expect("sent");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(&r.json::<Value>().await.expect("json"), review, "the acknowledged review, unchanged");
    }
    // The signing key survived too: the old token still works.
    let r = post(format!("{base}/reviews"), json!({"albumId": "after-restart", "rating": 1.0}), Some(token)).await;
    assert_eq!(r.status().as_u16(), 201);
    let _ = child.kill();
    let _ = child.wait();
}
