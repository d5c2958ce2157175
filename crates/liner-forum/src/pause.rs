//! A pause after a peer failed: callers skip the peer until it ends, so that requests
//! do not each wait for a timeout while the peer is away. Shared by the forum's two
//! lookups in the review service (usernames, album ratings), which both degrade to a
//! fallback rather than fail: [`Pause::ask`] is that whole step (skip while paused, log
//! and pause on a failure).

use std::future::Future;
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

    /// Asks the peer unless paused: None while the pause lasts, or when `ask` fails —
    /// which is logged (`what` went without) and starts the pause.
    pub async fn ask<T>(&self, what: &str, ask: impl Future<Output = anyhow::Result<T>>) -> Option<T> {
        if self.is_on() {
            return None;
        }
        match ask.await {
            Ok(answer) => Some(answer),
            Err(e) => {
                tracing::warn!(error = %e, "review service unreachable: {what} for now");
                self.start();
                None
            }
        }
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

    #[tokio::test]
    async fn a_failed_ask_pauses_and_a_paused_ask_is_not_made() {
        let pause = Pause::new(Duration::from_secs(60));
        assert_eq!(pause.ask("nothing", async { Ok(1) }).await, Some(1));
        assert!(!pause.is_on(), "an answer does not pause");
        assert_eq!(pause.ask("nothing", async { anyhow::bail!("down") }).await, None::<i32>);
        assert!(pause.is_on());
        let asked = std::sync::atomic::AtomicBool::new(false);
        let never = async {
            asked.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(2)
        };
        assert_eq!(pause.ask("nothing", never).await, None);
        assert!(!asked.load(std::sync::atomic::Ordering::SeqCst), "not asked while paused");
    }
}
