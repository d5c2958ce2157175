//! The request path, in named phases (the shape of pingora's `ProxyHttp`: request
//! filter, upstream peer, upstream request/response filters, logging), each a method of
//! [`Proxy`] with one concern:
//!
//! 1. **edge** (every request, `edge`): request id, `Host` check (400), the request
//!    span, the access log line;
//! 2. **route** (`edge`): path prefix → service, straight to [`Proxy::handle`]; other
//!    paths go to the pages' router (the web client; 404 for an unknown `/api/` path);
//! 3. **admit**: rate limit per client address (429 + `Retry-After`); the address is the
//!    peer's, or from `X-Forwarded-For` when the peer is a trusted proxy
//!    (`liner_shared::net`), and it is what the upstream receives as `X-Forwarded-For`;
//! 4. **authenticate**: edge auth on writes and WebSocket connects (401; 503 while no
//!    keys can be fetched), then the rate limit per token subject (429);
//! 5. **read body**: at most the request size limit (413), no pause longer than the
//!    body timeout (408). Only after it does the request take one of the global
//!    in-flight slots (503, load shedding): a client that stalls its body holds a
//!    connection, never a slot that others need;
//! 6. **(pick → send → classify)\***: power of two choices over ready, non-tripped
//!    instances; the route's timeout on the answer's head; `classify` turns the result
//!    into one [`Outcome`] that the breaker, the metrics and the retry policy all read
//!    (`attempt`). A retry goes to another instance within the retry budget, only when
//!    it cannot duplicate a write;
//! 7. **respond** (the body streams back, capped) or **tunnel** (a WebSocket's two
//!    upgraded connections spliced, `tunnel`);
//! 8. **logging**: request metrics by route, bounded method label and status.
//!
//! Every answer the gateway makes itself has the API error shape and an
//! `x-liner-error` header. Hop-by-hop headers are stripped, and the headers upstreams
//! trust (`x-forwarded-*`, `x-liner-*`) are written by the gateway, never passed on.
//!
//! Hand-written on purpose: the retry loop (tower's `Retry` wants a cloneable request;
//! here the body is read once into `Bytes` and the policy depends on the outcome, the
//! method and the pool) and P2C over live in-flight counts with per-endpoint breakers
//! (tower's `p2c` balances over a `Discover` stream of services and has no breaker).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use liner_shared::ApiError;
use liner_shared::http::{HandleCache, method_label};
use liner_shared::rate::KeyedLimit;
use liner_shared::tls::PeerConnector;
use metrics::{Counter, Histogram};

use crate::attempt::Outcome;
use crate::auth::{EdgeAuth, needs_token};
use crate::balance::Pool;
use crate::connections::{OutgoingBody, SendError};
use crate::limits::{RetryBudget, retry_after_secs};

/// The header on every answer the gateway makes up itself.
pub const GATEWAY_ERROR: &str = "x-liner-error";

/// Everything a forwarded request needs, shared by all requests.
pub struct Proxy {
    pub pools: HashMap<&'static str, Arc<Pool>>,
    /// Opens upstream connections: plain HTTP, or TLS for `https://` instances when a
    /// CA is configured (each instance keeps its connections, see `connections`).
    pub connector: PeerConnector,
    pub timeouts: HashMap<&'static str, Duration>,
    pub default_timeout: Duration,
    pub auth: Option<Arc<EdgeAuth>>,
    pub ip_limit: Option<KeyedLimit<IpAddr>>,
    /// Proxies in front of the gateway whose `X-Forwarded-For` names the client.
    pub trusted_proxies: liner_shared::net::TrustedProxies,
    pub user_limit: Option<KeyedLimit<String>>,
    /// Requests on their way to an upstream; none free → 503.
    pub in_flight: tokio::sync::Semaphore,
    pub retry_budget: RetryBudget,
    pub max_request_bytes: usize,
    /// Longest pause while reading a request body (408 past it).
    pub body_timeout: Duration,
    pub max_response_bytes: usize,
    /// Tries per request, the first included.
    pub max_attempts: usize,
    /// Cancelled once the server has drained: open WebSocket tunnels close then.
    pub tunnels_stop: tokio_util::sync::CancellationToken,
    /// `gateway_requests_total` / `_duration_seconds` handles by (route, method, status).
    pub metrics: HandleCache<(Counter, Histogram)>,
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

const X_FORWARDED_FOR: header::HeaderName = header::HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: header::HeaderName = header::HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: header::HeaderName = header::HeaderName::from_static("x-forwarded-host");

/// Headers only the gateway may set; a client's copies are dropped (plus any `x-liner-*`).
const INTERNAL: &[&str] = &["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip"];

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Strips hop-by-hop headers, and keeps `Upgrade` (with `Connection: upgrade`) when
/// asked. Most messages carry none, so one pass over the names decides first: removing
/// by name hashes each of them, present or not.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    if !headers.keys().any(|name| HOP_BY_HOP.contains(&name.as_str())) {
        return;
    }
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

