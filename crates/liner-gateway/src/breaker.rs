//! A circuit breaker per upstream instance (passive health).
//!
//! Vocabulary (the usual one, not linkerd's inverted one):
//! - **closed**: normal, traffic flows; consecutive failures are counted.
//! - **open**: tripped, no traffic until a cool-down has passed.
//! - **half-open**: the cool-down passed; exactly one request (the probe) may go.
//!   Its success closes the breaker; its failure opens it again with a doubled
//!   cool-down (capped).
//!
//! What counts is read from the attempt's [`Outcome`]: a failure is a connect error, a
//! timeout, a broken response or a 5xx answer. A connect error trips the breaker at
//! once (the instance is most likely gone), other failures after `failure_threshold` in
//! a row. A probe that never reports (its client went away) is given up after
//! `probe_timeout`, and another request may probe.
//!
//! Only the probe decides a half-open breaker: each probe carries a number, and an
//! answer to a request admitted before the trip (or to an abandoned probe) arrives
//! late and changes nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::attempt::Outcome;

#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub base_cooldown: Duration,
    pub max_cooldown: Duration,
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            base_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(10),
        }
    }
}

/// The state as reported (metrics, logs, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        cooldown: Duration,
    },
    /// `probe`: the number of the probe in flight and when it was sent.
    HalfOpen {
        probe: Option<(u64, Instant)>,
        cooldown: Duration,
    },
}

/// Whether a granted request is the half-open probe (and which one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Normal,
    Probe(u64),
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<(Inner, u64)>,
    /// `inner` is `Closed { failures: 0 }`: every request is admitted and a success
    /// changes nothing, so the common case reads this flag instead of the clock and
    /// the lock (written under the lock whenever `inner` changes).
    healthy: AtomicBool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, inner: Mutex::new((Inner::Closed { failures: 0 }, 0)), healthy: AtomicBool::new(true) }
    }

    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Inner, u64)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves open → half-open once the cool-down has passed.
    fn advance(&self, inner: &mut Inner, now: Instant) {
        if let Inner::Open { until, cooldown } = *inner
            && now >= until
        {
            *inner = Inner::HalfOpen { probe: None, cooldown };
        }
    }

    pub fn state(&self) -> State {
        let mut guard = self.lock();
        self.advance(&mut guard.0, Instant::now());
        discriminant(&guard.0)
    }

    /// Could a request be admitted now (without taking the probe slot)?
    pub fn available(&self) -> bool {
        if self.is_healthy() {
            return true;
        }
        let now = Instant::now();
        let mut guard = self.lock();
        self.advance(&mut guard.0, now);
        match guard.0 {
            Inner::Closed { .. } => true,
            Inner::Open { .. } => false,
            Inner::HalfOpen { probe, .. } => self.probe_free(probe, now),
        }
    }

    /// Admits a request, or None when the breaker is open (or half-open with its
    /// probe in flight).
    pub fn admit(&self) -> Option<Admission> {
        if self.is_healthy() {
            return Some(Admission::Normal);
        }
        let now = Instant::now();
        let mut guard = self.lock();
        let (inner, probes) = &mut *guard;
        self.advance(inner, now);
        match inner {
            Inner::Closed { .. } => Some(Admission::Normal),
            Inner::Open { .. } => None,
            Inner::HalfOpen { probe, .. } => self.probe_free(*probe, now).then(|| {
                *probes += 1;
                *probe = Some((*probes, now));
                Admission::Probe(*probes)
            }),
        }
    }

    fn probe_free(&self, probe: Option<(u64, Instant)>, now: Instant) -> bool {
        probe.is_none_or(|(_, since)| now.duration_since(since) >= self.config.probe_timeout)
    }

    /// Records how a request admitted as `admission` ended; returns the new state when
    /// it changed.
    pub fn record(&self, admission: Admission, outcome: Outcome) -> Option<State> {
        if !outcome.is_failure() && self.is_healthy() {
            return None; // closed with no failures stays so
        }
        let now = Instant::now();
        let mut guard = self.lock();
        let inner = &mut guard.0;
        self.advance(inner, now);
        let before = discriminant(inner);
        let cfg = self.config;
        let failed = outcome.is_failure();
        let next = match (&*inner, admission) {
            (Inner::Closed { .. }, _) if !failed => Some(Inner::Closed { failures: 0 }),
            (Inner::Closed { failures }, _)
                if !outcome.is_connect_failure() && failures + 1 < cfg.failure_threshold =>
            {
                Some(Inner::Closed { failures: failures + 1 })
            }
            (Inner::Closed { .. }, _) => {
                Some(Inner::Open { until: now + cfg.base_cooldown, cooldown: cfg.base_cooldown })
            }
            // Only the probe in flight decides a half-open breaker.
            (Inner::HalfOpen { probe: Some((current, _)), cooldown }, Admission::Probe(n)) if *current == n => {
                if failed {
                    let cooldown = (*cooldown * 2).min(cfg.max_cooldown);
                    Some(Inner::Open { until: now + cooldown, cooldown })
                } else {
                    Some(Inner::Closed { failures: 0 })
                }
            }
            // A late answer (admitted before the trip, or an abandoned probe): nothing changes.
            (Inner::HalfOpen { .. } | Inner::Open { .. }, _) => None,
        };
        if let Some(next) = next {
            *inner = next;
        }
        self.healthy.store(matches!(inner, Inner::Closed { failures: 0 }), Ordering::Release);
        let after = discriminant(inner);
        (before != after).then_some(after)
    }
}

