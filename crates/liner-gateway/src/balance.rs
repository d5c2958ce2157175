//! The instances of each service and how one is picked.
//!
//! Each service has a pool: an atomically swapped snapshot (`ArcSwap`) of endpoints, so
//! a request reads it without locking and a discovery update replaces it whole. An
//! endpoint keeps its breaker and counters across updates as long as its address
//! stays in the set.
//!
//! Eligible = active check says ready (`/readyz`) and the breaker admits traffic.
//! Picking is power-of-two-choices on in-flight requests: two random eligible
//! endpoints, the less busy one wins. It avoids the herd that "least loaded" causes and
//! needs no shared counter beyond the per-endpoint one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use metrics::{Counter, Histogram};

use crate::attempt::Outcome;
use crate::breaker::{Admission, Breaker, BreakerConfig, State};
use crate::connections::Connections;

/// What every endpoint of a pool is made with.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolConfig {
    pub breaker: BreakerConfig,
    /// The listener's workers: each keeps its own connections (see `connections`).
    pub workers: usize,
}

/// One upstream instance.
#[derive(Debug)]
pub struct Endpoint {
    pub service: &'static str,
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub base_url: String,
    /// `HOST:PORT`, the metrics label.
    pub address: String,
    pub breaker: Breaker,
    /// Last active check result; true until a check says otherwise.
    ready: AtomicBool,
    in_flight: AtomicUsize,
    /// Where requests are sent: `scheme://authority/` of `base_url` (to connect), its
    /// authority as the `Host` header, and its path (usually none) before each request's.
    origin: Option<Origin>,
    /// The open connections to this instance (they close when it leaves the pool).
    pub connections: Connections,
    /// Metric handles for this instance, registered on first use.
    requests: std::sync::RwLock<Vec<(Outcome, Counter)>>,
    duration: std::sync::OnceLock<Histogram>,
}

/// How an [`Endpoint`] is addressed on the wire.
#[derive(Debug)]
pub struct Origin {
    /// `scheme://authority/`: what a connection is opened to.
    pub uri: http::Uri,
    pub host: http::HeaderValue,
    /// The base URL's path without its trailing `/`; empty for `http://HOST:PORT`.
    prefix: String,
}

impl Origin {
    fn parse(base_url: &str) -> Option<Self> {
        let url = base_url.parse::<http::Uri>().ok()?;
        let (scheme, authority) = (url.scheme()?.clone(), url.authority()?.clone());
        let host = http::HeaderValue::from_str(authority.as_str()).ok()?;
        let prefix = url.path().trim_end_matches('/').to_owned();
        let uri = http::Uri::builder().scheme(scheme).authority(authority).path_and_query("/").build().ok()?;
        Some(Self { uri, host, prefix })
    }
}

impl Endpoint {
    fn new(service: &'static str, base_url: String, config: PoolConfig) -> Self {
        let address = base_url.split_once("://").map_or(base_url.as_str(), |(_, a)| a).to_owned();
        let origin = Origin::parse(&base_url);
        Self {
            service,
            base_url,
            address,
            breaker: Breaker::new(config.breaker),
            ready: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            origin,
            connections: Connections::new(config.workers),
            requests: std::sync::RwLock::new(Vec::new()),
            duration: std::sync::OnceLock::new(),
        }
    }