/// Drops a client's copies of the headers only the gateway may set (one pass first, as
/// for hop-by-hop headers).
fn strip_internal(headers: &mut HeaderMap) {
    let internal = |name: &header::HeaderName| {
        let name = name.as_str();
        INTERNAL.contains(&name) || name.starts_with("x-liner-")
    };
    if !headers.keys().any(internal) {
        return;
    }
    let found: Vec<_> = headers.keys().filter(|name| internal(name)).cloned().collect();
    for name in found {
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
fn broke_before_answer(e: &hyper::Error) -> bool {
    use std::error::Error;
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return true;
    }
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe);
        }
        source = err.source();
    }
    false
}

/// The client end of one connection, as the proxy sees it.
pub struct Peer {
    pub addr: SocketAddr,
    /// The peer's address as an `X-Forwarded-For` value, written once per connection.
    forwarded_for: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, forwarded_for: forwarded_for(addr.ip()) }
    }
}

fn forwarded_for(client: IpAddr) -> HeaderValue {
    HeaderValue::try_from(client.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A request on its way out: the incoming head, rewritten for the upstream hop, and
/// the body read in full (so that a retry can resend it).
struct Outgoing {
    parts: http::request::Parts,
    path: http::uri::PathAndQuery,
    body: Bytes,
}

impl Outgoing {
    /// The upstream request filter: hop-by-hop headers out, the trusted `x-forwarded-*`
    /// headers written by the gateway itself (a client's copies are dropped).
    fn new(mut parts: http::request::Parts, body: Bytes, forwarded_for: HeaderValue, upgrade: bool) -> Self {
        let headers = &mut parts.headers;
        strip_hop_by_hop(headers, upgrade);
        strip_internal(headers);
        headers.insert(X_FORWARDED_FOR, forwarded_for);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        if let Some(host) = headers.remove(header::HOST) {
            headers.insert(X_FORWARDED_HOST, host);
        }
        let path = parts.uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        Self { parts, path, body }
    }

    /// This request, sent to `target` (origin-form) on `host`. The headers are copied
    /// only when another attempt may follow (`again`); the last one takes them.
    fn to(&mut self, target: http::Uri, host: &HeaderValue, again: bool) -> Request<OutgoingBody> {
        let mut out = Request::new(OutgoingBody::new(self.body.clone()));
        *out.method_mut() = self.parts.method.clone();
        *out.uri_mut() = target;
        *out.headers_mut() = if again { self.parts.headers.clone() } else { std::mem::take(&mut self.parts.headers) };
        out.headers_mut().insert(header::HOST, host.clone());
        out
    }
}

/// The answer for a request whose last attempt got no answer.
fn no_answer(service: &str, outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::TimedOut => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", format!("{service} did not answer in time"))
        }
        Outcome::ConnectFailed => unavailable(format!("{service} is unavailable")),
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", format!("{service} failed to answer")),
    }
}

impl Proxy {
    /// A request under `/api/SERVICE/` (the edge phase has run, see `edge`): the
    /// answer, forwarded or the gateway's own, then the logging phase.
    pub async fn handle(
        &self,
        service: &'static str,
        peer: &Peer,
        req: Request<Incoming>,
        started: Instant,
    ) -> Response {
        let method = req.method().clone();
        // Boxed: awaiting a future keeps room for it twice in the awaiting one (once as
        // the value, once as the awaitee), and the edge's answer, which holds this one
        // and is built and moved on every request, was 14 KB for a 6 KB request path.
        let res = Box::pin(self.proxy(service, peer, req)).await.unwrap_or_else(synthetic);
        self.logging(service, &method, res.status(), started);
        res
    }

    /// The request path, phase by phase; each phase may end it with its own answer.
    /// The order matters: nothing a client can stall (its body) is read while it holds
    /// one of the in-flight slots, which only requests on their way to an upstream take.
    async fn proxy(
        &self,
        service: &'static str,
        peer: &Peer,
        mut req: Request<Incoming>,
    ) -> Result<Response, ApiError> {
        let client = self.trusted_proxies.client_addr(req.headers(), peer.addr.ip());
        self.admit(client)?;
        let upgrade = is_upgrade(req.headers());
        let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        self.authenticate(&parts, upgrade).await?;
        let body = if upgrade { Bytes::new() } else { self.read_body(&parts, body).await? };
        let Ok(_slot) = self.in_flight.try_acquire() else {
            metrics::counter!("gateway_shed_total").increment(1);
            return Err(unavailable("the gateway is overloaded; retry shortly"));
        };
        let forwarded_for = if client == peer.addr.ip() { peer.forwarded_for.clone() } else { forwarded_for(client) };
        let outgoing = Outgoing::new(parts, body, forwarded_for, upgrade);
        let res = self.forward(service, outgoing).await?;
        match client_side {
            Some(client_side) if res.status() == StatusCode::SWITCHING_PROTOCOLS => {
                Ok(self.tunnel(service, client_side, res))
            }
            _ => self.respond(service, res),
        }
    }

