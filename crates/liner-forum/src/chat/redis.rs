//! The Redis fan-out backend and the cross-replica online counts.
//!
//! Why this shape:
//! - **One subscriber connection per process** (`PSUBSCRIBE liner:forum:room:*`), fanned
//!   out in memory by the hub — never one Redis connection per WebSocket. Publishing
//!   goes through the multiplexed `ConnectionManager`, which reconnects by itself.
//! - Publishing never makes a sender wait for Redis: events go into a bounded queue
//!   that one task drains in pipelined batches. While Redis fails, Redis work is
//!   skipped for a second at a time instead of each caller waiting for a timeout;
//!   what is dropped meanwhile is recovered from the database (see `fanout`).
//! - `forum_redis_up` (1/0) follows the last Redis operation's outcome: a heartbeat or
//!   subscription that succeeded, or any operation that failed. Readiness does not ask
//!   Redis (see `router`).
//! - The subscriber pings Redis every few seconds; when the ping or the stream fails it
//!   reconnects with backoff and then asks every local member to resync from the
//!   database, which is where messages published during the outage are found.
//! - **Online counts**: each replica writes its own per-room member counts into its own
//!   hash `liner:forum:online:<replica>` with a short expiry, refreshed by a heartbeat,
//!   and registers itself in the sorted set `liner:forum:replicas` scored by heartbeat
//!   time. A room's count is this replica's live count plus the other live replicas'
//!   hash fields, so the members of a replica killed with `kill -9` stop counting within
//!   [`PRESENCE_TTL`] without anyone cleaning up after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::{Event, Hub};

const CHANNEL_PREFIX: &str = "liner:forum:room:";
const CHANNEL_PATTERN: &str = "liner:forum:room:*";
const REPLICAS_KEY: &str = "liner:forum:replicas";
/// How long a replica's online counts outlive its last heartbeat.
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const SUBSCRIBER_PING_EVERY: Duration = Duration::from_secs(3);
const REDIS_OP_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed Redis operation, Redis work is skipped for this long.
const DOWN_BACKOFF_MS: i64 = 1000;
/// Events waiting to be published; beyond this they are dropped (and recovered by seq).
const PUBLISH_QUEUE: usize = 16_384;
const PUBLISH_BATCH: usize = 256;

fn online_key(replica: &str) -> String {
    format!("liner:forum:online:{replica}")
}

/// An event as it travels between replicas.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Wire {
    Message {
        origin: String,
        seq: i64,
        frame: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kick: Option<String>,
    },
    Presence {
        origin: String,
        frame: String,
    },
    Typing {
        origin: String,
        user_id: String,
        frame: String,
    },
    Closed {
        origin: String,
    },
}

impl Wire {
    fn from_event(origin: &str, event: &Event) -> Option<Self> {
        let origin = origin.to_owned();
        match event {
            Event::Message { seq, frame, kick } => Some(Wire::Message {
                origin,
                seq: *seq,
                frame: frame.as_str().to_owned(),
                kick: kick.as_deref().map(str::to_owned),
            }),
            Event::Presence { frame } => Some(Wire::Presence { origin, frame: frame.as_str().to_owned() }),
            Event::Typing { user_id, frame } => {
                Some(Wire::Typing { origin, user_id: user_id.to_string(), frame: frame.as_str().to_owned() })
            }
            Event::Closed => Some(Wire::Closed { origin }),
            Event::Resync { .. } => None,
        }
    }

    fn origin(&self) -> &str {
        match self {
            Wire::Message { origin, .. }
            | Wire::Presence { origin, .. }
            | Wire::Typing { origin, .. }
            | Wire::Closed { origin } => origin,
        }
    }

    fn into_event(self) -> Event {
        match self {
            Wire::Message { seq, frame, kick, .. } => {
                Event::Message { seq, frame: Utf8Bytes::from(frame), kick: kick.map(Arc::from) }
            }
            Wire::Presence { frame, .. } => Event::Presence { frame: Utf8Bytes::from(frame) },
            Wire::Typing { user_id, frame, .. } => {
                Event::Typing { user_id: Arc::from(user_id), frame: Utf8Bytes::from(frame) }
            }
            Wire::Closed { .. } => Event::Closed,
        }
    }
}

pub struct RedisFanout {
    conn: ConnectionManager,
    replica: String,
    hub: Arc<Hub>,
    /// (channel, payload) for the publisher task.
    publish_tx: mpsc::Sender<(String, String)>,
    /// Unix ms until which Redis is considered down (0: up).
    down_until: AtomicI64,
}

