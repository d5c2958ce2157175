//! Admission limits at the edge: the rate limits per client address and per user (429,
//! `liner_shared::rate`, on `governor`), the global cap on requests being forwarded (503,
//! load shedding: a `tokio` semaphore whose permits are taken without waiting), and the
//! retry budget.
//!
//! The retry budget stays hand-written: it is earned per request (a fraction of a retry
//! for each one forwarded) as well as by time, which a token bucket over time alone
//! (governor's, or tower's `Budget` with its fixed window) does not express.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
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

    /// The credit and when time last added to it (a poisoned lock still holds a number).
    fn state(&self) -> std::sync::MutexGuard<'_, (f64, Instant)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refill(&self, s: &mut (f64, Instant)) {
        let now = Instant::now();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * self.floor_per_sec).min(self.cap);
        s.1 = now;
    }

    /// Every request earns a fraction of a retry.
    /// No clock read here (it runs on every request): the time-earned part is added
    /// when a retry is asked for, for all the time since the last one.
    pub fn deposit(&self) {
        self.add(self.ratio);
    }

    /// Spends one retry if the budget allows.
    pub fn withdraw(&self) -> bool {
        let mut s = self.state();
        self.refill(&mut s);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a retry that was granted but not made (no instance could take it).
    pub fn refund(&self) {
        self.add(1.0);
    }

    fn add(&self, retries: f64) {
        let mut s = self.state();
        s.0 = (s.0 + retries).min(self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
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

    #[tokio::test(start_paused = true)]
    async fn a_refunded_retry_can_be_spent_again_but_never_past_the_cap() {
        let b = RetryBudget::new(0.0, 0.0); // cap 10, nothing earned
        while b.withdraw() {}
        b.refund();
        assert!(b.withdraw(), "the refunded retry");
        assert!(!b.withdraw());
        for _ in 0..20 {
            b.refund();
        }
        let mut granted = 0;
        while b.withdraw() {
            granted += 1;
        }
        assert_eq!(granted, 10);
    }
}
