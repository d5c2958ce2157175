//! The site-wide prior (mean and spread of every rating), cached in the process.
//!
//! Every album page and chart needs it, but computing it reads every review, so it is
//! recomputed at most once per [`SITE_PRIOR_TTL`] and served from memory in between.
//! A few seconds of staleness cannot matter: one rating moves the site-wide mean of a
//! site with enough ratings to be trusted by a small fraction of a star. The
//! alternative, a totals row updated in the same transaction as every review write,
//! would be exact but would serialize all review writes on that one row.
//!
//! Each replica keeps its own copy; a refresh is single-flight, so a burst of requests
//! after expiry runs the aggregate once, not once per request.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use liner_shared::db::Db;

use super::score::{Prior, Tally};
use super::store;
use crate::error::Result;

/// How long a computed prior is served before it is recomputed.
pub const SITE_PRIOR_TTL: Duration = Duration::from_secs(5);

pub struct SitePrior {
    ttl: Duration,
    current: Mutex<Option<(Instant, Prior)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl SitePrior {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, current: Mutex::new(None), refreshing: tokio::sync::Mutex::new(()) }
    }

    /// The prior computed from every review in `db`, at most [`Self::new`]'s `ttl` old.
    pub async fn get(&self, db: &Db) -> Result<Prior> {
        self.get_or_load(|| store::site_tally(db)).await
    }

    async fn get_or_load<F, Fut>(&self, load: F) -> Result<Prior>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Tally>>,
    {
        if let Some(prior) = self.fresh() {
            return Ok(prior);
        }
        let _only_one_loader = self.refreshing.lock().await;
        // Whoever held the lock before us may have just refreshed it.
        if let Some(prior) = self.fresh() {
            return Ok(prior);
        }
        let prior = Prior::from_site(&load().await?);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), prior));
        Ok(prior)
    }

    fn fresh(&self) -> Option<Prior> {
        let current = *self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, prior)| prior)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A loader that counts its calls and reports `count` ratings of 4.0.
    fn loader(calls: &AtomicUsize, count: i64) -> impl Future<Output = Result<Tally>> + '_ {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Tally::from_counts(&[(8, count)])))
    }

    #[tokio::test]
    async fn served_from_memory_within_the_ttl() {
        let cache = SitePrior::new(Duration::from_secs(3600));
        let calls = AtomicUsize::new(0);
        assert_eq!(cache.get_or_load(|| loader(&calls, 0)).await.ok(), Some(Prior::FALLBACK));
        // The site now has 50 ratings of 4.0, but the cached prior is still fresh.
        assert_eq!(cache.get_or_load(|| loader(&calls, 50)).await.ok(), Some(Prior::FALLBACK));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn recomputed_once_expired() {
        let cache = SitePrior::new(Duration::ZERO);
        let calls = AtomicUsize::new(0);
        assert_eq!(cache.get_or_load(|| loader(&calls, 0)).await.ok(), Some(Prior::FALLBACK));
        let prior = cache.get_or_load(|| loader(&calls, 50)).await.ok();
        assert_eq!(prior, Some(Prior { mean: 4.0, sd: 0.0 }));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_load_once() {
        let cache = Arc::new(SitePrior::new(Duration::from_secs(3600)));
        let (arrived, calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (cache, arrived, calls, mut gate) = (cache.clone(), arrived.clone(), calls.clone(), gate_rx.clone());
            tasks.spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                let load = || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // Hold the load open until every task has asked for the prior.
                    let _ = gate.wait_for(|open| *open).await;
                    Ok(Tally::default())
                };
                cache.get_or_load(load).await.ok()
            });
        }
        while arrived.load(Ordering::SeqCst) < 20 {
            tokio::task::yield_now().await;
        }
        gate_tx.send_replace(true);
        for prior in tasks.join_all().await {
            assert_eq!(prior, Some(Prior::FALLBACK));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one load for twenty concurrent misses");
    }
}
