//! The gateway's upstream connections: HTTP/1.1, kept by each instance, one list per
//! listener worker.
//!
//! Every request the gateway forwards goes through here, so it does not use hyper-util's
//! pooled client (which the other service-to-service calls keep): that pool keys its
//! connections by scheme and authority in one locked map, and hands each answered
//! connection back through a waiter; replacing it took the gateway's user CPU per
//! request from 16.7 to 13.6 µs (docs/BENCHMARKS.md, issue 7). Here the instance ([`crate::balance::Endpoint`]) owns
//! its connections, so finding them is a field access, and an instance that leaves the
//! pool takes them with it. Each listener worker has its own list, because a connection
//! is driven by a task on the runtime that opened it.
//!
//! A request takes the newest connection that is ready (hyper's `SendRequest::is_ready`:
//! the previous answer was read in full and the connection waits for the next request),
//! or opens one. A connection the instance closed while it sat idle hands the request
//! back unsent (`try_send_request`), and the request goes on to the next one. A
//! connection idle for longer than [`IDLE_TIMEOUT`] is closed, before the services' own
//! 30 s keep-alive limit can close it under a request; the health-check loop sweeps them
//! ([`Connections::close_idle`]) when no request passes by.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use liner_shared::tls::PeerConnector;

/// A forwarded request's body: read in full before it is sent (see `proxy`).
pub type OutgoingBody = http_body_util::Full<Bytes>;

/// How long a connection may sit unused before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an exchange failed.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened: nothing was sent.
    Connect(liner_shared::tls::BoxError),
    /// The exchange on an open connection failed.
    Exchange(hyper::Error),
}

struct Kept {
    sender: SendRequest<OutgoingBody>,
    last_used: Instant,
}

impl Kept {
    /// Closed by either side, or idle for too long.
    fn is_spent(&self, now: Instant) -> bool {
        self.sender.is_closed()
            || (self.sender.is_ready() && now.saturating_duration_since(self.last_used) > IDLE_TIMEOUT)
    }
}

/// One instance's open connections: a list per listener worker, and one more for
/// requests served on the shared runtime (`--workers 0`).
pub struct Connections {
    per_worker: Box<[Mutex<Vec<Kept>>]>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("open", &self.count()).finish()
    }
}

impl Connections {
    pub fn new(workers: usize) -> Self {
        Self { per_worker: (0..=workers).map(|_| Mutex::new(Vec::new())).collect() }
    }

    /// The list of the worker running this request.
    fn here(&self) -> MutexGuard<'_, Vec<Kept>> {
        let shared = self.per_worker.len() - 1;
        let i = liner_shared::server::worker_index().map_or(shared, |i| i.min(shared));
        self.per_worker[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends `request` (origin-form URI, `Host` set) on a ready connection, or on a new
    /// one to `origin` (`scheme://authority`); the answer's head, or why there is none.
    pub async fn send(
        &self,
        connector: &PeerConnector,
        origin: &Uri,
        mut request: Request<OutgoingBody>,
        now: Instant,
    ) -> Result<Response<Incoming>, SendError> {
        loop {
            let sending = {
                let mut kept = self.here();
                let Some(ready) = take_ready(&mut kept, now) else { break };
                ready.try_send_request(request)
            };
            match sending.await {
                Ok(answer) => return Ok(answer),
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent, // closed while idle: try the next
                    None => return Err(SendError::Exchange(failed.into_error())),
                },
            }
        }
        // Boxed: opening a connection is rare, and its state (the TLS connector's, the
        // handshake's) is the largest part of this future, which every request carries.
        let mut sender = Box::pin(open(connector, origin)).await?;
        let sending = sender.try_send_request(request);
        self.here().push(Kept { sender, last_used: now });
        sending.await.map_err(|failed| SendError::Exchange(failed.into_error()))
    }

    /// Closes the connections of every worker that are idle past [`IDLE_TIMEOUT`].
    pub fn close_idle(&self, now: Instant) {
        for list in &self.per_worker {
            list.lock().unwrap_or_else(|p| p.into_inner()).retain(|kept| !kept.is_spent(now));
        }
    }