    /// How this instance is reached; `None` when its base URL is not an absolute URL.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_ref()
    }

    /// The origin-form target of `path` on this instance (behind its base URL's path);
    /// `None` when the two do not make a valid target.
    pub fn target(&self, path: &http::uri::PathAndQuery) -> Option<http::Uri> {
        match self.origin.as_ref().map_or("", |o| o.prefix.as_str()) {
            "" => Some(http::Uri::from(path.clone())),
            prefix => format!("{prefix}{path}").parse().ok(),
        }
    }

    /// Counts a forwarded request and its time to the answer's head
    /// (`gateway_upstream_requests_total`, `gateway_upstream_duration_seconds`).
    fn observe(&self, status: Outcome, elapsed: std::time::Duration) {
        // Counted under the read lock rather than cloned out: a clone and a drop would be
        // two more atomic operations on a count every worker thread shares.
        let counted = self
            .requests
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, c)| c.increment(1))
            .is_some();
        if !counted {
            let mut list = self.requests.write().unwrap_or_else(|p| p.into_inner());
            if let Some((_, c)) = list.iter().find(|(s, _)| *s == status) {
                c.increment(1);
            } else {
                let labels = [
                    ("service", self.service.to_owned()),
                    ("upstream", self.address.clone()),
                    ("status", status.label().into_owned()),
                ];
                let c = metrics::counter!("gateway_upstream_requests_total", &labels);
                c.increment(1);
                list.push((status, c));
            }
        }
        self.duration
            .get_or_init(|| {
                metrics::histogram!("gateway_upstream_duration_seconds", "service" => self.service, "upstream" => self.address.clone())
            })
            .record(elapsed.as_secs_f64());
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Records an active check; returns true when readiness changed.
    pub fn set_ready(&self, ready: bool) -> bool {
        self.ready.swap(ready, Ordering::Relaxed) != ready
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Ready and not tripped: would receive traffic now.
    pub fn is_eligible(&self) -> bool {
        self.eligible()
    }

    fn eligible(&self) -> bool {
        self.is_ready() && self.breaker.available()
    }

    /// Records the outcome of a request in the breaker, logging and counting changes.
    fn record(&self, admission: Admission, outcome: Outcome) {
        if let Some(state) = self.breaker.record(admission, outcome) {
            match state {
                State::Open => {
                    tracing::warn!(service = self.service, upstream = %self.address, ?outcome, "breaker open: instance ejected");
                    metrics::counter!("gateway_upstream_ejections_total", "service" => self.service, "upstream" => self.address.clone()).increment(1);
                }
                State::Closed => {
                    tracing::info!(service = self.service, upstream = %self.address, "breaker closed: instance re-admitted")
                }
                State::HalfOpen => {}
            }
        }
    }
}

/// A request slot on an endpoint: counts as in flight until dropped.
pub struct Lease {
    pub endpoint: Arc<Endpoint>,
    admission: Admission,
}

