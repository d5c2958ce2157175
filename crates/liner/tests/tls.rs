//! TLS to the databases: PostgreSQL with `sslmode=verify-full` and Redis over
//! `rediss://`, on throwaway servers presenting a certificate of a CA the test makes (the
//! shared test servers are never reconfigured). A CA that did not sign the server's
//! certificate is refused at startup in one `liner:` line, without a hang.
//!
//! The forum's fan-out over `rediss://` is tested in `liner-forum/tests/tls.rs`.

#[path = "common/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use liner_shared::throwaway::{PostgresOptions, RedisOptions, TestCa, ThrowawayPostgres, ThrowawayRedis};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Servers that speak TLS only with a certificate of `ca`; `ca_file` trusts it,
/// `other_ca_file` trusts a CA that signed nothing here.
struct TlsBacking {
    pg: ThrowawayPostgres,
    redis: ThrowawayRedis,
    dir: tempfile::TempDir,
}

impl TlsBacking {
    fn start() -> Self {
        let ca = TestCa::new("liner test CA").expect("CA");
        let cert = ca.server_cert(&["127.0.0.1", "localhost"]).expect("server certificate");
        let pg = ThrowawayPostgres::start(PostgresOptions::with_tls_cert(&cert)).expect("PostgreSQL with ssl=on");
        let redis = ThrowawayRedis::start(RedisOptions::with_tls_cert(&cert)).expect("Redis with --tls-port");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("ca file");
        let other = TestCa::new("another CA").expect("CA");
        std::fs::write(dir.path().join("other-ca.pem"), other.cert_pem()).expect("ca file");
        Self { pg, redis, dir }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

async fn replica(backing: &TlsBacking, database_url: &str, token: &CancellationToken) -> String {
    let mut settings = liner_review::Settings::new(([127, 0, 0, 1], 0).into(), backing.dir.path().join("data"));
    settings.service.database_url = Some(database_url.parse().expect("db url"));
    settings.redis_url = Some(backing.redis.tls_url());
    settings.redis_tls.ca_file = Some(backing.ca_file());
    let running = liner_review::build(settings).await.expect("replica starts over TLS");
    let base = format!("http://{}/api/users-reviews", running.addr());
    tokio::spawn(running.run_until(token.clone()));
    base
}

/// Two review replicas whose only way to PostgreSQL and Redis is TLS, verified against
/// the test's CA: users registered on one log in on the other, every connection the
/// replicas hold to the database is encrypted, and failures counted on one lock the
/// account on the other (the counters live in the TLS-only Redis).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_replicas_serve_over_verify_full_postgres_and_share_lockout_over_rediss() {
    let backing = tokio::task::spawn_blocking(TlsBacking::start).await.expect("servers");
    let database = backing.pg.fresh_database().await.expect("database");
    let database = database.split('?').next().and_then(|u| u.rsplit('/').next()).expect("name").to_owned();
    let url = backing.pg.verify_full_url(&database, &backing.ca_file());
    let stop = CancellationToken::new();
    let a = replica(&backing, &url, &stop).await;
    let b = replica(&backing, &url, &stop).await;
    let http = reqwest::Client::new();
    let post = |url: String, body: Value| {
        let req = http.post(url).json(&body);
        async move { req.send().await.expect("sent") }
    };

    let r = post(format!("{a}/users/register"), json!({"username": "tls", "password": "password1", "email": "t@x.io"}))
        .await;
    assert_eq!(r.status().as_u16(), 201, "registered through the TLS database");
    let r = post(format!("{b}/users/login"), json!({"username": "tls", "password": "password1"})).await;
    assert_eq!(r.status().as_u16(), 200, "logged in on the other replica");

    // The replicas' pooled connections to the test database, seen by the server itself
    // (queried over its Unix socket, which is not part of the count).
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&backing.pg.url("postgres")).await.expect("admin");
    let (plain, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind(&database)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl");
    assert_eq!(plain, 0, "a replica holds an unencrypted database connection");
    assert!(encrypted > 0, "no encrypted connection from the replicas");

    for _ in 0..5 {
        let r = post(format!("{a}/users/login"), json!({"username": "tls", "password": "wrong one"})).await;
        assert_eq!(r.status().as_u16(), 401);
    }
    let r = post(format!("{b}/users/login"), json!({"username": "tls", "password": "password1"})).await;
    assert_eq!(r.status().as_u16(), 429, "the lockout is shared through Redis over TLS");
    stop.cancel();
}

/// `liner <args…>` configured by its arguments only, logging nothing but its error.
fn liner(args: &[&str], data_dir: &Path) -> Output {
    let mut cmd = procs::liner(args);
    cmd.env("LINER_LOG", "off").env("LINER_DATA_DIR", data_dir);
    let started = Instant::now();
    let out = cmd.output().expect("liner runs");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}: a hang, not a refusal", started.elapsed());
    out
}

/// A failed start: non-zero, and stderr is exactly one `liner:` line naming the
/// certificate problem.
fn assert_refused_in_one_line(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: started although the CA did not sign the server's certificate");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {err}");
    assert!(lines[0].starts_with("liner: "), "{what}: {err}");
    assert!(lines[0].contains("certificate"), "{what}: the reason is not named: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_did_not_sign_the_server_is_refused_in_one_line() {
    let backing = tokio::task::spawn_blocking(TlsBacking::start).await.expect("servers");
    let data_dir = backing.dir.path().join("data");
    let pg_url = backing.pg.verify_full_url("postgres", &backing.other_ca_file());
    let out = liner(&["migrate", "review", "--database-url", &pg_url], &data_dir);
    assert_refused_in_one_line(&out, "PostgreSQL");

    let other_ca = backing.other_ca_file();
    let args = ["review", "--listen", "127.0.0.1:0", "--redis-url", &backing.redis.tls_url(), "--redis-ca-file"];
    let out = liner(&[&args[..], &[other_ca.to_str().expect("path")]].concat(), &data_dir);
    assert_refused_in_one_line(&out, "Redis");

    // The same commands with the right CA get past the handshake (so the refusals above
    // are about the CA, not the servers).
    let ok_url = backing.pg.verify_full_url("postgres", &backing.ca_file());
    let out = liner(&["migrate", "review", "--database-url", &ok_url], &data_dir);
    assert!(out.status.success(), "migrate over verify-full: {}", String::from_utf8_lossy(&out.stderr));
}