impl RedisFanout {
    /// Connects, subscribes (waits until the subscription is live, so nothing published
    /// after `build` returns is missed) and starts the subscriber and heartbeat tasks.
    /// `client` comes from `liner_shared::redis::client` (TLS as configured); `url` only
    /// names the server in errors.
    pub async fn start(
        client: redis::Client,
        url: &str,
        hub: Arc<Hub>,
        replica: String,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Arc<Self>> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_OP_TIMEOUT))
            .set_response_timeout(Some(REDIS_OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach Redis: {e}"))?;
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let this = Arc::new(Self { conn, replica, hub, publish_tx, down_until: AtomicI64::new(0) });
        tracker.spawn(publisher_loop(this.clone(), publish_rx, shutdown.clone()));
        let (ready_tx, ready_rx) = oneshot::channel();
        tracker.spawn(subscriber_loop(client, this.clone(), shutdown.clone(), ready_tx));
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(())) => {}
            _ => anyhow::bail!("cannot subscribe to Redis at {}", liner_shared::config::redact_url(url)),
        }
        tracker.spawn(heartbeat_loop(this.clone(), shutdown));
        Ok(this)
    }

    fn is_down(&self) -> bool {
        liner_shared::now_millis() < self.down_until.load(Ordering::Acquire)
    }

    /// A Redis operation failed: `forum_redis_up` 0, and Redis work is skipped a while.
    fn mark_down(&self) {
        metrics::gauge!("forum_redis_up").set(0.0);
        self.down_until.store(liner_shared::now_millis() + DOWN_BACKOFF_MS, Ordering::Release);
    }

    /// A subscription or a heartbeat succeeded: `forum_redis_up` 1.
    fn mark_up(&self) {
        metrics::gauge!("forum_redis_up").set(1.0);
        self.down_until.store(0, Ordering::Release);
    }

    /// Queues an event for the other replicas; never waits.
    pub fn publish(&self, room_id: &str, event: &Event) {
        let Some(wire) = Wire::from_event(&self.replica, event) else { return };
        let Ok(payload) = serde_json::to_string(&wire) else { return };
        if self.publish_tx.try_send((format!("{CHANNEL_PREFIX}{room_id}"), payload)).is_err() {
            // Stored already; other replicas find it by seq (see fanout's module doc).
            metrics::counter!("forum_fanout_publish_dropped_total").increment(1);
        }
    }

    /// Writes this replica's member count of one room.
    pub async fn set_local_count(&self, room_id: &str, count: usize) {
        if self.is_down() {
            return; // the heartbeat rewrites everything once Redis answers
        }
        let key = online_key(&self.replica);
        let mut pipe = redis::pipe();
        if count == 0 {
            pipe.cmd("HDEL").arg(&key).arg(room_id).ignore();
        } else {
            pipe.cmd("HSET").arg(&key).arg(room_id).arg(count).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(PRESENCE_TTL.as_millis() as u64).ignore();
        pipe.cmd("ZADD").arg(REPLICAS_KEY).arg(liner_shared::now_millis()).arg(&self.replica).ignore();
        let mut conn = self.conn.clone();
        let done = tokio::time::timeout(REDIS_OP_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        if !matches!(done, Ok(Ok(()))) {
            self.mark_down();
            tracing::warn!(%room_id, "cannot write online count to Redis; the heartbeat will retry");
        }
    }

    /// Members of each room on the *other* live replicas.
    pub async fn remote_online(&self, room_ids: &[String]) -> anyhow::Result<Vec<u64>> {
        if self.is_down() {
            anyhow::bail!("Redis is down");
        }
        let mut conn = self.conn.clone();
        let since = liner_shared::now_millis() - PRESENCE_TTL.as_millis() as i64;
        let work = async {
            let replicas: Vec<String> =
                redis::cmd("ZRANGEBYSCORE").arg(REPLICAS_KEY).arg(since).arg("+inf").query_async(&mut conn).await?;
            let others: Vec<&String> = replicas.iter().filter(|r| **r != self.replica).collect();
            let mut totals = vec![0u64; room_ids.len()];
            if others.is_empty() {
                return Ok::<_, redis::RedisError>(totals);
            }
            let mut pipe = redis::pipe();
            for r in &others {
                pipe.cmd("HMGET").arg(online_key(r)).arg(room_ids);
            }
            let counts: Vec<Vec<Option<u64>>> = pipe.query_async(&mut conn).await?;
            for per_replica in counts {
                for (total, n) in totals.iter_mut().zip(per_replica) {
                    *total += n.unwrap_or(0);
                }
            }
            Ok(totals)
        };
        let result = match tokio::time::timeout(REDIS_OP_TIMEOUT, work).await {
            Ok(Ok(totals)) => Ok(totals),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(anyhow::anyhow!("Redis timed out")),
        };
        if result.is_err() {
            self.mark_down();
        }
        result
    }

    /// Rewrites this replica's whole hash (healing any racing per-room write) and renews it.
    async fn heartbeat(&self) -> redis::RedisResult<()> {
        let key = online_key(&self.replica);
        let now = liner_shared::now_millis();
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        let counts: Vec<(String, usize)> = self.hub.local_counts().into_iter().filter(|(_, n)| *n > 0).collect();
        if !counts.is_empty() {
            pipe.cmd("HSET").arg(&key).arg(&counts).ignore();
            pipe.cmd("PEXPIRE").arg(&key).arg(PRESENCE_TTL.as_millis() as u64).ignore();
        }
        pipe.cmd("ZADD").arg(REPLICAS_KEY).arg(now).arg(&self.replica).ignore();
        // Forget replicas dead for a long time (their hashes expired long ago).
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(REPLICAS_KEY)
            .arg("-inf")
            .arg(now - 20 * PRESENCE_TTL.as_millis() as i64)
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await
    }

    async fn deregister(&self) {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(online_key(&self.replica)).ignore();
        pipe.cmd("ZREM").arg(REPLICAS_KEY).arg(&self.replica).ignore();
        let mut conn = self.conn.clone();
        let _ = tokio::time::timeout(REDIS_OP_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
    }

    fn on_message(&self, msg: &redis::Msg) {
        let Some(room_id) = msg.get_channel_name().strip_prefix(CHANNEL_PREFIX) else { return };
        if self.hub.local_count(room_id) == 0 {
            return;
        }
        match serde_json::from_slice::<Wire>(msg.get_payload_bytes()) {
            Ok(wire) if wire.origin() == self.replica => {}
            Ok(wire) => self.hub.deliver(room_id, wire.into_event()),
            Err(e) => tracing::warn!(%room_id, error = %e, "unreadable fan-out event ignored"),
        }
    }
}

async fn subscriber_loop(
    client: redis::Client,
    fanout: Arc<RedisFanout>,
    shutdown: CancellationToken,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe(CHANNEL_PATTERN).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let subscribed = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(REDIS_OP_TIMEOUT, attempt) => r,
        };
        match subscribed {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                fanout.mark_up();
                match ready.take() {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => {
                        tracing::info!("Redis subscription restored; members resync from the database");
                        fanout.hub.resync_all();
                    }
                }
                let (mut sink, mut stream) = pubsub.split();
                let mut ping = tokio::time::interval(SUBSCRIBER_PING_EVERY);
                ping.tick().await;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        msg = stream.next() => match msg {
                            Some(msg) => fanout.on_message(&msg),
                            None => break,
                        },
                        _ = ping.tick() => {
                            let pong = tokio::time::timeout(REDIS_OP_TIMEOUT, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                metrics::counter!("forum_fanout_subscriber_reconnects_total").increment(1);
                tracing::warn!("Redis subscription lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot subscribe to Redis; retrying"),
            Err(_) => tracing::warn!("subscribing to Redis timed out; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Drains the publish queue in pipelined batches (one round trip per batch).
async fn publisher_loop(
    fanout: Arc<RedisFanout>,
    mut rx: mpsc::Receiver<(String, String)>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut conn = fanout.conn.clone();
    loop {
        let n = tokio::select! {
            _ = shutdown.cancelled() => return,
            n = rx.recv_many(&mut batch, PUBLISH_BATCH) => n,
        };
        if n == 0 {
            return;
        }
        if fanout.is_down() {
            metrics::counter!("forum_fanout_publish_dropped_total").increment(n as u64);
            batch.clear();
            continue;
        }
        let mut pipe = redis::pipe();
        for (channel, payload) in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        let sent = tokio::time::timeout(REDIS_OP_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
        if !matches!(sent, Ok(Ok(()))) {
            fanout.mark_down();
            metrics::counter!("forum_fanout_publish_failures_total").increment(n as u64);
            tracing::warn!(events = n, "publish to Redis failed; other replicas will resync from the database");
        }
    }
}

async fn heartbeat_loop(fanout: Arc<RedisFanout>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                match tokio::time::timeout(REDIS_OP_TIMEOUT, fanout.heartbeat()).await {
                    Ok(Ok(())) => fanout.mark_up(),
                    Ok(Err(e)) => {
                        fanout.mark_down();
                        tracing::warn!(error = %e, "presence heartbeat to Redis failed");
                    }
                    Err(_) => {
                        fanout.mark_down();
                        tracing::warn!("presence heartbeat to Redis timed out");
                    }
                }
            }
        }
    }
    fanout.deregister().await;
}
