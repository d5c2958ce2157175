//! Forwarding: one request in, one request to an upstream instance, the answer back.
//!
//! Bodies stream both ways (never buffered). A WebSocket (any HTTP/1.1 upgrade) is
//! forwarded as a handshake, then both upgraded connections are spliced into a byte
//! tunnel; frames are not re-parsed. Hop-by-hop headers are stripped, and the headers
//! that upstreams trust (`x-forwarded-*`) are always written by the gateway itself,
//! never passed through from a client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use liner_shared::ApiError;
use liner_shared::http::REQUEST_ID;

use crate::upstreams::{Upstreams, service_for};

#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<Upstreams>,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
}

impl Proxy {
    pub fn new(upstreams: Arc<Upstreams>, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Self { upstreams, client, timeout }
    }
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

/// Headers only the gateway may set; a client's copies are dropped.
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

fn bad_gateway(message: &str) -> Response {
    ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", message).into_response()
}

pub async fn handle(
    State(proxy): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let Some(service) = service_for(req.uri().path()) else {
        return ApiError::not_found("no such route").into_response();
    };
    let Some(base) = proxy.upstreams.pick(service) else {
        return ApiError::unavailable(format!("no healthy {service} instance")).into_response();
    };
    let upgrade = is_upgrade(req.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(uri) = format!("{base}{path}").parse::<Uri>() else {
        return ApiError::bad_request("bad_path", "request path cannot be forwarded").into_response();
    };
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, upgrade);
    for name in INTERNAL {
        parts.headers.remove(*name);
    }
    if let Ok(ip) = HeaderValue::from_str(&peer.ip().to_string()) {
        parts.headers.insert("x-forwarded-for", ip);
    }
    parts.headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = parts.headers.get(header::HOST).cloned() {
        parts.headers.insert("x-forwarded-host", host);
    }
    parts.headers.remove(header::HOST);

    let call = proxy.client.request(Request::from_parts(parts, body));
    let result = if upgrade {
        call.await
    } else {
        match tokio::time::timeout(proxy.timeout, call).await {
            Ok(r) => r,
            Err(_) => {
                return ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!("{service} did not answer in time"),
                )
                .into_response();
            }
        }
    };
    let mut res = match result {
        Ok(res) => res,
        Err(e) if e.is_connect() => {
            tracing::warn!(%service, upstream = %base, error = %e, "upstream connect failed");
            return ApiError::unavailable(format!("{service} is unavailable")).into_response();
        }
        Err(e) => {
            tracing::warn!(%service, upstream = %base, error = %e, "upstream failed");
            return bad_gateway(&format!("{service} failed to answer"));
        }
    };
    if let (Some(client_side), StatusCode::SWITCHING_PROTOCOLS) = (client_side, res.status()) {
        let upstream_side = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            match tokio::try_join!(client_side, upstream_side) {
                Ok((client, upstream)) => {
                    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(upstream)).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        let (mut parts, _) = res.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, Body::new(body))
}

/// Sets `x-request-id` when the client sent none, forwards it, and echoes it back.
pub async fn ensure_request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_str(&uuid_like()).unwrap_or(HeaderValue::from_static("-")));
    req.headers_mut().insert(REQUEST_ID, id.clone());
    let mut res = next.run(req).await;
    res.headers_mut().insert(REQUEST_ID, id);
    res
}

fn uuid_like() -> String {
    liner_shared::new_id()
}
