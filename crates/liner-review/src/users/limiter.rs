//! Locks out repeated failed logins, per account and per client address.
//!
//! Counting failures (not attempts) means a user who types the right password is never
//! slowed down, while a guesser gets `max_failures` tries per window. With Redis the
//! counters are shared by every review replica (`INCR` + `EXPIRE … NX`); without it, or
//! while Redis is unreachable, each process counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

pub struct LoginLimiter {
    redis: Option<ConnectionManager>,
    local: Mutex<HashMap<String, (u32, Instant)>>,
    window: Duration,
}

/// Failed logins allowed per account within the window.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// Failed logins allowed per client address within the window (many users behind one NAT).
pub const MAX_FAILURES_PER_ADDR: u32 = 30;

impl LoginLimiter {
    pub fn new(redis: Option<ConnectionManager>, window: Duration) -> Self {
        Self { redis, local: Mutex::new(HashMap::new()), window }
    }

    /// `Err(seconds)` when `key` has used up its `max` failures in the current window.
    pub async fn check(&self, key: &str, max: u32) -> Result<(), u64> {
        if let Some(mut conn) = self.redis.clone() {
            let got: redis::RedisResult<(Option<u32>, i64)> =
                redis::pipe().get(redis_key(key)).ttl(redis_key(key)).query_async(&mut conn).await;
            match got {
                Ok((count, ttl)) if count.unwrap_or(0) >= max => return Err(ttl.max(1) as u64),
                Ok(_) => return Ok(()),
                Err(e) => tracing::warn!(error = %e, "login limiter: redis unavailable, counting locally"),
            }
        }
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        match local.get(key) {
            Some((count, started)) if started.elapsed() < self.window && *count >= max => {
                Err((self.window - started.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    pub async fn record_failure(&self, key: &str) {
        if let Some(mut conn) = self.redis.clone() {
            let done: redis::RedisResult<()> = redis::pipe()
                .incr(redis_key(key), 1)
                .ignore()
                .cmd("EXPIRE")
                .arg(redis_key(key))
                .arg(self.window.as_secs())
                .arg("NX")
                .ignore()
                .query_async(&mut conn)
                .await;
            if done.is_ok() {
                return;
            }
        }
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() > 100_000 {
            let window = self.window;
            local.retain(|_, (_, started)| started.elapsed() < window);
        }
        let entry = local.entry(key.to_owned()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub async fn reset(&self, key: &str) {
        if let Some(mut conn) = self.redis.clone() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(redis_key(key)).query_async(&mut conn).await;
        }
        self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

fn redis_key(key: &str) -> String {
    format!("liner:review:login-failures:{key}")
}