impl Lease {
    /// Reports how the attempt ended: to the breaker (as this lease's admission, so a
    /// half-open breaker hears its own probe) and to the metrics.
    pub fn finish(&self, outcome: Outcome, elapsed: std::time::Duration) {
        self.endpoint.observe(outcome, elapsed);
        self.endpoint.record(self.admission, outcome);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The endpoints of one service: the discovered set when there is one, else the static one.
pub struct Pool {
    service: &'static str,
    config: PoolConfig,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    /// Bumped whenever the set of instances changes (edge auth drops departed keys on it).
    generation: AtomicU64,
    statics: Vec<String>,
    discovered: std::sync::Mutex<Option<Vec<String>>>,
}

impl Pool {
    pub fn new(service: &'static str, statics: Vec<String>, config: PoolConfig) -> Self {
        let pool = Self {
            service,
            config,
            endpoints: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            statics,
            discovered: std::sync::Mutex::new(None),
        };
        pool.rebuild();
        pool
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// Changes whenever an instance joins or leaves.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the discovered set (base URLs); an empty set falls back to the static list.
    pub fn set_discovered(&self, urls: Vec<String>) {
        *self.discovered.lock().unwrap_or_else(|p| p.into_inner()) = Some(urls);
        self.rebuild();
    }

    fn rebuild(&self) {
        let discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let wanted = match discovered {
            Some(urls) if !urls.is_empty() => urls,
            _ => self.statics.clone(),
        };
        let current = self.endpoints.load_full();
        let mut next: Vec<Arc<Endpoint>> = Vec::with_capacity(wanted.len());
        for url in wanted {
            if next.iter().any(|e| e.base_url == url) {
                continue;
            }
            let kept = current.iter().find(|e| e.base_url == url).cloned();
            next.push(kept.unwrap_or_else(|| Arc::new(Endpoint::new(self.service, url, self.config))));
        }
        let before: Vec<&str> = current.iter().map(|e| e.address.as_str()).collect();
        let after: Vec<&str> = next.iter().map(|e| e.address.as_str()).collect();
        let changed = before != after;
        if changed {
            tracing::info!(service = self.service, instances = ?after, "upstream set changed");
        }
        self.endpoints.store(Arc::new(next));
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    pub fn has_eligible(&self) -> bool {
        self.endpoints.load().iter().any(|e| e.eligible())
    }

    /// Is there an eligible endpoint outside `exclude` (worth a retry)?
    pub fn has_other(&self, exclude: &[Arc<Endpoint>]) -> bool {
        self.endpoints.load().iter().any(|e| e.eligible() && !exclude.iter().any(|x| Arc::ptr_eq(x, e)))
    }

    /// Picks an eligible endpoint not in `exclude` (power of two choices on in-flight
    /// requests) and admits a request on it.
    pub fn pick(&self, exclude: &[Arc<Endpoint>]) -> Option<Lease> {
        let snapshot = self.endpoints.load();
        // A breaker may refuse between the eligibility check and admission (another
        // request took the probe); try the others then.
        let mut candidates: smallvec::SmallVec<[&Arc<Endpoint>; 8]> =
            snapshot.iter().filter(|e| !exclude.iter().any(|x| Arc::ptr_eq(x, e))).filter(|e| e.eligible()).collect();
        while !candidates.is_empty() {
            let i = random_index(candidates.len());
            let chosen = if candidates.len() > 1 {
                let mut j = random_index(candidates.len() - 1);
                if j >= i {
                    j += 1;
                }
                if candidates[j].in_flight() < candidates[i].in_flight() { j } else { i }
            } else {
                i
            };
            let endpoint = candidates.swap_remove(chosen);
            if let Some(admission) = endpoint.breaker.admit() {
                endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
                return Some(Lease { endpoint: endpoint.clone(), admission });
            }
        }
        None
    }
}

/// A cheap shared pseudo-random index (splitmix64 over a counter): picking needs
/// spread, not unpredictability.
fn random_index(n: usize) -> usize {
    static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n as u64) as usize
}

/// The live state of every instance as Prometheus gauges, written at scrape time:
/// `gateway_upstream_instances{service}`, and per instance `gateway_upstream_ready`,
/// `gateway_upstream_breaker_state` (0 closed, 1 half-open, 2 open) and
/// `gateway_upstream_in_flight`. An instance that left the pool leaves these series.
pub fn render_pools(pools: &[Arc<Pool>], out: &mut String) {
    use liner_shared::http::label_value;
    use std::fmt::Write;
    let snapshots: Vec<_> = pools.iter().map(|p| (p.service, p.endpoints())).collect();
    let _ = writeln!(out, "# TYPE gateway_upstream_instances gauge");
    for (service, endpoints) in &snapshots {
        let _ = writeln!(out, "gateway_upstream_instances{{service=\"{service}\"}} {}", endpoints.len());
    }
    type Gauge = (&'static str, fn(&Endpoint) -> f64);
    let per_endpoint: [Gauge; 3] = [
        ("gateway_upstream_ready", |e| if e.is_ready() { 1.0 } else { 0.0 }),
        ("gateway_upstream_breaker_state", |e| match e.breaker.state() {
            State::Closed => 0.0,
            State::HalfOpen => 1.0,
            State::Open => 2.0,
        }),
        ("gateway_upstream_in_flight", |e| e.in_flight() as f64),
    ];
    for (name, value) in per_endpoint {
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (service, endpoints) in &snapshots {
            for e in endpoints.iter() {
                let upstream = label_value(&e.address);
                let _ = writeln!(out, "{name}{{service=\"{service}\",upstream=\"{upstream}\"}} {}", value(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(urls: &[&str]) -> Pool {
        Pool::new("review", urls.iter().map(|s| s.to_string()).collect(), PoolConfig::default())
    }

    #[test]
    fn requests_are_sent_in_origin_form_behind_the_base_path() {
        let p = pool(&["http://a:1", "http://b:2/base/", "not a url"]);
        let path = http::uri::PathAndQuery::from_static("/api/x?y=1");
        let eps = p.endpoints();
        let targets: Vec<_> = eps.iter().map(|e| e.target(&path).map(|t| t.to_string())).collect();
        assert_eq!(targets, [Some("/api/x?y=1".into()), Some("/base/api/x?y=1".into()), Some("/api/x?y=1".into())]);
        assert_eq!(
            eps[1].origin().map(|o| (o.uri.to_string(), o.host.clone())),
            Some(("http://b:2/".into(), "b:2".parse().unwrap()))
        );
        assert!(eps[2].origin().is_none(), "no host to connect to");
    }

    #[test]
    fn spreads_over_every_instance() {
        let p = pool(&["http://a:1", "http://b:1", "http://c:1"]);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..300 {
            let lease = p.pick(&[]).unwrap();
            *seen.entry(lease.endpoint.address.clone()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 3);
        assert!(seen.values().all(|&n| n > 30), "{seen:?}");
    }

    #[test]
    fn prefers_the_less_busy_of_two() {
        let p = pool(&["http://a:1", "http://b:1"]);
        let busy = p.pick(&[]).unwrap();
        for _ in 0..20 {
            let lease = p.pick(&[]).unwrap();
            assert!(!Arc::ptr_eq(&lease.endpoint, &busy.endpoint));
        }
    }

    #[test]
    fn skips_excluded_unready_and_open_endpoints() {
        let p = pool(&["http://a:1", "http://b:1", "http://c:1"]);
        let eps = p.endpoints();
        eps[0].set_ready(false);
        eps[1].record(Admission::Normal, Outcome::ConnectFailed);
        for _ in 0..20 {
            assert_eq!(p.pick(&[]).unwrap().endpoint.address, "c:1");
        }
        assert!(p.pick(std::slice::from_ref(&eps[2])).is_none());
    }

    #[test]
    fn gauges_follow_the_live_pool() {
        let p = Arc::new(pool(&["http://a:1", "http://b:1"]));
        p.endpoints()[1].record(Admission::Normal, Outcome::ConnectFailed);
        let mut text = String::new();
        render_pools(std::slice::from_ref(&p), &mut text);
        assert!(text.contains("gateway_upstream_instances{service=\"review\"} 2"), "{text}");
        assert!(text.contains("gateway_upstream_breaker_state{service=\"review\",upstream=\"b:1\"} 2"), "{text}");
        p.set_discovered(vec!["http://a:1".into()]);
        let mut text = String::new();
        render_pools(std::slice::from_ref(&p), &mut text);
        assert!(!text.contains("b:1"), "an instance that left has no series: {text}");
    }

    #[test]
    fn updates_keep_state_and_empty_discovery_falls_back() {
        let p = pool(&["http://static:1"]);
        p.set_discovered(vec!["http://a:1".into(), "http://b:1".into()]);
        let a = p.endpoints()[0].clone();
        a.record(Admission::Normal, Outcome::ConnectFailed);
        p.set_discovered(vec!["http://b:1".into(), "http://a:1".into()]);
        let again = p.endpoints().iter().find(|e| e.address == "a:1").cloned().unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(again.breaker.state(), State::Open);
        p.set_discovered(vec![]);
        assert_eq!(p.endpoints()[0].address, "static:1");
    }
}
