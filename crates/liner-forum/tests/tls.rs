//! Fan-out across replicas over `rediss://`: a throwaway Redis that listens only on a
//! TLS port (and a Unix socket the test itself reads) with a certificate of a CA the test
//! makes; the replicas trust that CA through `--redis-ca-file`. A CA that did not sign
//! the server's certificate stops the replica at startup, in one line.

mod common;

use common::*;
use futures_util::StreamExt;
use liner_shared::throwaway::{RedisOptions, TestCa, ThrowawayRedis};
use serde_json::json;

struct TlsRedis {
    redis: ThrowawayRedis,
    dir: tempfile::TempDir,
}

fn tls_redis() -> TlsRedis {
    let ca = TestCa::new("liner test CA").expect("CA");
    let cert = ca.server_cert(&["127.0.0.1", "localhost"]).expect("server certificate");
    let redis = ThrowawayRedis::start(RedisOptions::with_tls_cert(&cert)).expect("Redis with --tls-port");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("ca file");
    let other = TestCa::new("another CA").expect("CA");
    std::fs::write(dir.path().join("other-ca.pem"), other.cert_pem()).expect("ca file");
    TlsRedis { redis, dir }
}

/// A member on replica B gets a message sent on replica A, and the message crossed the
/// TLS-only Redis: a subscriber on the server's own socket sees A publish it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_crosses_replicas_over_rediss_with_a_private_ca() {
    let tls = tls_redis();
    let mut watch = redis::Client::open(tls.redis.url()).expect("socket url").get_async_pubsub().await.expect("watch");
    watch.psubscribe("liner:forum:room:*").await.expect("psubscribe");
    let mut published = watch.into_on_message();

    let review = start_review().await;
    let backing = Backing {
        database_url: Some(liner_shared::testkit::fresh_pg_database().await),
        redis_url: Some(tls.redis.tls_url()),
    };
    let ca_file = tls.dir.path().join("ca.pem");
    let trust = |s: &mut liner_forum::Settings| s.redis_tls.ca_file = Some(ca_file.clone());
    let a = start_forum(&review, &backing, trust).await;
    let b = start_forum(&review, &backing, trust).await;
    let sender = register(&review, "sender").await;
    let reader = register(&review, "reader").await;
    let room = create_room(&a, &sender, json!({"roomType": "genre", "genreId": "tls"})).await;
    let room_id = room["id"].as_str().expect("room id").to_owned();
    let mut rx = connect(&b, &reader, &room_id, None).await;
    wait_joined(&mut rx, &reader).await;
    let mut tx = connect(&a, &sender, &room_id, None).await;
    wait_joined(&mut tx, &sender).await;

    send_json(&mut tx, chat(&room_id, "over rediss", None)).await;
    let got = next_of_type(&mut rx, "message").await;
    assert_eq!(got["message"], "over rediss", "the reader on the other replica got the message");
    let crossed = tokio::time::timeout(FRAME_WAIT, async {
        while let Some(msg) = published.next().await {
            if String::from_utf8_lossy(msg.get_payload_bytes()).contains("over rediss") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(crossed, Ok(true), "the message was not published through the TLS Redis");
    a.stop.cancel();
    b.stop.cancel();
    review.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forum_refuses_rediss_signed_by_another_ca_in_one_line() {
    let tls = tls_redis();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = liner_forum::Settings::new("127.0.0.1:0".parse().expect("addr"), dir.path().join("forum"));
    settings.review = liner_discovery::peers::ReviewArgs::at("http://127.0.0.1:9");
    settings.redis_url = Some(tls.redis.tls_url());
    settings.redis_tls.ca_file = Some(tls.dir.path().join("other-ca.pem"));
    let started = std::time::Instant::now();
    let err = match liner_forum::build(settings).await {
        Ok(_) => panic!("a forum trusted Redis's certificate although another CA signed it"),
        Err(e) => format!("{e:#}"),
    };
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(!err.contains('\n'), "not one line: {err}");
    assert!(err.contains("certificate"), "the reason is not named: {err}");
}
