//! Two review replicas sharing PostgreSQL, Redis and a signing key behave as one service.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn replica(db: &str, data_dir: &std::path::Path, token: &CancellationToken) -> String {
    let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), data_dir.to_path_buf());
    settings.service.database_url = Some(db.parse().expect("db url"));
    settings.redis_url = Some(liner_shared::testkit::redis_url());
    // Redis keeps counts across tests and runs: sign-ups from loopback are not limited here.
    settings.registrations_per_address = 0;
    let running = liner_review::build(settings).await.expect("replica starts");
    let base = format!("http://{}/api/users-reviews", running.addr());
    tokio::spawn(running.run_until(token.clone()));
    base
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

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_liner"))
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut banner)
        .expect("banner");
    assert!(banner.starts_with("Liner is up"), "{banner}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("term");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
