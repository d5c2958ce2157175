//! The floor of a hyper reverse proxy on this machine: hyper's HTTP/1.1 server in front
//! of the gateway's own upstream connections (`liner_gateway::connections`: hyper's
//! HTTP/1.1 client connections, kept per worker), and nothing else — no router,
//! middleware, limits, metrics, logging or header rewriting beyond `Host`. `scripts/bench-gateway`
//! runs it beside NGINX and the gateway, so the gateway's figure splits into what hyper
//! and tokio cost and what the gateway's own layers add.
//!
//!   floor-proxy --listen 127.0.0.1:18083 --upstream 127.0.0.1:18080 [--per-core N]
//!
//! Loopback only. `--per-core N` runs N single-threaded runtimes, each with its own
//! `SO_REUSEPORT` listener and its own connections (NGINX's worker-per-core shape)
//! instead of one multi-threaded runtime.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use liner_gateway::connections::{Connections, OutgoingBody};
use liner_shared::tls::{ClientTls, PeerConnector};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let listen: SocketAddr = arg("--listen").unwrap_or_else(|| "127.0.0.1:18083".into()).parse()?;
    let upstream: SocketAddr = arg("--upstream").unwrap_or_else(|| "127.0.0.1:18080".into()).parse()?;
    anyhow::ensure!(listen.ip().is_loopback() && upstream.ip().is_loopback(), "loopback addresses only");
    match arg("--per-core") {
        None => tokio::runtime::Runtime::new()?.block_on(serve(listen, upstream, false)),
        Some(n) => {
            let workers: Vec<_> = (0..n.parse::<usize>()?)
                .map(|_| {
                    std::thread::spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?
                            .block_on(serve(listen, upstream, true))
                    })
                })
                .collect();
            for worker in workers {
                worker.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
            }
            Ok(())
        }
    }
}

async fn serve(listen: SocketAddr, upstream: SocketAddr, reuse_port: bool) -> anyhow::Result<()> {
    let connector = Arc::new(PeerConnector::new(&ClientTls::default()));
    let connections = Arc::new(Connections::new(0));
    let origin: hyper::Uri = format!("http://{upstream}/").parse()?;
    let host = hyper::header::HeaderValue::from_str(&upstream.to_string())?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(reuse_port)?;
    socket.bind(listen)?;
    let listener = socket.listen(1024)?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let (connector, connections, origin, host) =
            (connector.clone(), connections.clone(), origin.clone(), host.clone());
        tokio::spawn(async move {
            let forward = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (connector, connections, origin, host) =
                    (connector.clone(), connections.clone(), origin.clone(), host.clone());
                async move {
                    let (mut parts, body) = req.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                    parts.headers.insert(hyper::header::HOST, host);
                    let req = Request::from_parts(parts, OutgoingBody::new(body));
                    let res = connections.send(&connector, &origin, req, Instant::now()).await.ok();
                    Ok::<_, Infallible>(res.map_or_else(
                        || {
                            let mut bad =
                                Response::new(http_body_util::Either::Right(http_body_util::Empty::<Bytes>::new()));
                            *bad.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                            bad
                        },
                        |res| res.map(http_body_util::Either::Left),
                    ))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), forward).await;
        });
    }
}
