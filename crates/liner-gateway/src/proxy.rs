//! Forwarding: one request in, one request to an upstream instance, the answer back.
//!
//! The phases, in order (each may answer on its own, always in the API error shape
//! and with an `x-liner-error` header naming the gateway as the source):
//! 1. route: path prefix → service (404);
//! 2. admission: global in-flight cap (503, load shedding), rate limit per client IP
//!    (429 + `Retry-After`);
//! 3. edge auth on writes and WebSocket connects (401; 503 if keys are unavailable),
//!    then the rate limit per token subject (429);
//! 4. request size limit (413): REST bodies are small, so they are read into memory
//!    up to the limit, which also makes a retry possible;
//! 5. pick an instance (power of two choices over ready, non-tripped instances) and
//!    send, with the route's timeout on the answer's head (504);
//! 6. retry on another instance, within the retry budget, only when it cannot
//!    duplicate a write: after a connect failure (nothing was sent, any method) or a
//!    503 answer or a connection that broke before any answer, for a safe method
//!    (GET/HEAD/OPTIONS). A write is never resent once it may have reached an
//!    instance, and a timeout is never retried.
//!
//! Response bodies stream back (never buffered), capped at the response size limit. A
//! WebSocket (any HTTP/1.1 upgrade) is forwarded as a handshake, then both upgraded
//! connections are spliced into a byte tunnel (`copy_bidirectional`, whose bounded
//! buffers give back-pressure both ways); frames are not re-parsed. Hop-by-hop headers
//! are stripped, and the headers that upstreams trust (`x-forwarded-*`, `x-liner-*`)
//! are always written by the gateway itself, never passed through from a client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use liner_shared::ApiError;
use liner_shared::http::{HandleCache, REQUEST_ID};
use metrics::{Counter, Histogram};

use crate::auth::{EdgeAuth, needs_token};
use crate::balance::{Pool, UpstreamStatus};
use crate::breaker::Outcome;
use crate::limits::{InFlight, RateLimiter, RetryBudget, retry_after_secs};
use crate::upstreams::service_for;

/// Buffer per direction of a WebSocket tunnel. Every open tunnel keeps both, idle or
/// not; chat frames are small (at most 16 KiB, usually a few hundred bytes), so 2 KiB
/// costs no extra reads for them where tokio's default (8 KiB) would cost 12 KiB more
/// memory per connection.
const TUNNEL_BUFFER_BYTES: usize = 2 * 1024;

/// The header on every answer the gateway makes up itself.
pub const GATEWAY_ERROR: &str = "x-liner-error";

/// Everything a forwarded request needs, shared by all requests.
pub struct Proxy {
    pub pools: HashMap<&'static str, Arc<Pool>>,
    pub client: Client<HttpConnector, Body>,
    pub timeouts: HashMap<&'static str, Duration>,
    pub default_timeout: Duration,
    pub auth: Option<Arc<EdgeAuth>>,
    pub ip_limit: Option<RateLimiter>,
    pub user_limit: Option<RateLimiter>,
    pub in_flight: InFlight,
    pub retry_budget: RetryBudget,
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    /// Tries per request, the first included.
    pub max_attempts: usize,
    /// Cancelled once the server has drained: open WebSocket tunnels close then.
    pub tunnels_stop: tokio_util::sync::CancellationToken,
    /// `gateway_requests_total` / `_duration_seconds` handles by (route, method, status).
    pub metrics: HandleCache<(Counter, Histogram)>,
}

/// The shared upstream HTTP client: HTTP/1.1, short connect timeout, pooled.
pub fn http_client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Headers only the gateway may set; a client's copies are dropped (plus any `x-liner-*`).
const INTERNAL: &[&str] = &["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip"];

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let upgrade = headers.get(header::UPGRADE).cloned();
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        headers.remove(name);
    }
    if keep_upgrade && let Some(upgrade) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, upgrade);
    }
}

fn strip_internal(headers: &mut HeaderMap) {
    let liner: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with("x-liner-")).cloned().collect();
    for name in INTERNAL.iter().map(|n| header::HeaderName::from_static(n)).chain(liner) {
        headers.remove(name);
    }
}

/// An answer the gateway makes itself: the API error shape plus `x-liner-error`.
pub fn synthetic(err: ApiError) -> Response {
    let code = err.code;
    let mut res = err.into_response();
    res.headers_mut().insert(GATEWAY_ERROR, HeaderValue::from_static(code));
    res
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError { retry_after: Some(1), ..ApiError::unavailable(message) }
}

