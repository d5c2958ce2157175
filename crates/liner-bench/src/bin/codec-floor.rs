//! The floor of a hand-written HTTP/1.1 reverse proxy on this machine: `httparse` and
//! tokio's sockets with nothing between them — no hyper, no body channels, no upstream
//! connection task. Each client connection keeps one upstream connection, parses a
//! request head, writes the rewritten head and a `Content-Length` body upstream, parses
//! the answer's head and copies head and body back in one write. No chunked bodies, no
//! upgrades, no timeouts, no limits: what such a codec would cost at best, not a proxy.
//! `scripts/bench-gateway --codecs` runs it as a leg beside the hyper floor, to show
//! how much a hand-written codec could gain over hyper before any gateway feature.
//!
//!   codec-floor --listen 127.0.0.1:18085 --upstream 127.0.0.1:18080 [--workers N]
//!
//! Loopback only. One single-threaded runtime by default (NGINX's one busy worker);
//! `--workers N` runs N, each with its own `SO_REUSEPORT` listener. `--hyper-server`
//! keeps hyper's server in front and hand-writes only the upstream exchange, run inline
//! in the request's task: which half of hyper's cost is the client's.

use std::net::SocketAddr;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEADERS: usize = 64;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let listen: SocketAddr = arg("--listen").unwrap_or_else(|| "127.0.0.1:18085".into()).parse()?;
    let upstream: SocketAddr = arg("--upstream").unwrap_or_else(|| "127.0.0.1:18080".into()).parse()?;
    anyhow::ensure!(listen.ip().is_loopback() && upstream.ip().is_loopback(), "loopback addresses only");
    let workers: usize = arg("--workers").map_or(Ok(1), |n| n.parse())?;
    let hyper_server = args.iter().any(|a| a == "--hyper-server");
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(serve(
                    listen,
                    upstream,
                    workers > 1,
                    hyper_server,
                ))
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(())
}

async fn serve(listen: SocketAddr, upstream: SocketAddr, reuse_port: bool, hyper_server: bool) -> anyhow::Result<()> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(reuse_port)?;
    socket.bind(listen)?;
    let listener = socket.listen(1024)?;
    let pool: Pool = Arc::default();
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        if hyper_server {
            let pool = pool.clone();
            tokio::spawn(async move {
                let forward = hyper::service::service_fn(move |req| forward_inline(req, pool.clone(), upstream));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), forward).await;
            });
            continue;
        }
        tokio::spawn(async move {
            let _ = proxy_connection(tcp, upstream).await;
        });
    }
}

/// One client connection: request heads in, answers out, until either side closes or
/// sends what this floor does not handle.
async fn proxy_connection(mut client: TcpStream, upstream: SocketAddr) -> anyhow::Result<()> {
    let host = upstream.to_string();
    let mut upstream_conn: Option<TcpStream> = None;
    let mut from_client = BytesMut::with_capacity(8192);
    let mut from_upstream = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        let Some(request_len) = read_request(&mut client, &mut from_client, &mut out, &host).await? else {
            return Ok(());
        };
        from_client.advance(request_len);
        let conn = match upstream_conn.as_mut() {
            Some(conn) => conn,
            None => {
                let conn = TcpStream::connect(upstream).await?;
                conn.set_nodelay(true)?;
                upstream_conn.insert(conn)
            }
        };
        conn.write_all(&out).await?;
        out.clear();
        let answer_len = read_answer(conn, &mut from_upstream, &mut out).await?;
        from_upstream.advance(answer_len);
        client.write_all(&out).await?;
        out.clear();
    }
}

/// Reads one request, writes its rewritten head and body into `out`; returns how many
/// bytes of `buf` it took, or `None` when the client closed between requests.
async fn read_request(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    host: &str,
) -> anyhow::Result<Option<usize>> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head_len) = request.parse(buf)? {
                let body_len = content_length(request.headers)?;
                out.extend_from_slice(request.method.unwrap_or("GET").as_bytes());
                out.push(b' ');
                out.extend_from_slice(request.path.unwrap_or("/").as_bytes());
                out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
                out.extend_from_slice(host.as_bytes());
                out.extend_from_slice(b"\r\n");
                write_headers(
                    out,
                    request
                        .headers
                        .iter()
                        .filter(|h| !h.name.eq_ignore_ascii_case("host") && !h.name.eq_ignore_ascii_case("connection")),
                );
                fill(client, buf, head_len + body_len).await?;
                out.extend_from_slice(&buf[head_len..head_len + body_len]);
                return Ok(Some(head_len + body_len));
            }
        }
        if client.read_buf(buf).await? == 0 {
            anyhow::ensure!(buf.is_empty(), "client closed mid-head");
            return Ok(None);
        }
    }
}

