//! The HTTP layers and operational endpoints every service mounts, so that request ids,
//! logs, limits, metrics and health look the same on every hop.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, method_not_allowed, payload_too_large, route_not_found};

/// Largest request body any REST endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Counters and histograms not updated for this long leave the scrape.
const METRICS_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The process-wide Prometheus recorder (one per process, even when `liner up` runs
/// every service in it; series carry a `service` label).
///
/// The recorder keeps every histogram sample until it is folded into the buckets, which
/// happens on a scrape or an upkeep; without the upkeep thread started here, a process
/// nobody scrapes would keep 8 bytes per request forever.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .unwrap_or_else(|_| PrometheusBuilder::new())
                // Counters and histograms nobody updated for this long are dropped (a
                // route, or an upstream instance that left, stops being a series).
                // Gauges are kept: their last value is the point.
                .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM, Some(METRICS_IDLE_TIMEOUT));
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is already installed: render from a detached one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            let upkeep = handle.clone();
            let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(METRICS_UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = started {
                tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded on scrapes only");
            }
            handle
        })
        .clone()
}

/// A readiness probe: true when the service's dependencies answer.
pub type ReadyCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// `/healthz` (alive), `/readyz` (dependencies reachable and not draining).
pub fn ops_router(ready: ReadyCheck) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/readyz",
        get(move || {
            let ready = ready.clone();
            async move {
                if crate::shutdown::is_draining() {
                    ApiError::unavailable("draining: this instance is stopping").into_response()
                } else if ready().await {
                    "ready".into_response()
                } else {
                    ApiError::unavailable("a dependency is not reachable").into_response()
                }
            }
        }),
    )
}

/// `GET /metrics` (Prometheus text) for the process: on an internal listener only.
pub fn metrics_router() -> Router {
    metrics_router_with(None)
}

/// Writes more Prometheus text at scrape time, from live state: series of things that
/// are gone (an upstream instance that left the pool) disappear with them.
pub type MetricsCollector = Arc<dyn Fn(&mut String) + Send + Sync>;

/// `GET /metrics` with the recorder's series followed by `collector`'s.
pub fn metrics_router_with(collector: Option<MetricsCollector>) -> Router {
    let handle = metrics_handle();
    Router::new().route(
        "/metrics",
        get(move || {
            let mut text = handle.render();
            if let Some(collect) = &collector {
                collect(&mut text);
            }
            std::future::ready(text)
        }),
    )
}

/// A label value in Prometheus' text format: backslash, quote and newline escaped.
pub fn label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    std::borrow::Cow::Owned(value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// Wraps a service router with the shared layers: request id set and propagated, a
/// trace span per request, metrics, body limit (413 in the API shape), a request
/// timeout, panic → opaque 500, and API-shaped 404/405 fallbacks.
pub fn with_common_layers(router: Router, service: &'static str, timeout: Duration) -> Router {
    let handles: Arc<HandleCache<(Counter, Histogram)>> = Arc::default();
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(move |req, next| record_metrics(service, handles.clone(), req, next)))
        .layer(middleware::from_fn(shape_layer_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, timeout))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response()))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(move |req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", %service, method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeFastRequestId))
}

