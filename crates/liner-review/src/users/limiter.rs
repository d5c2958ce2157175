//! Counts events per key in a fixed window: failed logins (per account and per client
//! address) and registrations (per client address).
//!
//! Counting failures (not attempts) means a user who types the right password is never
//! slowed down, while a guesser gets `max_failures` tries per window. With Redis the
//! counters are shared by every review replica (`INCR` + `EXPIRE … NX`); without it, or
//! while Redis is unreachable, each process counts on its own.
//!
//! Redis never holds a login up: calls go through `liner_shared::redis::Bounded`
//! (bounded, and Redis skipped a moment after a failure; local counting meanwhile).
//! Without it a login waited for the connection manager's reconnects while Redis was
//! down, past the gateway's route timeout (a 504; `outages.rs`).
//!
//! Why not `governor` (`liner_shared::rate`): these counters must be shared by the
//! replicas through Redis and survive a replica's restart, and a lockout's
//! `Retry-After` is the window's remaining time, not a token bucket's refill.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::future::Future;

use liner_shared::redis::Bounded;

pub struct WindowCounter {
    redis: Option<Arc<Bounded>>,
    local: Mutex<HashMap<String, (u32, Instant)>>,
    window: Duration,
    /// Names the counters in Redis, e.g. `login-failures`.
    name: &'static str,
}

/// Failed logins allowed per account within the window.
pub const MAX_FAILURES_PER_USER: u32 = 5;
/// Failed logins allowed per client address within the window (many users behind one NAT).
pub const MAX_FAILURES_PER_ADDR: u32 = 30;

/// Registrations allowed per client address and window unless configured
/// (`--registrations-per-address`).
pub const DEFAULT_REGISTRATIONS_PER_ADDR: u32 = 10;
/// The registration window.
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(60 * 60);
/// The failed-login window.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

impl WindowCounter {
    pub fn new(redis: Option<Arc<Bounded>>, window: Duration, name: &'static str) -> Self {
        Self { redis, local: Mutex::new(HashMap::new()), window, name }
    }

    /// The Redis connection, unless there is none or Redis failed a moment ago.
    fn redis(&self) -> Option<redis::aio::ConnectionManager> {
        self.redis.as_ref()?.conn()
    }

    /// One Redis call (see `Bounded::call`); `None`: count locally.
    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        self.redis.as_ref()?.call("login and sign-up counters", call).await
    }

    /// `Err(seconds)` when `key` has used up its `max` failures in the current window.
    pub async fn check(&self, key: &str, max: u32) -> Result<(), u64> {
        if let Some(mut conn) = self.redis() {
            let mut pipe = redis::pipe();
            pipe.get(self.redis_key(key)).ttl(self.redis_key(key));
            let got: Option<(Option<u32>, i64)> = self.bounded(pipe.query_async(&mut conn)).await;
            match got {
                Some((count, ttl)) if count.unwrap_or(0) >= max => return Err(ttl.max(1) as u64),
                Some(_) => return Ok(()),
                None => {}
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

    /// Counts one event for `key`.
    pub async fn record(&self, key: &str) {
        if let Some(mut conn) = self.redis() {
            let mut pipe = redis::pipe();
            pipe.incr(self.redis_key(key), 1).ignore();
            pipe.cmd("EXPIRE").arg(self.redis_key(key)).arg(self.window.as_secs()).arg("NX").ignore();
            if self.bounded(pipe.query_async::<()>(&mut conn)).await.is_some() {
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
        if let Some(mut conn) = self.redis() {
            let del = redis::cmd("DEL").arg(self.redis_key(key)).clone();
            self.bounded(del.query_async::<()>(&mut conn)).await;
        }
        self.local.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

impl WindowCounter {
    fn redis_key(&self, key: &str) -> String {
        format!("liner:review:{}:{key}", self.name)
    }
}
