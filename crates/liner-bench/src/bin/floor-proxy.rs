//! The floor of a hyper reverse proxy on this machine: hyper's HTTP/1.1 server in front
//! of hyper-util's pooled client (the gateway's own client), and nothing else — no
//! router, middleware, limits, metrics, logging or header rewriting. `scripts/bench-gateway`
//! runs it beside NGINX and the gateway, so the gateway's figure splits into what hyper
//! and tokio cost and what the gateway's own layers add.
//!
//!   floor-proxy --listen 127.0.0.1:18083 --upstream 127.0.0.1:18080 [--per-core N]
//!
//! Loopback only. `--per-core N` runs N single-threaded runtimes, each with its own
//! `SO_REUSEPORT` listener and its own client (NGINX's worker-per-core shape) instead
//! of one multi-threaded runtime.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

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
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(reuse_port)?;
    socket.bind(listen)?;
    let listener = socket.listen(1024)?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let client = client.clone();
        tokio::spawn(async move {
            let forward = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let client = client.clone();
                async move {
                    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    let uri = format!("http://{upstream}{path}").parse();
                    let res = match uri {
                        Ok(uri) => {
                            *req.uri_mut() = uri;
                            client.request(req).await.ok()
                        }
                        Err(_) => None,
                    };
                    Ok::<_, Infallible>(res.map_or_else(
                        || {
                            let mut bad = Response::new(http_body_util::Either::Right(http_body_util::Empty::new()));
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
