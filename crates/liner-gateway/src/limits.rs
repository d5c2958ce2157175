//! Admission limits at the edge: keyed rate limits (429), the global in-flight cap
//! (503, load shedding), and the retry budget.
//!
//! The rate limiter is a token bucket per key (client IP or token subject): `rate`
//! tokens a second up to `burst`. A refused request learns exactly when the next
//! token arrives, which becomes `Retry-After`. Buckets that have refilled completely
//! carry no information and are dropped when the table grows, so a flood of distinct
//! keys cannot grow memory without bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// None when `per_sec` is 0 (limit disabled).
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        (per_sec > 0).then(|| Self {
            rate: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.duration_since(b.last) < full_after);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, last: now });
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

/// The global cap on requests being forwarded at once.
#[derive(Clone)]
pub struct InFlight {
    current: Arc<AtomicUsize>,
    max: usize,
}

pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self { current: Arc::new(AtomicUsize::new(0)), max: max.max(1) }
    }

    pub fn try_acquire(&self) -> Option<InFlightGuard> {
        let prev = self.current.fetch_add(1, Ordering::AcqRel);
        let guard = InFlightGuard(self.current.clone());
        (prev < self.max).then_some(guard)
    }

    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }
}

/// Retries may add at most `ratio` of the request volume, plus `floor_per_sec` so a
/// quiet gateway can still retry. Stops a failing upstream from being hit by a retry
/// storm on top of the normal load.
pub struct RetryBudget {
    ratio: f64,
    floor_per_sec: f64,
    cap: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor_per_sec: f64) -> Self {
        let cap = (floor_per_sec * 10.0).max(10.0);
        Self { ratio, floor_per_sec, cap, state: Mutex::new((cap, Instant::now())) }
    }

    fn refill(&self, s: &mut (f64, Instant)) {
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.floor_per_sec).min(self.cap);
        s.1 = now;
    }

    /// Every request earns a fraction of a retry.
    pub fn deposit(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        s.0 = (s.0 + self.ratio).min(self.cap);
    }

    /// Spends one retry if the budget allows.
    pub fn withdraw(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.refill(&mut s);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_refills() {
        let l = RateLimiter::new(2, 3).unwrap();
        for _ in 0..3 {
            assert!(l.check("ip").is_ok());
        }
        let wait = l.check("ip").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(l.check("other").is_ok(), "keys are independent");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(l.check("ip").is_ok());
        assert!(RateLimiter::new(0, 10).is_none());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn in_flight_is_capped_and_released() {
        let f = InFlight::new(2);
        let a = f.try_acquire().unwrap();
        let _b = f.try_acquire().unwrap();
        assert!(f.try_acquire().is_none());
        drop(a);
        assert!(f.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_budget_runs_out_and_refills() {
        let b = RetryBudget::new(0.0, 1.0);
        let mut granted = 0;
        while b.withdraw() {
            granted += 1;
        }
        assert_eq!(granted, 10);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw());
    }
}