/// The upstream connection closed (or was reset) before an answer started.
fn broke_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    use std::error::Error;
    let mut source = e.source();
    while let Some(err) = source {
        // hyper wraps I/O errors in its own type, so a reset shows up as a hyper error
        // with an io::Error beneath it: keep walking rather than stop at the wrapper.
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe);
        }
        source = err.source();
    }
    false
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The axum handler behind every proxied path.
pub async fn handle(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let Some(service) = service_for(req.uri().path()) else {
        // Outside `/api/` is the web client; an unknown `/api/` path stays a JSON 404.
        if liner_web::is_web_path(req.uri().path()) {
            return liner_web::serve(req).await;
        }
        return synthetic(ApiError::not_found("no such route"));
    };
    let method = req.method().clone();
    let res = proxy.forward(service, peer, req).await.unwrap_or_else(synthetic);
    let status = res.status().as_u16();
    let (count, duration) = proxy.metrics.get(service, &method, status, || {
        let labels = [("route", service.to_owned()), ("method", method.to_string()), ("status", status.to_string())];
        (
            metrics::counter!("gateway_requests_total", &labels),
            metrics::histogram!("gateway_request_duration_seconds", &labels[..1]),
        )
    });
    count.increment(1);
    duration.record(started.elapsed().as_secs_f64());
    res
}

