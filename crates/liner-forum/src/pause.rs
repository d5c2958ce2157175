//! A pause after a peer failed: callers skip the peer until it ends, so that requests
//! do not each wait for a timeout while the peer is away. Shared by the forum's two
//! lookups in the review service (usernames, album ratings), which both degrade to a
//! fallback rather than fail.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Pause {
    length: Duration,
    until: Mutex<Option<Instant>>,
}

impl Pause {
    pub fn new(length: Duration) -> Self {
        Self { length, until: Mutex::new(None) }
    }

    /// True while a pause started by [`Pause::start`] lasts.
    pub fn is_on(&self) -> bool {
        self.until.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| Instant::now() < t)
    }

    /// The peer just failed: skip it for the pause's length from now.
    pub fn start(&self) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_lasts_its_length_from_the_failure() {
        let pause = Pause::new(Duration::from_secs(60));
        assert!(!pause.is_on());
        pause.start();
        assert!(pause.is_on());
        let over = Pause::new(Duration::ZERO);
        over.start();
        assert!(!over.is_on());
    }
}
