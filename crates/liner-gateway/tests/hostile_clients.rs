//! Slow and hostile clients at the public entry: stalled bodies, silent and idle
//! connections, slow headers, too many connections from one address, bad `Host`; and
//! that the head deadline spares connections that are busy or keep sending requests.
//!
//! Attackers and normal clients use different loopback source addresses (all of
//! 127.0.0.0/8 reaches the listener), so the per-address connection cap can be told
//! apart from the rest. Normal requests get the bound the issue names (an answer within
//! 1 s) as their client timeout; every other wait is bounded by `DEADLINE` and asserts
//! an outcome, never a speed.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A TCP connection to `to` from the loopback address `127.0.0.<from>`.
async fn connect_from(from: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(loopback(from), 0)).expect("bind a loopback source");
    socket.connect(to).await.expect("connect")
}

/// An upstream named `up` as the review service, behind a gateway whose settings
/// `change` adjusts.
async fn gateway_with(change: impl FnOnce(&mut liner_gateway::Settings)) -> (Upstream, Gateway) {
    let up = Upstream::start("up").await;
    let mut s = settings(vec![up.route("review")]);
    change(&mut s);
    let gw = Gateway::start(s).await;
    (up, gw)
}

/// A normal client on its own source address; its timeout is the bound a normal
/// request must be answered in.
fn normal_client(from: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(loopback(from)).timeout(Duration::from_secs(1)).build().unwrap()
}

/// Normal requests (a read and a small write) answer correctly within the client's bound.
async fn normal_requests_answer(gw: &Gateway, client: &reqwest::Client, rounds: usize) {
    for i in 0..rounds {
        let res = client.get(gw.url("/api/users-reviews/whoami")).send().await;
        let res = res.unwrap_or_else(|e| panic!("read {i} not answered within 1 s: {e}"));
        assert_eq!(name_of(res).await, "up", "read {i}");
        let res = client.post(gw.url("/api/users-reviews/whoami")).body("{}").send().await;
        let res = res.unwrap_or_else(|e| panic!("write {i} not answered within 1 s: {e}"));
        assert_eq!(res.status(), 200, "write {i}");
    }
}

/// Reads until `enough` holds for what arrived, or the peer closes; returns what
/// arrived. Fails (`late`) if neither happens within `DEADLINE`.
async fn read_until(sock: &mut TcpStream, enough: impl Fn(&[u8]) -> bool, late: &str) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        while !enough(&got) {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{late}");
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the peer closes; returns what arrived. Fails if it stays open past `DEADLINE`.
async fn read_until_closed(sock: &mut TcpStream) -> String {
    read_until(sock, |_| false, "the gateway kept the connection open").await
}

/// Reads one answer (its head and a `content-length` body) from a kept-alive connection.
async fn read_answer(sock: &mut TcpStream) -> String {
    let whole = |got: &[u8]| {
        let text = String::from_utf8_lossy(got);
        let Some(end) = text.find("\r\n\r\n") else { return false };
        let length = text[..end]
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:")?.trim().parse().ok())
            .unwrap_or(0usize);
        got.len() >= end + 4 + length
    };
    read_until(sock, whole, "no whole answer in time").await
}

/// A last request (`connection: close`) on an open connection is answered 200.
async fn assert_a_last_request_is_answered(sock: &mut TcpStream, why: &str) {
    let request = "GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\nconnection: close\r\n\r\n";
    sock.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(sock).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{why}: {answer}");
}

/// The status code of the answer to a raw request (the connection closes after it).
async fn raw_status(addr: SocketAddr, request: &str) -> String {
    let mut sock = connect_from(2, addr).await;
    sock.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut sock).await;
    answer.lines().next().and_then(|line| line.split(' ').nth(1)).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_do_not_starve_normal_requests() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(settings(vec![up.route("review")])).await;
    let normal = normal_client(2);
    normal_requests_answer(&gw, &normal, 1).await;

    // 1,100 connections (100 from each of 11 addresses, under the per-address cap) send
    // a request's head and 1 of 100 declared body bytes, then stall: more than the
    // in-flight cap (1,024) of requests that never finish.
    let head = "POST /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
    let mut stalled = Vec::new();
    for from in 10..21 {
        for _ in 0..100 {
            let mut sock = connect_from(from, gw.addr).await;
            sock.write_all(head.as_bytes()).await.unwrap();
            stalled.push(sock);
        }
    }
    // Every stalled head has reached the gateway (a fresh connection behind them in the
    // accept queue has been served), and normal requests are still answered.
    normal_requests_answer(&gw, &normal, 20).await;
    assert_eq!(up.hits(), 2 + 40, "no stalled request reached the upstream");
    drop(stalled);
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let (up, gw) = gateway_with(|s| s.body_timeout_ms = 300).await;
    let mut sock = connect_from(3, gw.addr).await;
    let head = "POST /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\ncontent-length: 100\r\n\r\n{\"a\"";
    sock.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut sock).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "API error shape: {answer}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed() {
    let (_up, gw) = gateway_with(|s| s.header_timeout_ms = 300).await;

    // Sends nothing at all.
    let mut silent = connect_from(4, gw.addr).await;
    assert_eq!(read_until_closed(&mut silent).await, "");

    // Sends half a request head, then stalls.
    let mut half = connect_from(4, gw.addr).await;
    half.write_all(b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: li").await.unwrap();
    assert!(!read_until_closed(&mut half).await.contains("200 OK"));

    // A kept-alive connection that goes quiet after its request.
    let mut idle = connect_from(4, gw.addr).await;
    idle.write_all(b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "answered before the idle close: {answer}");
}