    /// Open connections, all workers together.
    pub fn count(&self) -> usize {
        self.per_worker.iter().map(|list| list.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

/// A new connection to `origin`, driven by a task on this runtime.
async fn open(connector: &PeerConnector, origin: &Uri) -> Result<SendRequest<OutgoingBody>, SendError> {
    let io = connector.connect(origin.clone()).await.map_err(SendError::Connect)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| SendError::Connect(e.into()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// The newest ready connection, marked used at `now`; spent ones met on the way are
/// dropped (which closes them).
fn take_ready(kept: &mut Vec<Kept>, now: Instant) -> Option<&mut SendRequest<OutgoingBody>> {
    let mut i = kept.len();
    while i > 0 {
        i -= 1;
        if kept[i].is_spent(now) {
            kept.swap_remove(i);
        } else if kept[i].sender.is_ready() {
            kept[i].last_used = now;
            return Some(&mut kept[i].sender);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use http::StatusCode;
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use liner_shared::tls::ClientTls;
    use tokio::sync::Semaphore;

    use super::*;

    /// An instance on port 0 answering `ok` (with `Connection: close` when `close`). It
    /// records the client address of every request (one address, one connection), and
    /// holds every answer until `together` requests have arrived.
    struct Instance {
        origin: Uri,
        peers: Arc<Mutex<Vec<SocketAddr>>>,
    }

    impl Instance {
        async fn start(close: bool, together: usize) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let origin = format!("http://{}/", listener.local_addr().expect("addr")).parse().expect("uri");
            let peers = Arc::new(Mutex::new(Vec::new()));
            let gate = Arc::new(Semaphore::new(0)); // closed once `together` have arrived
            let seen = peers.clone();
            tokio::spawn(async move {
                while let Ok((tcp, peer)) = listener.accept().await {
                    let (seen, gate) = (seen.clone(), gate.clone());
                    let answer = hyper::service::service_fn(move |_req| {
                        let mut arrived = seen.lock().expect("peers");
                        arrived.push(peer);
                        if arrived.len() >= together {
                            gate.close();
                        }
                        let gate = gate.clone();
                        async move {
                            let _ = gate.acquire().await;
                            let mut res = Response::new(OutgoingBody::new(Bytes::from_static(b"ok")));
                            if close {
                                res.headers_mut().insert(http::header::CONNECTION, "close".parse().expect("value"));
                            }
                            Ok::<_, Infallible>(res)
                        }
                    });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), answer),
                    );
                }
            });
            Self { origin, peers }
        }

        fn connections_used(&self) -> usize {
            let mut peers = self.peers.lock().expect("peers").clone();
            peers.sort();
            peers.dedup();
            peers.len()
        }
    }

    async fn get(connections: &Connections, instance: &Instance) -> StatusCode {
        let mut request = Request::new(OutgoingBody::new(Bytes::new()));
        *request.uri_mut() = Uri::from_static("/x");
        request.headers_mut().insert(http::header::HOST, "instance".parse().expect("host"));
        let connector = PeerConnector::new(&ClientTls::default());
        let answer = connections.send(&connector, &instance.origin, request, Instant::now()).await.expect("answer");
        let status = answer.status();
        answer.into_body().collect().await.expect("body");
        status
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let instance = Instance::start(false, 1).await;
        let connections = Connections::new(0);
        for _ in 0..3 {
            assert_eq!(get(&connections, &instance).await, StatusCode::OK);
        }
        assert_eq!(instance.connections_used(), 1);
        assert_eq!(connections.count(), 1);
    }

    #[tokio::test]
    async fn a_connection_the_instance_closes_is_not_reused() {
        let instance = Instance::start(true, 1).await;
        let connections = Connections::new(0);
        for _ in 0..3 {
            assert_eq!(get(&connections, &instance).await, StatusCode::OK);
        }
        assert_eq!(instance.connections_used(), 3);
    }

    #[tokio::test]
    async fn requests_in_flight_together_get_a_connection_each() {
        // Neither is answered before both arrived, so both are in flight at once.
        let instance = Instance::start(false, 2).await;
        let connections = Connections::new(0);
        let (a, b) = tokio::join!(get(&connections, &instance), get(&connections, &instance));
        assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
        assert_eq!(instance.connections_used(), 2);
        assert_eq!(get(&connections, &instance).await, StatusCode::OK);
        assert_eq!(instance.connections_used(), 2, "a third request reuses one of them");
    }

    #[tokio::test]
    async fn connections_idle_past_the_timeout_are_closed() {
        let instance = Instance::start(false, 1).await;
        let connections = Connections::new(0);
        assert_eq!(get(&connections, &instance).await, StatusCode::OK);
        let now = Instant::now();
        connections.close_idle(now + IDLE_TIMEOUT / 2);
        assert_eq!(connections.count(), 1, "not idle long enough yet");
        connections.close_idle(now + IDLE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(connections.count(), 0);
    }
}
