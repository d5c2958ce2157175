//! The one way a Liner process opens Redis, so TLS is configured alike everywhere
//! (review's shared counters, the forum's fan-out).
//!
//! `rediss://` URLs connect with rustls and verify the server's certificate and name.
//! By default the system's roots are trusted; a cluster whose Redis carries a
//! certificate of a private CA names that CA with `--redis-ca-file`, which then is the
//! only trust anchor (it replaces the system's roots rather than adding to them, so a
//! publicly trusted certificate for the same name cannot stand in for the server). The
//! file is read once, here, at startup: a missing or empty file is a startup error, not
//! a handshake failure later. A CA file with a plain `redis://` URL is refused too: the
//! operator asked for TLS and would otherwise silently get none.

use std::path::PathBuf;

/// How Redis's certificate is verified; flattened into every service that uses Redis.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RedisTls {
    /// PEM file of the CA that signed the Redis server's certificate (`rediss://` URLs
    /// only) [default: the system's roots].
    #[arg(long = "redis-ca-file", env = "LINER_REDIS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// A client for `url` (see [`client`]), after one connection attempt: a failure no
/// retry can mend (the server's certificate, a password) ends the startup at once, in one
/// line, rather than after the connection manager's retries; a server that is not up
/// yet (refused, timed out) is left to those retries as before.
pub async fn open(url: &str, tls: &RedisTls) -> anyhow::Result<redis::Client> {
    let client = client(url, tls)?;
    if let Ok(Err(e)) = tokio::time::timeout(FIRST_ATTEMPT, client.get_multiplexed_async_connection()).await
        && !(e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped())
    {
        anyhow::bail!("cannot connect to Redis at {}: {e}", crate::config::redact_url(url));
    }
    Ok(client)
}

/// How long the first attempt of [`open`] may take before it is left to the retries.
const FIRST_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(5);

/// A client for `url` (`redis://`, `rediss://`, `redis+unix://`); with TLS, trusting the
/// configured CA. Errors are one line, for `liner: …` at startup.
pub fn client(url: &str, tls: &RedisTls) -> anyhow::Result<redis::Client> {
    let bad_url = |e: redis::RedisError| anyhow::anyhow!("bad REDIS_URL: {e}");
    let Some(ca_file) = &tls.ca_file else {
        return redis::Client::open(url).map_err(bad_url);
    };
    anyhow::ensure!(
        url.starts_with("rediss://"),
        "--redis-ca-file / LINER_REDIS_CA_FILE is set but REDIS_URL does not start with rediss://"
    );
    let pem = std::fs::read(ca_file)
        .map_err(|e| anyhow::anyhow!("cannot read the Redis CA file {}: {e}", ca_file.display()))?;
    anyhow::ensure!(
        pem.windows(CERT_PEM.len()).any(|w| w == CERT_PEM),
        "the Redis CA file {} holds no PEM certificate",
        ca_file.display()
    );
    let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
    redis::Client::build_with_tls(url, certs).map_err(bad_url)
}

const CERT_PEM: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// A Redis connection that never holds a request up, for callers that can do without
/// Redis for a moment (shared counters falling back to local ones, a cache falling back
/// to the database): every call is bounded by [`CALL_WAIT`], and after one fails Redis
/// is skipped for [`DOWN_BACKOFF`]. Without this a request waits for the connection
/// manager's reconnect attempts while Redis is down — seconds, past the gateway's route
/// timeout. One per process and Redis, shared by its users, so one failure spares them
/// all the next waits.
pub struct Bounded {
    conn: redis::aio::ConnectionManager,
    /// Unix ms until which Redis is skipped (0: up).
    down_until: std::sync::atomic::AtomicI64,
}

/// The longest a [`Bounded`] call waits for Redis.
pub const CALL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
/// After a failed [`Bounded`] call, Redis is skipped for this long.
pub const DOWN_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

impl Bounded {
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        Self { conn, down_until: Default::default() }
    }

    /// The connection even while Redis is being skipped: for the calls that matter more
    /// than a moment's wait (e.g. invalidating a shared cache after a write).
    pub fn conn_anyway(&self) -> redis::aio::ConnectionManager {
        self.conn.clone()
    }

    /// The connection, unless Redis failed a moment ago.
    pub fn conn(&self) -> Option<redis::aio::ConnectionManager> {
        let skipped = crate::now_millis() < self.down_until.load(std::sync::atomic::Ordering::Acquire);
        (!skipped).then(|| self.conn.clone())
    }

    /// One call, bounded by [`CALL_WAIT`]; `None` (logged as `what`) when it failed or
    /// timed out, and Redis is then skipped for [`DOWN_BACKOFF`].
    pub async fn call<T>(
        &self,
        what: &'static str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let why = match tokio::time::timeout(CALL_WAIT, call).await {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::warn!(error = %why, "{what}: Redis unavailable, going on without it");
        let until = crate::now_millis() + DOWN_BACKOFF.as_millis() as i64;
        self.down_until.store(until, std::sync::atomic::Ordering::Release);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(path: &std::path::Path) -> RedisTls {
        RedisTls { ca_file: Some(path.to_path_buf()) }
    }

    #[test]
    fn a_ca_file_without_rediss_is_refused_in_one_line() {
        let err = client("redis://127.0.0.1:6379", &tls("/nonexistent".as_ref())).unwrap_err().to_string();
        assert!(err.contains("rediss://") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_at_startup() {
        let err = client("rediss://127.0.0.1:6379", &tls("/nonexistent/ca.pem".as_ref())).unwrap_err().to_string();
        assert!(err.starts_with("cannot read the Redis CA file /nonexistent/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("liner-redis-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = client("rediss://127.0.0.1:6379", &tls(&empty)).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn without_a_ca_file_any_redis_url_opens() {
        for url in ["redis://127.0.0.1:6379", "rediss://127.0.0.1:6380", "redis+unix:///tmp/redis.sock"] {
            client(url, &RedisTls::default()).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }
}