#[tokio::test]
async fn a_request_in_flight_past_the_head_deadline_is_answered_and_its_connection_kept() {
    let (up, gw) = gateway_with(|s| s.header_timeout_ms = 300).await;

    let mut busy = connect_from(5, gw.addr).await;
    busy.write_all(b"GET /api/users-reviews/slow HTTP/1.1\r\nhost: liner\r\n\r\n").await.unwrap();
    eventually("the slow request reaches the upstream", async || up.hits() == 1).await;
    // A silent connection opened after it is closed at its deadline: the busy one's
    // first deadline has passed too.
    let mut silent = connect_from(5, gw.addr).await;
    assert_eq!(read_until_closed(&mut silent).await, "");

    up.release_slow();
    let answer = read_answer(&mut busy).await;
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("late"), "{answer}");
    // The deadline counts again from that answer: the next request on it is served.
    assert_a_last_request_is_answered(&mut busy, "kept alive after a long request").await;
}

#[tokio::test]
async fn a_connection_sending_requests_within_each_deadline_outlives_the_first() {
    let (_up, gw) = gateway_with(|s| s.header_timeout_ms = 300).await;

    let mut kept = connect_from(6, gw.addr).await;
    let mut silent = connect_from(6, gw.addr).await;
    // A request every 100 ms on `kept` until `silent`, opened just after it, is closed
    // at its deadline: by then a deadline counted from the accept would have closed
    // `kept` as well.
    let mut answered = 0;
    loop {
        kept.write_all(b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\n\r\n").await.unwrap();
        let answer = read_answer(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "request {answered}: {answer}");
        answered += 1;
        assert!(answered < 300, "the silent connection was never closed");
        let mut byte = [0u8; 1];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(100), silent.read(&mut byte)).await {
            assert!(matches!(read, Ok(0) | Err(_)), "the gateway sent something on a silent connection");
            break;
        }
    }
    assert!(answered >= 2, "requests spread over the deadline, not one");
    assert_a_last_request_is_answered(&mut kept, "still open past its first deadline").await;
}

#[tokio::test]
async fn slow_header_senders_do_not_slow_normal_requests() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(settings(vec![up.route("review")])).await;
    let normal = normal_client(2);

    // 200 connections (from 4 addresses) trickle a request head at 1 byte a second.
    let head = b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\nx-slow: ".to_vec();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tricklers = Vec::new();
    for i in 0..200u8 {
        let mut sock = connect_from(30 + i % 4, gw.addr).await;
        let (head, stop) = (head.clone(), stop.clone());
        tricklers.push(tokio::spawn(async move {
            for byte in head.iter().cycle() {
                if stop.is_cancelled() || sock.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }));
    }
    normal_requests_answer(&gw, &normal, 30).await;
    stop.cancel();
    for t in tricklers {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn connections_past_the_per_address_cap_are_closed_at_once() {
    let (_up, gw) = gateway_with(|s| s.max_connections_per_ip = 10).await;

    let mut kept = Vec::new();
    for _ in 0..10 {
        kept.push(connect_from(50, gw.addr).await);
    }
    let mut extra = connect_from(50, gw.addr).await;
    let _ = extra.write_all(b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\n\r\n").await;
    assert_eq!(read_until_closed(&mut extra).await, "", "the 11th connection is closed unanswered");

    // The ten within the cap are served, and so is another address.
    for sock in &mut kept {
        sock.write_all(b"GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(sock).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    normal_requests_answer(&gw, &normal_client(51), 1).await;
}

#[tokio::test]
async fn a_missing_duplicated_or_malformed_host_gets_400() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(settings(vec![up.route("review")])).await;
    let cases = [
        ("missing", "GET /api/users-reviews/whoami HTTP/1.1\r\nconnection: close\r\n\r\n"),
        ("duplicated", "GET /api/users-reviews/whoami HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n"),
        ("malformed", "GET /api/users-reviews/whoami HTTP/1.1\r\nhost: a b/c\r\nconnection: close\r\n\r\n"),
        ("userinfo", "GET /api/users-reviews/whoami HTTP/1.1\r\nhost: me@a\r\nconnection: close\r\n\r\n"),
        ("missing, web page", "GET / HTTP/1.1\r\nconnection: close\r\n\r\n"),
    ];
    for (case, request) in cases {
        assert_eq!(raw_status(gw.addr, request).await, "400", "{case}");
    }
    let ok = "GET /api/users-reviews/whoami HTTP/1.1\r\nhost: liner.example:8080\r\nconnection: close\r\n\r\n";
    assert_eq!(raw_status(gw.addr, ok).await, "200");
    // HTTP/1.0 does not require Host.
    let old = "GET /api/users-reviews/whoami HTTP/1.0\r\n\r\n";
    assert_eq!(raw_status(gw.addr, old).await, "200");
    assert_eq!(up.hits(), 2, "no bad request reached the upstream");
}