/// Reads one answer, writes its head (re-serialised) and body into `out`; returns how
/// many bytes of `buf` it took.
async fn read_answer(conn: &mut TcpStream, buf: &mut BytesMut, out: &mut Vec<u8>) -> anyhow::Result<usize> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut answer = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = answer.parse(buf)? {
                let body_len = content_length(answer.headers)?;
                let status = answer.code.unwrap_or(502);
                out.extend_from_slice(b"HTTP/1.1 ");
                out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
                out.push(b' ');
                out.extend_from_slice(answer.reason.unwrap_or("").as_bytes());
                out.extend_from_slice(b"\r\n");
                write_headers(out, answer.headers.iter());
                fill(conn, buf, head_len + body_len).await?;
                out.extend_from_slice(&buf[head_len..head_len + body_len]);
                return Ok(head_len + body_len);
            }
        }
        anyhow::ensure!(conn.read_buf(buf).await? > 0, "upstream closed mid-head");
    }
}

/// Reads until `buf` holds `len` bytes: the rest of a message whose length is known.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, len: usize) -> anyhow::Result<()> {
    while buf.len() < len {
        anyhow::ensure!(stream.read_buf(buf).await? > 0, "peer closed mid-message");
    }
    Ok(())
}

fn write_headers<'a>(out: &mut Vec<u8>, headers: impl Iterator<Item = &'a httparse::Header<'a>>) {
    for header in headers {
        out.extend_from_slice(header.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(header.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn content_length(headers: &[httparse::Header<'_>]) -> anyhow::Result<usize> {
    match headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")) {
        None => Ok(0),
        Some(h) => Ok(std::str::from_utf8(h.value)?.trim().parse()?),
    }
}

/// A worker's idle upstream connections, each with its read buffer.
type Pool = Arc<Mutex<Vec<(TcpStream, BytesMut)>>>;

/// `--hyper-server`: one request from hyper's server, exchanged upstream in this task.
async fn forward_inline(
    req: Request<Incoming>,
    pool: Pool,
    upstream: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(exchange_inline(req, &pool, upstream).await.unwrap_or_else(|_| {
        let mut bad = Response::new(Full::default());
        *bad.status_mut() = StatusCode::BAD_GATEWAY;
        bad
    }))
}

async fn exchange_inline(
    req: Request<Incoming>,
    pool: &Pool,
    upstream: SocketAddr,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(upstream.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in
        parts.headers.iter().filter(|(name, _)| *name != hyper::header::HOST && *name != hyper::header::CONNECTION)
    {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    let kept = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let (mut conn, mut buf) = match kept {
        Some(kept) => kept,
        None => {
            let conn = TcpStream::connect(upstream).await?;
            conn.set_nodelay(true)?;
            (conn, BytesMut::with_capacity(8192))
        }
    };
    conn.write_all(&out).await?;
    let response = loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut answer = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = answer.parse(&buf)? {
                let body_len = content_length(answer.headers)?;
                let mut response = Response::builder().status(answer.code.unwrap_or(502));
                for h in answer.headers.iter() {
                    response = response.header(h.name, h.value);
                }
                fill(&mut conn, &mut buf, head_len + body_len).await?;
                let mut message = buf.split_to(head_len + body_len);
                message.advance(head_len);
                break response.body(Full::new(message.freeze()))?;
            }
        }
        anyhow::ensure!(conn.read_buf(&mut buf).await? > 0, "upstream closed mid-head");
    };
    if buf.capacity() < 4096 {
        buf.reserve(8192);
    }
    pool.lock().unwrap_or_else(|p| p.into_inner()).push((conn, buf));
    Ok(response)
}
