//! Token-bucket rate limits, on `governor` (GCRA: one atomic word of state per bucket,
//! no timer). One place for every limit a client's pace is held to: the gateway's per
//! address and per user limits (keyed), the forum's per-connection message rate and
//! strike count (direct).
//!
//! What this adds to governor: rates given as requests per second with a burst (the way
//! the flags say them, fractions allowed), the wait as a `Duration` for `Retry-After`,
//! and bounded memory for keyed limits — keys whose bucket has refilled carry no
//! information, and they are swept once the table has grown past `SWEEP_AT` keys, so a
//! flood of distinct addresses cannot grow it without bound.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Keys kept before refilled ones are swept.
const SWEEP_AT: usize = 10_000;
/// How often (in checks) the table size is looked at.
const SWEEP_CHECK_EVERY: u64 = 1_024;

/// `per_sec` tokens a second up to `burst`; None when `per_sec` is not positive (no limit).
pub fn quota(per_sec: f64, burst: u32) -> Option<Quota> {
    if per_sec.is_nan() || per_sec <= 0.0 || per_sec.is_infinite() {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / per_sec).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

/// A bucket per key (client address, user id).
pub struct KeyedLimit<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// None when `per_sec` is 0 (limit disabled).
    pub fn new(per_sec: f64, burst: u32) -> Option<Self> {
        Self::with_clock(per_sec, burst, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedLimit<K, C> {
    pub fn with_clock(per_sec: f64, burst: u32, clock: C) -> Option<Self> {
        let quota = quota(per_sec, burst)?;
        Some(Self { limiter: RateLimiter::dashmap_with_clock(quota, clock), checks: AtomicU64::new(0) })
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(SWEEP_CHECK_EVERY)
            && self.limiter.len() >= SWEEP_AT
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Keys with state (tests, metrics).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// A single bucket (one connection's message rate).
pub fn direct(per_sec: f64, burst: u32) -> Option<DefaultDirectRateLimiter> {
    quota(per_sec, burst).map(RateLimiter::direct)
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_for_the_refill() {
        let clock = FakeRelativeClock::default();
        let limit = KeyedLimit::with_clock(2.0, 3, clock.clone()).expect("a limit");
        for _ in 0..3 {
            assert!(limit.check(&"ip").is_ok());
        }
        let wait = limit.check(&"ip").expect_err("past the burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limit.check(&"other").is_ok(), "keys are independent");
        clock.advance(Duration::from_millis(500));
        assert!(limit.check(&"ip").is_ok(), "refilled at 2 a second");
        assert!(KeyedLimit::<&str>::new(0.0, 10).is_none(), "0 = no limit");
    }

    #[test]
    fn refilled_keys_are_swept_once_the_table_is_large() {
        let clock = FakeRelativeClock::default();
        let limit = KeyedLimit::with_clock(1.0, 1, clock.clone()).expect("a limit");
        for key in 0..SWEEP_AT as u64 {
            let _ = limit.check(&key);
        }
        assert_eq!(limit.len(), SWEEP_AT);
        clock.advance(Duration::from_secs(2));
        for key in 0..SWEEP_CHECK_EVERY * 2 {
            let _ = limit.check(&(u64::MAX - key));
        }
        assert!(limit.len() < SWEEP_AT, "refilled keys were dropped: {} left", limit.len());
    }

    #[test]
    fn fractional_rates_and_a_direct_bucket() {
        let q = quota(0.2, 10).expect("a quota");
        assert_eq!(q.replenish_interval(), Duration::from_secs(5));
        assert_eq!(q.burst_size().get(), 10);
        let one = direct(1.0, 2).expect("a bucket");
        assert!(one.check().is_ok() && one.check().is_ok());
        assert!(one.check().is_err());
    }
}
