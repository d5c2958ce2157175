//! A circuit breaker per upstream instance (passive health).
//!
//! Vocabulary (the usual one, not linkerd's inverted one):
//! - **closed**: normal, traffic flows; consecutive failures are counted.
//! - **open**: tripped, no traffic until a cool-down has passed.
//! - **half-open**: the cool-down passed; exactly one request (the probe) may go.
//!   Its success closes the breaker; its failure opens it again with a doubled
//!   cool-down (capped).
//!
//! A failure is a connect error, a timeout, a broken response or a 5xx answer. A
//! connect error trips the breaker at once (the instance is most likely gone), other
//! failures after `failure_threshold` in a row. A probe that never reports (its client
//! went away) is given up after `probe_timeout`, and another request may probe.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

/// What a request to the instance ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Timeout, broken response, 5xx.
    Failure,
    /// The connection could not be made.
    ConnectFailure,
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
    Closed { failures: u32 },
    Open { until: Instant, cooldown: Duration },
    HalfOpen { probe_since: Option<Instant>, cooldown: Duration },
}

/// Whether a granted request is the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Normal,
    Probe,
}

#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self { config, inner: Mutex::new(Inner::Closed { failures: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves open → half-open once the cool-down has passed.
    fn advance(&self, inner: &mut Inner, now: Instant) {
        if let Inner::Open { until, cooldown } = *inner
            && now >= until
        {
            *inner = Inner::HalfOpen { probe_since: None, cooldown };
        }
    }

    pub fn state(&self) -> State {
        let mut inner = self.lock();
        self.advance(&mut inner, Instant::now());
        match *inner {
            Inner::Closed { .. } => State::Closed,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Could a request be admitted now (without taking the probe slot)?
    pub fn available(&self) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { .. } => false,
            Inner::HalfOpen { probe_since, .. } => {
                probe_since.is_none_or(|since| now.duration_since(since) >= self.config.probe_timeout)
            }
        }
    }

    /// Admits a request, or None when the breaker is open (or half-open with its
    /// probe in flight).
    pub fn admit(&self) -> Option<Admission> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        match &mut *inner {
            Inner::Closed { .. } => Some(Admission::Normal),
            Inner::Open { .. } => None,
            Inner::HalfOpen { probe_since, .. } => {
                let free = probe_since.is_none_or(|since| now.duration_since(since) >= self.config.probe_timeout);
                free.then(|| {
                    *probe_since = Some(now);
                    Admission::Probe
                })
            }
        }
    }

    /// Records a result; returns the new state when it changed.
    pub fn record(&self, outcome: Outcome) -> Option<State> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        let before = discriminant(&inner);
        let cfg = self.config;
        *inner = match (&*inner, outcome) {
            (Inner::Closed { .. }, Outcome::Success) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, Outcome::Failure) if failures + 1 < cfg.failure_threshold => {
                Inner::Closed { failures: failures + 1 }
            }
            (Inner::Closed { .. }, _) => Inner::Open { until: now + cfg.base_cooldown, cooldown: cfg.base_cooldown },
            (Inner::HalfOpen { .. }, Outcome::Success) => Inner::Closed { failures: 0 },
            (Inner::HalfOpen { cooldown, .. }, _) => {
                let cooldown = (*cooldown * 2).min(cfg.max_cooldown);
                Inner::Open { until: now + cooldown, cooldown }
            }
            // A late answer from before the breaker opened: it changes nothing.
            (Inner::Open { until, cooldown }, _) => Inner::Open { until: *until, cooldown: *cooldown },
        };
        let after = discriminant(&inner);
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
        b.record(Outcome::Failure);
        b.record(Outcome::Failure);
        b.record(Outcome::Success);
        b.record(Outcome::Failure);
        b.record(Outcome::Failure);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.record(Outcome::Failure), Some(State::Open));
        assert_eq!(b.admit(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn connect_failure_opens_at_once() {
        let b = breaker();
        assert_eq!(b.record(Outcome::ConnectFailure), Some(State::Open));
        assert!(!b.available());
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_probe_through() {
        let b = breaker();
        b.record(Outcome::ConnectFailure);
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(b.admit(), Some(Admission::Probe));
        assert_eq!(b.admit(), None, "only one probe at a time");
        assert_eq!(b.record(Outcome::Success), Some(State::Closed));
        assert_eq!(b.admit(), Some(Admission::Normal));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_doubles_the_cooldown_up_to_the_cap() {
        let b = breaker();
        b.record(Outcome::ConnectFailure);
        tokio::time::advance(Duration::from_secs(1)).await;
        for cooldown_ms in [2000, 4000, 4000] {
            assert_eq!(b.admit(), Some(Admission::Probe));
            assert_eq!(b.record(Outcome::Failure), Some(State::Open));
            tokio::time::advance(Duration::from_millis(cooldown_ms - 1)).await;
            assert_eq!(b.state(), State::Open, "still open just before {cooldown_ms} ms");
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(b.state(), State::HalfOpen, "half-open after {cooldown_ms} ms");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_is_replaced() {
        let b = breaker();
        b.record(Outcome::ConnectFailure);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.admit(), Some(Admission::Probe));
        assert!(!b.available());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit(), Some(Admission::Probe));
    }
}
