//! The public listener's service, and the first phase of every request on it.
//!
//! **edge** (every request, forwarded or answered here): the request id (set when the
//! client sent none, forwarded, echoed back), the `Host` check (400, RFC 9112), a span
//! that every later phase logs under (route, upstream and status are recorded into it
//! as they become known), the one-line access log, and `Connection: close` after an
//! answer that leaves the connection's framing in doubt (400, 408).
//!
//! Then **route**: a path under `/api/SERVICE/` goes straight to [`Proxy::handle`];
//! anything else (the web client, `/healthz`, `/readyz`, an unknown `/api/` path) to an
//! axum `Router`. CORS, when configured, wraps both.
//!
//! Written by hand rather than as an axum fallback behind `from_fn` middleware: every
//! API request passes here, and the router's matching, the middleware's boxed `Next`
//! chain, the extractors and the per-connection `map_request` wrapper are each a layer
//! of boxing and cloning per request that the proxy path does not need (their share of
//! the profile is in docs/BENCHMARKS.md, issue 7). A `Router` still serves the pages,
//! where its routing is what is wanted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use liner_shared::ApiError;
use liner_shared::http::{REQUEST_ID, method_label};
use tower::ServiceExt;
use tower_http::cors::{Cors, CorsLayer};
use tracing::Instrument;

use crate::proxy::{Peer, Proxy, synthetic};
use crate::upstreams::service_for;

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// What every connection's [`Edge`] shares.
pub struct EdgeConfig {
    pub proxy: Arc<Proxy>,
    /// Everything outside `/api/SERVICE/`: pages, health, the JSON 404.
    pub pages: Router,
    pub cors: Option<CorsLayer>,
    /// One `info` line per request on `liner::access`.
    pub access_log: bool,
}

impl EdgeConfig {
    /// The service of one accepted connection from `peer`.
    pub fn for_peer(self: &Arc<Self>, peer: SocketAddr) -> Edge {
        let routes = Routes { config: self.clone(), peer: Arc::new(Peer::new(peer)) };
        let cors = self.cors.as_ref().map(|cors| tower::Layer::layer(cors, routes.clone()));
        Edge { routes, cors }
    }
}

/// The public listener's service for one connection (a hyper service: `call` takes
/// `&self`). One boxed future per request, instrumented with the request's span; the
/// access log line is written inside it, at the end.
#[derive(Clone)]
pub struct Edge {
    routes: Routes,
    /// `routes` behind the CORS layer, when one is configured.
    cors: Option<Cors<Routes>>,
}

impl hyper::service::Service<Request<Incoming>> for Edge {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let started = Instant::now();
        let id = req
            .headers()
            .get(REQUEST_ID)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .cloned()
            .unwrap_or_else(liner_shared::http::next_request_id);
        req.headers_mut().insert(REQUEST_ID, id.clone());
        let service = service_for(req.uri().path());
        let span = tracing::info_span!(
            "request",
            request_id = %id.to_str().unwrap_or("-"),
            method = %method_label(req.method()),
            path = %req.uri().path(),
            route = %service.unwrap_or("-"),
            upstream = tracing::field::Empty,
        );
        let host = check_host(&req);
        let (routes, cors) = (self.routes.clone(), self.cors.clone());
        let access_log = self.routes.config.access_log;
        let answer = async move {
            let mut res = match (host, cors) {
                (Err(e), _) => synthetic(e),
                // Routed here rather than through `Routes::route`: one future less to build
                // and move on every request (each level of them is copied whole).
                (Ok(()), None) => match service {
                    Some(service) => routes.config.proxy.handle(service, &routes.peer, req, started).await,
                    None => routes.pages(req).await,
                },
                (Ok(()), Some(cors)) => cors.oneshot(req).await.unwrap_or_else(|never| match never {}),
            };
            if res.status() == StatusCode::REQUEST_TIMEOUT || res.status() == StatusCode::BAD_REQUEST {
                // The rest of what the client sent cannot be trusted to frame a next request.
                res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            if access_log {
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::info!(target: "liner::access", status = res.status().as_u16(), latency_ms, "request");
            }
            res.headers_mut().insert(REQUEST_ID, id);
            Ok(res)
        };
        Box::pin(answer.instrument(span))
    }
}

/// Route: `/api/SERVICE/…` to the proxy, the rest to the pages' router.
#[derive(Clone)]
pub struct Routes {
    config: Arc<EdgeConfig>,
    peer: Arc<Peer>,
}

impl Routes {
    async fn route(self, service: Option<&'static str>, req: Request<Incoming>, started: Instant) -> Response {
        match service {
            Some(service) => self.config.proxy.handle(service, &self.peer, req, started).await,
            None => self.pages(req).await,
        }
    }

    /// Everything outside `/api/SERVICE/`, to the pages' router.
    async fn pages(&self, mut req: Request<Incoming>) -> Response {
        req.extensions_mut().insert(ConnectInfo(self.peer.addr));
        let pages = self.config.pages.clone();
        pages.oneshot(req.map(Body::new)).await.unwrap_or_else(|never| match never {})
    }
}

/// The same as a tower service, for the CORS layer to wrap.
impl tower::Service<Request<Incoming>> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let service = service_for(req.uri().path());
        let routes = self.clone();
        Box::pin(async move { Ok(routes.route(service, req, Instant::now()).await) })
    }
}

/// The pages' fallback: the web client, or a JSON 404 for an unknown `/api/` path.
pub async fn pages_or_not_found(req: axum::extract::Request) -> Response {
    if liner_web::is_web_path(req.uri().path()) {
        return liner_web::serve(req).await;
    }
    synthetic(ApiError::not_found("no such route"))
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host`, a valid authority without
/// user info (HTTP/1.0 may omit it; HTTP/2 carries `:authority` instead).
fn check_host<B>(req: &Request<B>) -> Result<(), ApiError> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let bad = |message: &str| Err(ApiError::bad_request("bad_host", message));
    match (hosts.next(), hosts.next()) {
        (None, _) if req.version() == http::Version::HTTP_11 => bad("the Host header is required"),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => bad("only one Host header is allowed"),
        (Some(host), None) => {
            let authority = host.to_str().ok().and_then(|h| h.parse::<http::uri::Authority>().ok());
            if authority.is_some_and(|a| !a.as_str().contains('@')) {
                Ok(())
            } else {
                bad("the Host header is malformed")
            }
        }
    }
}