    /// Send: `outgoing` to `target` on `endpoint`, on one of its connections (`again`:
    /// another attempt may follow); the answer's head. An instance whose base URL
    /// names no host cannot be reached at all.
    async fn send(
        &self,
        endpoint: &crate::balance::Endpoint,
        outgoing: &mut Outgoing,
        target: http::Uri,
        again: bool,
        now: Instant,
    ) -> Result<Response<Incoming>, SendError> {
        let Some(origin) = endpoint.origin() else {
            return Err(SendError::Connect(format!("{} is not an absolute URL", endpoint.base_url).into()));
        };
        let request = outgoing.to(target, &origin.host, again);
        endpoint.connections.send(&self.connector, &origin.uri, request, now).await
    }

    /// Admission: the rate limit per client address (429 + `Retry-After`).
    fn admit(&self, client: IpAddr) -> Result<(), ApiError> {
        if let Some(limit) = &self.ip_limit
            && let Err(wait) = limit.check(&client)
        {
            return Err(ApiError::too_many("too many requests from this address", retry_after_secs(wait)));
        }
        Ok(())
    }

    /// Edge authentication on writes and WebSocket connects, then the per-user rate limit.
    async fn authenticate(&self, parts: &http::request::Parts, upgrade: bool) -> Result<(), ApiError> {
        let Some(auth) = &self.auth else { return Ok(()) };
        if !needs_token(&parts.method, parts.uri.path(), upgrade) {
            return Ok(());
        }
        // Boxed: only writes carry this future's state (a key fetch's), not every request.
        let claims = Box::pin(auth.check(parts, upgrade)).await?;
        if let Some(limit) = &self.user_limit
            && let Err(wait) = limit.check(&claims.sub)
        {
            return Err(ApiError::too_many("too many requests for this user", retry_after_secs(wait)));
        }
        Ok(())
    }

