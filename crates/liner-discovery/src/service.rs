//! The generated `discovery.v1.Discovery` trait, implemented over the lease table.
//!
//! Watch streams are fed by one task per subscriber that forwards the service's watch
//! channel; the task ends when the client goes away or the server shuts down, so a
//! graceful shutdown is never held open by a watcher.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::proto::discovery_server::Discovery;
use crate::proto::{
    DeregisterRequest, DeregisterResponse, HeartbeatRequest, HeartbeatResponse, ListRequest, ListResponse,
    RegisterRequest, RegisterResponse, WatchRequest, WatchResponse,
};
use crate::registry::Registry;

pub struct DiscoveryService {
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    access: Access,
}

impl DiscoveryService {
    pub fn new(registry: Arc<Registry>, shutdown: CancellationToken, access: Access) -> Self {
        Self { registry, shutdown, access }
    }
}

/// Who may call: with a token, only callers that present it (`authorization: Bearer
/// <token>`, compared in constant time) may register, heartbeat or deregister, and, unless
/// reads are open, list or watch. Without one the registry is open (a development setup
/// on one machine); `liner up` always makes one.
#[derive(Clone, Default)]
pub struct Access {
    expected: Option<Arc<[u8]>>,
    open_reads: bool,
}

impl Access {
    pub fn new(token: Option<&str>, open_reads: bool) -> Self {
        Self { expected: token.map(|t| Arc::from(format!("Bearer {t}").into_bytes())), open_reads }
    }

    fn check<T>(&self, req: &Request<T>, read: bool) -> Result<(), Status> {
        let Some(expected) = &self.expected else { return Ok(()) };
        if read && self.open_reads {
            return Ok(());
        }
        let given = req.metadata().get("authorization").map(|v| v.as_bytes()).unwrap_or_default();
        if bool::from(subtle::ConstantTimeEq::ct_eq(given, &expected[..])) {
            Ok(())
        } else {
            metrics::counter!("discovery_unauthenticated_total").increment(1);
            Err(Status::unauthenticated("a valid discovery token is required"))
        }
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[tonic::async_trait]
impl Discovery for DiscoveryService {
    async fn register(&self, req: Request<RegisterRequest>) -> Result<Response<RegisterResponse>, Status> {
        self.access.check(&req, false)?;
        let (lease_id, ttl) = self.registry.register(req.into_inner())?;
        Ok(Response::new(RegisterResponse { lease_id, ttl_seconds: secs(ttl) }))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        self.access.check(&req, false)?;
        let req = req.into_inner();
        let renewed = self.registry.heartbeat(&req.lease_id, req.registration)?;
        Ok(Response::new(HeartbeatResponse {
            lease_id: renewed.lease_id,
            ttl_seconds: secs(renewed.ttl),
            reregistered: renewed.reregistered,
        }))
    }

    async fn deregister(&self, req: Request<DeregisterRequest>) -> Result<Response<DeregisterResponse>, Status> {
        self.access.check(&req, false)?;
        let removed = self.registry.deregister(&req.into_inner().lease_id);
        Ok(Response::new(DeregisterResponse { removed }))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        self.access.check(&req, true)?;
        let service = req.into_inner().service;
        Ok(Response::new(ListResponse { instances: self.registry.list(&service), complete: self.registry.complete() }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send + 'static>>;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        self.access.check(&req, true)?;
        let service = req.into_inner().service;
        if service.is_empty() || service.len() > 64 {
            return Err(Status::invalid_argument("service: 1-64 characters"));
        }
        let mut rx = self.registry.subscribe(&service);
        let registry = self.registry.clone();
        let shutdown = self.shutdown.clone();
        let (tx, out) = mpsc::channel(2);
        tokio::spawn(async move {
            loop {
                let complete = registry.complete();
                let instances = rx.borrow_and_update().as_ref().clone();
                if tx.send(Ok(WatchResponse { instances, complete })).await.is_err() {
                    return;
                }
                // While incomplete, wake once more when the registry becomes complete so
                // watchers learn they may now trust removals.
                let becomes_complete = async {
                    if complete {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep_until(registry.complete_at()).await;
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tx.closed() => return,
                    changed = rx.changed() => if changed.is_err() { return },
                    () = becomes_complete => {}
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }
}
