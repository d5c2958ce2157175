//! The floor of a hand-written HTTP/1.1 reverse proxy on this machine: `httparse` and
//! tokio's sockets with nothing between them — no hyper, no body channels, no upstream
//! connection task. Each client connection keeps one upstream connection, parses a
//! request head, writes the rewritten head and a `Content-Length` body upstream, parses
//! the answer's head and copies head and body back in one write. No chunked bodies, no
//! upgrades, no timeouts, no limits: what such a codec would cost at best, not a proxy.
//! `scripts/bench-gateway --codecs` runs it as a leg beside the hyper floor, to show
//! how much a hand-written codec could gain over hyper before any gateway feature.
//!
//!   codec-floor --listen 127.0.0.1:18085 --upstream 127.0.0.1:18080 [--per-core N] [--hyper-server]
//!
//! Loopback only. One single-threaded runtime by default (NGINX's one busy worker);
//! `--per-core N` runs N, each with its own `SO_REUSEPORT` listener (as `floor-proxy`'s). `--hyper-server`
//! keeps hyper's server in front and hand-writes only the upstream exchange, run inline
//! in the request's task: which half of hyper's cost is the client's.

use std::convert::Infallible;
use std::net::SocketAddr;
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
    let workers: usize = arg("--per-core").map_or(Ok(1), |n| n.parse())?;
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
    let upstream = Upstream { addr: upstream, host: upstream.to_string().into(), idle: Arc::default() };
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if hyper_server {
                let forward = hyper::service::service_fn(move |req| forward_inline(req, upstream.clone()));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), forward).await;
            } else {
                let _ = proxy_connection(tcp, &upstream).await;
            }
        });
    }
}

/// Where requests go: the address, its `Host` value, and (`--hyper-server`) the worker's
/// idle connections, each with its read buffer.
#[derive(Clone)]
struct Upstream {
    addr: SocketAddr,
    host: Arc<str>,
    idle: Arc<Mutex<Vec<(TcpStream, BytesMut)>>>,
}

impl Upstream {
    async fn connect(&self) -> anyhow::Result<TcpStream> {
        let conn = TcpStream::connect(self.addr).await?;
        conn.set_nodelay(true)?;
        Ok(conn)
    }
}

/// One client connection: request heads in, answers out, until either side closes or
/// sends what this floor does not handle. It keeps its own upstream connection.
async fn proxy_connection(mut client: TcpStream, upstream: &Upstream) -> anyhow::Result<()> {
    let mut upstream_conn: Option<TcpStream> = None;
    let mut from_client = BytesMut::with_capacity(8192);
    let mut from_upstream = BytesMut::with_capacity(8192);
    let mut out = Vec::with_capacity(8192);
    loop {
        let Some(request_len) = read_request(&mut client, &mut from_client, &mut out, &upstream.host).await? else {
            return Ok(());
        };
        from_client.advance(request_len);
        let conn = match upstream_conn.as_mut() {
            Some(conn) => conn,
            None => upstream_conn.insert(upstream.connect().await?),
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
    let head = read_head(client, buf, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head_len) = request.parse(bytes)? else { return Ok(None) };
        let body_len = content_length(request.headers)?;
        let headers = request.headers.iter().map(|h| (h.name, h.value));
        write_request_head(out, request.method.unwrap_or("GET"), request.path.unwrap_or("/"), host, headers);
        Ok(Some((head_len, body_len)))
    })
    .await?;
    let Some((head_len, body_len)) = head else { return Ok(None) };
    fill(client, buf, head_len + body_len).await?;
    out.extend_from_slice(&buf[head_len..head_len + body_len]);
    Ok(Some(head_len + body_len))
}

