//! Fan-out: how a stored message, a presence change or a room close reaches every
//! member, on every replica.
//!
//! - Embedded mode (no `REDIS_URL`): straight into the process-local [`Hub`].
//! - Redis mode: into the local hub *and* a Redis `PUBLISH`; every other replica's
//!   single pattern subscriber hands it to its hub (a replica skips its own echo).
//!
//! Why delivery stays exact even though pub/sub is lossy: the fan-out is only a fast
//! path. Every member tracks the last seq it delivered and reads any gap from the
//! database, which holds every message before anyone hears of it. Three things make
//! sure a gap is noticed even when no later message arrives to reveal it:
//! the Redis subscriber asks every member to resync after it reconnects, and a
//! reconciliation tick (every second, both modes) compares each local room's last seq
//! in the database with what went through the hub and resyncs members when messages
//! stored a tick ago never arrived (a lost publish, a replica killed between commit
//! and publish). The same tick notices rooms closed elsewhere whose close event was lost.

use std::sync::Arc;
use std::time::Duration;

use liner_shared::db::Db;
use tokio_util::sync::CancellationToken;

use super::hub::{Event, Hub};
use super::redis::RedisFanout;
use crate::rooms::store;

pub struct Fanout {
    pub hub: Arc<Hub>,
    redis: Option<Arc<RedisFanout>>,
}

impl Fanout {
    pub fn new(hub: Arc<Hub>, redis: Option<Arc<RedisFanout>>) -> Self {
        Self { hub, redis }
    }

    pub fn redis(&self) -> Option<&Arc<RedisFanout>> {
        self.redis.as_ref()
    }

    /// Delivers to local members now, then to other replicas (best effort: see the module doc).
    pub async fn publish(&self, room_id: &str, event: Event) {
        if let Some(redis) = &self.redis {
            redis.publish(room_id, &event);
            self.hub.deliver(room_id, event);
        } else {
            self.hub.deliver(room_id, event);
        }
    }

    /// This replica's member count of a room changed: tell the other replicas.
    pub async fn members_changed(&self, room_id: &str) {
        if let Some(redis) = &self.redis {
            redis.set_local_count(room_id, self.hub.local_count(room_id)).await;
        }
    }

    pub async fn online(&self, room_id: &str) -> u64 {
        self.online_many(&[room_id.to_owned()]).await.first().copied().unwrap_or(0)
    }

    /// Connected members per room across all live replicas. Without Redis (or while it
    /// is unreachable) only this replica's members are counted.
    pub async fn online_many(&self, room_ids: &[String]) -> Vec<u64> {
        let local: Vec<u64> = room_ids.iter().map(|r| self.hub.local_count(r) as u64).collect();
        let Some(redis) = &self.redis else { return local };
        if room_ids.is_empty() {
            return local;
        }
        match redis.remote_online(room_ids).await {
            Ok(remote) => local.iter().zip(remote).map(|(l, r)| l + r).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "online counts from Redis unavailable; counting this replica only");
                local
            }
        }
    }
}

/// The reconciliation tick described in the module doc.
pub async fn reconcile_loop(hub: Arc<Hub>, db: Db, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (room_id, slot) in hub.snapshot() {
            match store::room_progress(&db, &room_id).await {
                Ok(Some((last_seq, active))) => {
                    if let Some(upto) = Hub::check_progress(&slot, last_seq) {
                        metrics::counter!("forum_fanout_resyncs_total").increment(1);
                        tracing::debug!(%room_id, upto, "messages missed by the fan-out; members resync");
                        hub.deliver(&room_id, Event::Resync { upto });
                    }
                    if !active {
                        hub.deliver(&room_id, Event::Closed);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%room_id, error = %e, "reconciliation read failed"),
            }
        }
    }
}