impl Proxy {
    async fn forward(&self, service: &'static str, peer: SocketAddr, mut req: Request) -> Result<Response, ApiError> {
        let Some(_admitted) = self.in_flight.try_acquire() else {
            metrics::counter!("gateway_shed_total").increment(1);
            return Err(unavailable("the gateway is overloaded; retry shortly"));
        };
        if let Some(limit) = &self.ip_limit
            && let Err(wait) = limit.check(&peer.ip().to_string())
        {
            return Err(ApiError::too_many("too many requests from this address", retry_after_secs(wait)));
        }
        let upgrade = is_upgrade(req.headers());
        let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();

        if let Some(auth) = &self.auth
            && needs_token(&parts.method, parts.uri.path(), upgrade)
        {
            let claims = auth.check(&parts, upgrade).await?;
            if let Some(limit) = &self.user_limit
                && let Err(wait) = limit.check(&claims.sub)
            {
                return Err(ApiError::too_many("too many requests for this user", retry_after_secs(wait)));
            }
        }

        let too_large = || liner_shared::error::payload_too_large();
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_request_bytes as u64) {
            return Err(too_large());
        }
        let body = if upgrade {
            Bytes::new()
        } else {
            match Limited::new(body, self.max_request_bytes).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
                Err(_) => return Err(ApiError::bad_request("bad_body", "request body could not be read")),
            }
        };

        strip_hop_by_hop(&mut parts.headers, upgrade);
        strip_internal(&mut parts.headers);
        if let Ok(ip) = HeaderValue::from_str(&peer.ip().to_string()) {
            parts.headers.insert("x-forwarded-for", ip);
        }
        parts.headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        if let Some(host) = parts.headers.get(header::HOST).cloned() {
            parts.headers.insert("x-forwarded-host", host);
        }
        parts.headers.remove(header::HOST);
        let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));

        let Some(pool) = self.pools.get(service) else {
            return Err(unavailable(format!("no {service} instance")));
        };
        let timeout = self.timeouts.get(service).copied().unwrap_or(self.default_timeout);
        self.retry_budget.deposit();
        let mut tried = Vec::new();
        let mut last_error = None;
        let mut res = loop {
            let Some(lease) = pool.pick(&tried) else {
                return Err(last_error.unwrap_or_else(|| unavailable(format!("no healthy {service} instance"))));
            };
            let endpoint = lease.endpoint.clone();
            tried.push(endpoint.clone());
            let Ok(uri) = endpoint.uri(path.clone()) else {
                return Err(ApiError::bad_request("bad_path", "request path cannot be forwarded"));
            };
            let mut out = Request::new(Body::from(body.clone()));
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = uri;
            *out.version_mut() = http::Version::HTTP_11;
            *out.headers_mut() = parts.headers.clone();

            let sent = Instant::now();
            let result = tokio::time::timeout(timeout, self.client.request(out)).await;
            let observe = |status: UpstreamStatus| endpoint.observe(status, sent.elapsed());
            let retry_allowed = |tried: usize| tried < self.max_attempts && self.retry_budget.withdraw();
            match result {
                Err(_) => {
                    observe(UpstreamStatus::Timeout);
                    endpoint.record(Outcome::Failure);
                    tracing::warn!(%service, upstream = %endpoint.address, ?timeout, "upstream timed out");
                    return Err(ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream_timeout",
                        format!("{service} did not answer in time"),
                    ));
                }
                Ok(Err(e)) if e.is_connect() => {
                    observe(UpstreamStatus::ConnectError);
                    endpoint.record(Outcome::ConnectFailure);
                    tracing::warn!(%service, upstream = %endpoint.address, error = %e, "upstream connect failed");
                    last_error = Some(unavailable(format!("{service} is unavailable")));
                    if retry_allowed(tried.len()) {
                        metrics::counter!("gateway_retries_total", "service" => service, "reason" => "connect")
                            .increment(1);
                        continue;
                    }
                    return Err(last_error.unwrap_or_else(|| unavailable(format!("{service} is unavailable"))));
                }
                Ok(Err(e)) => {
                    observe(UpstreamStatus::Error);
                    endpoint.record(Outcome::Failure);
                    tracing::warn!(%service, upstream = %endpoint.address, error = %e, "upstream failed");
                    last_error = Some(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "bad_gateway",
                        format!("{service} failed to answer"),
                    ));
                    // A safe method has no effect to duplicate: a connection that broke
                    // before any answer (e.g. the instance died) is retried too.
                    if is_safe(&parts.method) && broke_before_answer(&e) && retry_allowed(tried.len()) {
                        metrics::counter!("gateway_retries_total", "service" => service, "reason" => "broken")
                            .increment(1);
                        continue;
                    }
                    return Err(last_error.unwrap_or_else(|| unavailable(format!("{service} is unavailable"))));
                }
                Ok(Ok(res)) => {
                    let status = res.status();
                    observe(UpstreamStatus::Answered(status));
                    endpoint.record(if status.is_server_error() { Outcome::Failure } else { Outcome::Success });
                    // Retry only when another instance could answer; else pass this answer on.
                    if status == StatusCode::SERVICE_UNAVAILABLE
                        && is_safe(&parts.method)
                        && pool.has_other(&tried)
                        && retry_allowed(tried.len())
                    {
                        metrics::counter!("gateway_retries_total", "service" => service, "reason" => "503")
                            .increment(1);
                        continue;
                    }
                    break res;
                }
            }
        };

        if let (Some(client_side), StatusCode::SWITCHING_PROTOCOLS) = (client_side, res.status()) {
            let upstream_side = hyper::upgrade::on(&mut res);
            let stop = self.tunnels_stop.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_side, upstream_side) {
                    Ok((client, upstream)) => {
                        let open = metrics::gauge!("gateway_websocket_tunnels", "service" => service);
                        open.increment(1.0);
                        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, TUNNEL_BUFFER_BYTES, TUNNEL_BUFFER_BYTES) => {}
                            () = stop.cancelled() => {}
                        }
                        open.decrement(1.0);
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                }
            });
            let (mut parts, _) = res.into_parts();
            strip_hop_by_hop(&mut parts.headers, true);
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let declared = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_response_bytes as u64) {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_response_too_large",
                format!("{service} answered more than the gateway forwards"),
            ));
        }
        let (mut parts, body) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers, false);
        Ok(Response::from_parts(parts, Body::new(Limited::new(body, self.max_response_bytes))))
    }
}

/// Sets `x-request-id` when the client sent none, forwards it, and echoes it back.
pub async fn ensure_request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .cloned()
        .unwrap_or_else(liner_shared::http::next_request_id);
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert(REQUEST_ID, id);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_supplied_internal_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-liner-user", HeaderValue::from_static("admin"));
        h.insert("x-other", HeaderValue::from_static("kept"));
        strip_internal(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-other"));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_but_upgrade_kept_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade, x-secret"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("5"));
        assert!(is_upgrade(&h));
        let mut plain = h.clone();
        strip_hop_by_hop(&mut plain, false);
        assert!(plain.is_empty());
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get(header::UPGRADE).map(|v| v.as_bytes()), Some(&b"websocket"[..]));
        assert!(!h.contains_key("x-secret"));
    }
}