    /// Reads the whole body: at most `max_request_bytes` (413), and with no pause longer
    /// than `body_timeout` between two pieces of it (408, and the connection closes).
    async fn read_body(&self, parts: &http::request::Parts, body: Incoming) -> Result<Bytes, ApiError> {
        if hyper::body::Body::is_end_stream(&body) {
            return Ok(Bytes::new()); // no body (a GET, or `Content-Length: 0`): nothing to wait for
        }
        let too_large = liner_shared::error::payload_too_large;
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_request_bytes as u64) {
            return Err(too_large());
        }
        let mut body = Limited::new(body, self.max_request_bytes);
        let mut pieces: Vec<Bytes> = Vec::new();
        loop {
            let frame = match tokio::time::timeout(self.body_timeout, body.frame()).await {
                Err(_) => return Err(request_timeout()),
                Ok(None) => break,
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
                Ok(Some(Err(_))) => return Err(ApiError::bad_request("bad_body", "request body could not be read")),
            };
            if let Ok(data) = frame.into_data() {
                pieces.push(data);
            }
        }
        Ok(match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.swap_remove(0),
            _ => pieces.concat().into(),
        })
    }

    /// (pick → send → classify)*: tries instances until one answers, or the outcome,
    /// the attempt cap, the retry budget or the lack of another instance says to stop.
    /// The next instance is picked before this attempt's answer is given up, so a
    /// request ends with its last attempt's answer (an upstream's 503 passed on) or,
    /// when it got none, with the error for how that attempt ended.
    async fn forward(&self, service: &'static str, mut outgoing: Outgoing) -> Result<Response<Incoming>, ApiError> {
        let Some(pool) = self.pools.get(service) else {
            return Err(unavailable(format!("no {service} instance")));
        };
        let timeout = self.timeouts.get(service).copied().unwrap_or(self.default_timeout);
        self.retry_budget.deposit();
        let mut tried: smallvec::SmallVec<[Arc<crate::balance::Endpoint>; 4]> = smallvec::SmallVec::new();
        let Some(mut lease) = pool.pick(&tried) else {
            return Err(unavailable(format!("no healthy {service} instance")));
        };
        loop {
            tried.push(lease.endpoint.clone());
            // A path the instance's base URL cannot carry is the request's fault: 400,
            // with nothing told to the breaker.
            let target = lease
                .endpoint
                .target(&outgoing.path)
                .ok_or_else(|| ApiError::bad_request("bad_path", "request path cannot be forwarded"))?;
            // Decided before the try, so that the last one need not keep a copy to retry with.
            let again = tried.len() < self.max_attempts && pool.has_other(&tried);
            let sent = Instant::now();
            let deadline = tokio::time::Instant::from_std(sent) + timeout; // one clock read, not two
            let exchange =
                tokio::time::timeout_at(deadline, self.send(&lease.endpoint, &mut outgoing, target, again, sent));
            let (outcome, answer) = classify(exchange.await);
            lease.finish(outcome, sent.elapsed());
            let upstream = &lease.endpoint.address;
            tracing::Span::current().record("upstream", tracing::field::display(upstream));
            if let Some(reason) = outcome.retry_reason(&outgoing.parts.method)
                && again
                && self.retry_budget.withdraw()
            {
                // Picked after the budget allowed it, so that no breaker admits a probe
                // that is then not sent; a retry no instance can take is given back.
                if let Some(next) = pool.pick(&tried) {
                    tracing::info!(%service, %upstream, ?outcome, "retrying on another instance");
                    metrics::counter!("gateway_retries_total", "service" => service, "reason" => reason.as_str())
                        .increment(1);
                    lease = next;
                    continue;
                }
                self.retry_budget.refund();
            }
            return answer.ok_or_else(|| {
                tracing::warn!(%service, %upstream, ?outcome, "no answer from upstream");
                no_answer(service, outcome)
            });
        }
    }

    /// The answer streams back (never buffered), capped at the response size limit.
    fn respond(&self, service: &str, res: Response<Incoming>) -> Result<Response, ApiError> {
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

    /// A WebSocket (any HTTP/1.1 upgrade) that the upstream accepted: the 101 goes back
    /// to the client and both upgraded connections are spliced (see `tunnel`).
    fn tunnel(&self, service: &'static str, client_side: OnUpgrade, mut res: Response<Incoming>) -> Response {
        let upstream_side = hyper::upgrade::on(&mut res);
        let stop = self.tunnels_stop.clone();
        tokio::spawn(async move {
            match tokio::try_join!(client_side, upstream_side) {
                Ok((client, upstream)) => {
                    let open = metrics::gauge!("gateway_websocket_tunnels", "service" => service);
                    open.increment(1.0);
                    tokio::select! {
                        () = crate::tunnel::splice(client, upstream) => {}
                        () = stop.cancelled() => {}
                    }
                    open.decrement(1.0);
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        let (mut parts, _) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        Response::from_parts(parts, Body::empty())
    }

    /// Logging: `gateway_requests_total` / `_duration_seconds` by route, method (known
    /// methods only, others as `other`) and status.
    fn logging(&self, service: &'static str, method: &Method, status: StatusCode, started: Instant) {
        let method = method_label(method);
        let make = || {
            let labels =
                [("route", service.to_owned()), ("method", method.to_owned()), ("status", status.as_str().to_owned())];
            (
                metrics::counter!("gateway_requests_total", &labels),
                metrics::histogram!("gateway_request_duration_seconds", &labels[..1]),
            )
        };
        self.metrics.observe(service, method, status.as_u16(), make, |(count, duration)| {
            count.increment(1);
            duration.record(started.elapsed().as_secs_f64());
        });
    }
}

/// Classify: what one try ended with, and its answer when there was one.
fn classify(
    result: Result<Result<Response<Incoming>, SendError>, tokio::time::error::Elapsed>,
) -> (Outcome, Option<Response<Incoming>>) {
    match result {
        Ok(Ok(res)) => (Outcome::Answered(res.status()), Some(res)),
        Err(_) => (Outcome::TimedOut, None),
        Ok(Err(SendError::Connect(e))) => {
            tracing::debug!(error = %e, "cannot connect upstream");
            (Outcome::ConnectFailed, None)
        }
        Ok(Err(SendError::Exchange(e))) => {
            tracing::debug!(error = %e, "upstream exchange failed");
            (if broke_before_answer(&e) { Outcome::BrokeBeforeAnswer } else { Outcome::Failed }, None)
        }
    }
}

fn request_timeout() -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body stalled; send it again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_that_got_no_answer_ends_with_the_error_for_how_its_last_attempt_ended() {
        let unreachable = no_answer("review", Outcome::ConnectFailed);
        assert_eq!(unreachable.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unreachable.retry_after, Some(1));
        assert_eq!(no_answer("review", Outcome::BrokeBeforeAnswer).status, StatusCode::BAD_GATEWAY);
        assert_eq!(no_answer("review", Outcome::TimedOut).status, StatusCode::GATEWAY_TIMEOUT);
    }

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