/// A new request id: 32 hex digits, unique within the process and (by a random
/// per-process start) across processes. No syscall and one small allocation: a
/// UUID here cost a `getrandom` call and text formatting on every request.
pub fn next_request_id() -> HeaderValue {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u32(std::process::id());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The counter through a bijective mix: distinct counters give distinct ids.
    let mut z = n.wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut buf = [0u8; 32];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, word) in [seed, z].into_iter().enumerate() {
        for j in 0..16 {
            buf[i * 16 + j] = HEX[((word >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
    // Owned by its `Bytes` from the start: the id is cloned (into the request forwarded
    // and the answer), and a clone of copied bytes would allocate once more to share them.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf)).unwrap_or(HeaderValue::from_static("-"))
}

#[derive(Clone, Copy, Default)]
struct MakeFastRequestId;

impl MakeRequestId for MakeFastRequestId {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        Some(RequestId::new(next_request_id()))
    }
}

/// A bounded metric label for a method: the methods the API uses by name, any other
/// as `other`, so a client cannot create series by inventing methods.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Metric handles by label set, registered once: on a hit the request path neither
/// allocates label strings nor builds and hashes a metrics key (which the `counter!`
/// macros with owned labels do on every call).
pub struct HandleCache<V> {
    hasher: std::hash::RandomState,
    map: RwLock<HashMap<u64, Vec<Entry<V>>>>,
}

/// One cached label set (route, method label, status) and its handles.
type Entry<V> = (String, &'static str, u16, V);

impl<V> Default for HandleCache<V> {
    fn default() -> Self {
        Self { hasher: std::hash::RandomState::new(), map: RwLock::new(HashMap::new()) }
    }
}

impl<V> HandleCache<V> {
    /// Hands the handles for (`route`, `method`, `status`), made by `make` the first
    /// time, to `observe`; `method` is a [`method_label`]. On a hit they are used under
    /// the read lock, not cloned out: a clone and a drop of each handle would be two more
    /// atomic operations on a count that every thread serving requests shares.
    pub fn observe(
        &self,
        route: &str,
        method: &'static str,
        status: u16,
        make: impl FnOnce() -> V,
        observe: impl FnOnce(&V),
    ) {
        let mut h = self.hasher.build_hasher();
        route.hash(&mut h);
        method.hash(&mut h);
        status.hash(&mut h);
        let key = h.finish();
        let found =
            |list: &Vec<Entry<V>>| list.iter().position(|(r, m, s, _)| r == route && *m == method && *s == status);
        {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = map.get(&key)
                && let Some(i) = found(list)
            {
                return observe(&list[i].3);
            }
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(key).or_default();
        let i = found(list).unwrap_or_else(|| {
            list.push((route.to_owned(), method, status, make()));
            list.len() - 1
        });
        observe(&list[i].3);
    }
}

/// Layers outside the handlers (timeout, body limit) answer with plain text; give those
/// answers the API error shape.
async fn shape_layer_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let is_json =
        res.headers().get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || res.status().is_success() || res.status().is_informational() || res.status().is_redirection() {
        return res;
    }
    match res.status() {
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large().into_response(),
        StatusCode::GATEWAY_TIMEOUT => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "request timed out").into_response()
        }
        _ => res,
    }
}

async fn record_metrics(
    service: &'static str,
    handles: Arc<HandleCache<(Counter, Histogram)>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let res = next.run(req).await;
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let status = res.status().as_u16();
    let make = || {
        let labels = [
            ("service", service.to_owned()),
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
        ];
        (
            metrics::counter!("http_requests_total", &labels),
            metrics::histogram!("http_request_duration_seconds", &labels[..3]),
        )
    };
    handles.observe(route, method, status, make, |(count, duration)| {
        count.increment(1);
        duration.record(started.elapsed().as_secs_f64());
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_hex() {
        let ids: std::collections::HashSet<_> = (0..10_000).map(|_| next_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = next_request_id();
        assert_eq!(id.len(), 32);
        assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit));
    }

    #[test]
    fn handle_cache_makes_each_label_set_once() {
        let cache: HandleCache<u32> = HandleCache::default();
        fn get(
            cache: &HandleCache<u32>,
            route: &str,
            method: &'static str,
            status: u16,
            make: impl FnOnce() -> u32,
        ) -> u32 {
            let mut seen = 0;
            cache.observe(route, method, status, make, |v| seen = *v);
            seen
        }
        let mut made = 0;
        for _ in 0..3 {
            assert_eq!(
                get(&cache, "/a", "GET", 200, || {
                    made += 1;
                    1
                }),
                1
            );
            assert_eq!(
                get(&cache, "/a", "POST", 200, || {
                    made += 1;
                    2
                }),
                2
            );
            assert_eq!(
                get(&cache, "/a", "GET", 404, || {
                    made += 1;
                    3
                }),
                3
            );
            assert_eq!(
                get(&cache, "/b", "GET", 200, || {
                    made += 1;
                    4
                }),
                4
            );
        }
        assert_eq!(made, 4);
    }
}
