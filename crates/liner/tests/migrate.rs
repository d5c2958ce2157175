//! `liner migrate <service>` and `--migrations verify`: how a cluster migrates once (a
//! Job) while its replicas only check the schema, so replicas starting together do not
//! race and a failed migration does not crash-loop the serving pods; and `liner probe`,
//! the health check of the shell-less image.

#[path = "common/procs.rs"]
mod procs;

use std::process::Output;

use procs::{Logs, liner, ready, start};

fn run(args: &[&str]) -> Output {
    liner(args).output().expect("liner runs")
}

/// The `liner:` lines a failed command printed (its one-line reason).
fn reasons(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("liner:")).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_verify_starts_and_verify_refuses_an_empty_database() {
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir.path().to_str().expect("utf-8 path");
    // On PostgreSQL the replicas are given their signing key (none is generated).
    liner_review::keys::Signer::load_or_generate(&std::path::Path::new(data_dir).join("review-jwt-ed25519.pem"), 60)
        .expect("a signing key");
    let review = ["review", "--database-url", &db, "--data-dir", data_dir, "--migrations", "verify"].map(str::to_owned);

    // An empty database: the serving process changes nothing and says why in one line.
    let out = liner(&review).args(["--listen", "127.0.0.1:0"]).output().expect("liner runs");
    assert!(!out.status.success(), "verify on an empty database must fail");
    let lines = reasons(&out);
    assert_eq!(lines.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(lines[0].contains("not migrated") && lines[0].contains("liner migrate"), "{}", lines[0]);

    // The Job's command, twice: the second run finds nothing to do.
    for _ in 0..2 {
        let out = run(&["migrate", "review", "--database-url", &db]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("review: migrations applied"));
    }

    // Now the replica starts with `verify` and becomes ready.
    let logs = Logs::new();
    let replica = start(&logs, "review", &review).await;
    ready(&reqwest::Client::new(), &replica).await;
    let addr = &replica.addr;

    // `liner probe`, the image's health check, agrees; a closed port fails in one line.
    let out = run(&["probe", &format!("http://{addr}/readyz")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Port 1 on loopback: nothing listens there.
    let out = run(&["probe", "http://127.0.0.1:1/readyz"]);
    assert!(!out.status.success());
    assert_eq!(reasons(&out).len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
}