/// Reads one answer, writes its head (re-serialised) and body into `out`; returns how
/// many bytes of `buf` it took.
async fn read_answer(conn: &mut TcpStream, buf: &mut BytesMut, out: &mut Vec<u8>) -> anyhow::Result<usize> {
    let head = read_head(conn, buf, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut answer = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = answer.parse(bytes)? else { return Ok(None) };
        let body_len = content_length(answer.headers)?;
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(itoa::Buffer::new().format(answer.code.unwrap_or(502)).as_bytes());
        out.push(b' ');
        out.extend_from_slice(answer.reason.unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers(out, answer.headers.iter().map(|h| (h.name, h.value)));
        Ok(Some((head_len, body_len)))
    })
    .await?;
    let (head_len, body_len) = head.ok_or_else(|| anyhow::anyhow!("upstream closed before answering"))?;
    fill(conn, buf, head_len + body_len).await?;
    out.extend_from_slice(&buf[head_len..head_len + body_len]);
    Ok(head_len + body_len)
}

/// Reads into `buf` until `parse` finds a whole head at its start, and returns what
/// `parse` made of it; `None` when the peer closed before sending any of it.
async fn read_head<T>(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    mut parse: impl FnMut(&[u8]) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Option<T>> {
    loop {
        if !buf.is_empty()
            && let Some(head) = parse(buf)?
        {
            return Ok(Some(head));
        }
        if stream.read_buf(buf).await? == 0 {
            anyhow::ensure!(buf.is_empty(), "peer closed mid-head");
            return Ok(None);
        }
    }
}

/// Reads until `buf` holds `len` bytes: the rest of a message whose length is known.
async fn fill(stream: &mut TcpStream, buf: &mut BytesMut, len: usize) -> anyhow::Result<()> {
    while buf.len() < len {
        anyhow::ensure!(stream.read_buf(buf).await? > 0, "peer closed mid-message");
    }
    Ok(())
}

/// The request line, `Host` and the client's other headers but its `Host` and
/// `Connection` (the upstream connection is kept whatever the client asked).
fn write_request_head<'a>(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    let hop = |name: &str| name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("connection");
    write_headers(out, headers.filter(|(name, _)| !hop(name)));
}

fn write_headers<'a>(out: &mut Vec<u8>, headers: impl Iterator<Item = (&'a str, &'a [u8])>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
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

/// `--hyper-server`: one request from hyper's server, exchanged upstream in this task.
async fn forward_inline(req: Request<Incoming>, upstream: Upstream) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(exchange_inline(req, &upstream).await.unwrap_or_else(|_| {
        let mut bad = Response::new(Full::default());
        *bad.status_mut() = StatusCode::BAD_GATEWAY;
        bad
    }))
}

async fn exchange_inline(req: Request<Incoming>, upstream: &Upstream) -> anyhow::Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut out = Vec::with_capacity(512 + body.len());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let headers = parts.headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
    write_request_head(&mut out, parts.method.as_str(), path, &upstream.host, headers);
    out.extend_from_slice(&body);
    let kept = upstream.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let (mut conn, mut buf) = match kept {
        Some(kept) => kept,
        None => (upstream.connect().await?, BytesMut::with_capacity(8192)),
    };
    conn.write_all(&out).await?;
    let head = read_head(&mut conn, &mut buf, |bytes| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut answer = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = answer.parse(bytes)? else { return Ok(None) };
        let body_len = content_length(answer.headers)?;
        let mut response = Response::builder().status(answer.code.unwrap_or(502));
        for h in answer.headers.iter() {
            response = response.header(h.name, h.value);
        }
        Ok(Some((response, head_len, body_len)))
    })
    .await?;
    let (response, head_len, body_len) = head.ok_or_else(|| anyhow::anyhow!("upstream closed before answering"))?;
    fill(&mut conn, &mut buf, head_len + body_len).await?;
    let mut message = buf.split_to(head_len + body_len);
    message.advance(head_len);
    let response = response.body(Full::new(message.freeze()))?;
    // The answer's bytes left with it; give the buffer room for the next one's read.
    if buf.capacity() < 4096 {
        buf.reserve(8192);
    }
    upstream.idle.lock().unwrap_or_else(|p| p.into_inner()).push((conn, buf));
    Ok(response)
}