fn discriminant(inner: &Inner) -> State {
    match inner {
        Inner::Closed { .. } => State::Closed,
        Inner::Open { .. } => State::Open,
        Inner::HalfOpen { .. } => State::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::StatusCode;

    const OK: Outcome = Outcome::Answered(StatusCode::OK);
    const FAIL: Outcome = Outcome::Answered(StatusCode::INTERNAL_SERVER_ERROR);
    const GONE: Outcome = Outcome::ConnectFailed;
    const N: Admission = Admission::Normal;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failure_threshold: 3,
            base_cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(4),
            probe_timeout: Duration::from_secs(10),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_only() {
        let b = breaker();
        b.record(N, FAIL);
        b.record(N, FAIL);
        b.record(N, OK);
        b.record(N, FAIL);
        b.record(N, FAIL);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.record(N, FAIL), Some(State::Open));
        assert_eq!(b.admit(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn connect_failure_opens_at_once() {
        let b = breaker();
        assert_eq!(b.record(N, GONE), Some(State::Open));
        assert!(!b.available());
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_probe_through() {
        let b = breaker();
        b.record(N, GONE);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(b.state(), State::HalfOpen);
        let probe = b.admit().expect("the probe");
        assert!(matches!(probe, Admission::Probe(_)));
        assert_eq!(b.admit(), None, "only one probe at a time");
        assert_eq!(b.record(probe, OK), Some(State::Closed));
        assert_eq!(b.admit(), Some(Admission::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let b = breaker();
        b.record(N, GONE);
        tokio::time::advance(Duration::from_secs(1)).await;
        for cooldown_ms in [2000, 4000, 4000] {
            let probe = b.admit().expect("the probe");
            assert_eq!(b.record(probe, FAIL), Some(State::Open));
            tokio::time::advance(Duration::from_millis(cooldown_ms - 1)).await;
            assert_eq!(b.state(), State::Open, "still open just before {cooldown_ms} ms");
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(b.state(), State::HalfOpen, "half-open after {cooldown_ms} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_is_replaced() {
        let b = breaker();
        b.record(N, GONE);
        tokio::time::advance(Duration::from_secs(1)).await;
        let abandoned = b.admit().expect("the first probe");
        assert!(!b.available());
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.admit().expect("a new probe");
        assert_ne!(probe, abandoned);
        assert_eq!(b.record(abandoned, OK), None, "the abandoned probe's late answer decides nothing");
        assert_eq!(b.record(probe, OK), Some(State::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_from_before_the_trip_does_not_decide_the_half_open_breaker() {
        let b = breaker();
        let early = b.admit().expect("admitted while closed");
        b.record(N, GONE);
        tokio::time::advance(Duration::from_secs(1)).await;
        let probe = b.admit().expect("the probe");
        assert_eq!(b.record(early, OK), None, "a success from before the trip does not close it");
        assert_eq!(b.record(early, FAIL), None, "nor does a failure reopen it");
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.record(probe, FAIL), Some(State::Open));
    }
}
