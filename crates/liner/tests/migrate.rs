//! `liner migrate <service>` and `--migrations verify`: how a cluster migrates once (a
//! Job) while its replicas only check the schema, so replicas starting together do not
//! race and a failed migration does not crash-loop the serving pods; and `liner probe`,
//! the health check of the shell-less image.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `liner <args…>` configured by its arguments only (nothing inherited from `LINER_*`).
fn liner(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liner"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("LINER_") || key == "DATABASE_URL" || key == "REDIS_URL" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    liner(args).output().expect("liner runs")
}

/// The `liner:` lines a failed command printed (its one-line reason).
fn reasons(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("liner:")).map(str::to_owned).collect()
}

/// The address a child said it listens on (`… listening service=… addr=HOST:PORT`),
/// read from its log on stderr: it binds port 0, nothing picks a port for it.
fn listening_addr(child: &mut Child) -> String {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.contains("listening").then(|| line.split("addr=").nth(1).map(str::to_owned)).flatten())
        .expect("the child logs its address");
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    addr.trim().to_owned()
}

/// Kills the child when the test ends, whatever happened.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_verify_starts_and_verify_refuses_an_empty_database() {
    let db = liner_shared::testkit::fresh_pg_database().await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir.path().to_str().expect("utf-8 path");
    // On PostgreSQL the replicas are given their signing key (none is generated).
    liner_review::keys::Signer::load_or_generate(&std::path::Path::new(data_dir).join("review-jwt-ed25519.pem"), 60)
        .expect("a signing key");
    let review =
        ["review", "--listen", "127.0.0.1:0", "--database-url", &db, "--data-dir", data_dir, "--migrations", "verify"];

    // An empty database: the serving process changes nothing and says why in one line.
    let out = run(&review);
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
    let mut child = Killed(liner(&review).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn"));
    let addr = listening_addr(&mut child.0);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = http.get(format!("http://{addr}/readyz")).send().await
            && res.status().is_success()
        {
            break;
        }
        assert!(child.0.try_wait().expect("wait").is_none(), "review exited instead of serving");
        assert!(Instant::now() < deadline, "review did not become ready in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // `liner probe`, the image's health check, agrees; a closed port fails in one line.
    let out = run(&["probe", &format!("http://{addr}/readyz")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Port 1 on loopback: nothing listens there.
    let out = run(&["probe", "http://127.0.0.1:1/readyz"]);
    assert!(!out.status.success());
    assert_eq!(reasons(&out).len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
}
