//! The process-local hub: room id → broadcast channel of the members connected *here*.
//!
//! Why a broadcast channel per room: publishing never waits for any member. A member
//! that falls behind the channel's ring buffer gets `Lagged` and refills from the
//! database by seq (see `session`), so the hub can drop without losing anything.
//! Messages are serialised once, here, and shared by reference between members.
//!
//! Rooms appear on first join and disappear when their last member leaves (the member
//! count is changed under the map's entry lock, so a join racing the last leave never
//! ends up on a removed channel).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use tokio::sync::broadcast;

use super::protocol::ServerFrame;
use crate::rooms::model::EventKind;
use crate::rooms::store::StoredMessage;

/// Ring size of a room's channel; a member further behind than this refills from the database.
const ROOM_CHANNEL_CAPACITY: usize = 4096;

/// What the hub carries to the members of a room.
#[derive(Debug, Clone)]
pub enum Event {
    /// A row of the room's sequenced log (a message or a room event); `frame` is its
    /// serialised frame; `kick` the user whose connections it closes.
    Message { seq: i64, frame: Utf8Bytes, kick: Option<Arc<str>> },
    /// A serialised `presence` frame.
    Presence { frame: Utf8Bytes },
    /// A serialised `typing` frame of `user_id` (not sent back to that user).
    Typing { user_id: Arc<str>, frame: Utf8Bytes },
    /// The room was closed.
    Closed,
    /// Messages up to `upto` may not have arrived through the fan-out: read them from the database.
    Resync { upto: i64 },
}

impl Event {
    /// The event of a stored row of the log.
    pub fn stored(m: &StoredMessage) -> Self {
        let kick = (m.kind == EventKind::Kick).then(|| Arc::from(m.target_id.as_deref().unwrap_or_default()));
        Event::Message { seq: m.seq, frame: ServerFrame::from(m).to_text(), kick }
    }
}

pub struct RoomSlot {
    tx: broadcast::Sender<Event>,
    members: AtomicUsize,
    /// Highest message seq that went through this slot (or that members were told to resync to).
    max_seen: AtomicI64,
    /// The room's last seq in the database at the previous reconciliation tick.
    prev_db_last: AtomicI64,
    closed_sent: AtomicBool,
}

impl RoomSlot {
    fn new() -> Self {
        let (tx, _) = broadcast::channel(ROOM_CHANNEL_CAPACITY);
        Self {
            tx,
            members: AtomicUsize::new(0),
            max_seen: AtomicI64::new(0),
            prev_db_last: AtomicI64::new(0),
            closed_sent: AtomicBool::new(false),
        }
    }
}

#[derive(Default)]
pub struct Hub {
    rooms: DashMap<String, Arc<RoomSlot>>,
}

/// One connection's place in a room; leaving happens on drop.
pub struct Membership {
    hub: Arc<Hub>,
    room_id: String,
    pub rx: broadcast::Receiver<Event>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.rooms.remove_if(&self.room_id, |_, slot| slot.members.fetch_sub(1, Ordering::AcqRel) == 1);
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Joins a room's local channel; events published from now on reach the returned receiver.
    pub fn join(self: &Arc<Self>, room_id: &str) -> Membership {
        let entry = self.rooms.entry(room_id.to_owned()).or_insert_with(|| Arc::new(RoomSlot::new()));
        entry.members.fetch_add(1, Ordering::AcqRel);
        let rx = entry.tx.subscribe();
        drop(entry);
        Membership { hub: self.clone(), room_id: room_id.to_owned(), rx }
    }

    /// Hands an event to this process's members of the room (none: dropped, nothing to do).
    pub fn deliver(&self, room_id: &str, event: Event) {
        let Some(slot) = self.rooms.get(room_id).map(|s| s.clone()) else { return };
        match &event {
            Event::Message { seq, .. } => {
                slot.max_seen.fetch_max(*seq, Ordering::AcqRel);
            }
            Event::Resync { upto } => {
                slot.max_seen.fetch_max(*upto, Ordering::AcqRel);
            }
            Event::Closed => {
                if slot.closed_sent.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
            Event::Presence { .. } | Event::Typing { .. } => {}
        }
        let _ = slot.tx.send(event);
    }

    /// Connections in this process to the room.
    pub fn local_count(&self, room_id: &str) -> usize {
        self.rooms.get(room_id).map_or(0, |s| s.members.load(Ordering::Acquire))
    }

    /// (room id, local connections) for every room with members here.
    pub fn local_counts(&self) -> Vec<(String, usize)> {
        self.rooms.iter().map(|e| (e.key().clone(), e.value().members.load(Ordering::Acquire))).collect()
    }

    /// Rooms with members here, and those members (connections).
    pub fn live(&self) -> (usize, usize) {
        let members = self.rooms.iter().map(|e| e.value().members.load(Ordering::Acquire)).sum();
        (self.rooms.len(), members)
    }

    /// Every room with members here, for reconciliation.
    pub fn snapshot(&self) -> Vec<(String, Arc<RoomSlot>)> {
        self.rooms.iter().map(|e| (e.key().clone(), e.value().clone())).collect()
    }

    /// After the fan-out was interrupted: every member re-reads the database from its last seq.
    pub fn resync_all(&self) {
        for (room_id, _) in self.snapshot() {
            self.deliver(&room_id, Event::Resync { upto: i64::MAX });
        }
    }

    /// Called once per reconciliation tick with the room's last seq in the database.
    /// Returns the seq to resync to when messages stored at least one tick ago never
    /// arrived through the fan-out (a lost publish, a dead replica, a Redis outage).
    pub fn check_progress(slot: &RoomSlot, db_last: i64) -> Option<i64> {
        let prev = slot.prev_db_last.swap(db_last, Ordering::AcqRel);
        (slot.max_seen.load(Ordering::Acquire) < prev).then_some(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rooms_come_and_go_with_members() {
        let hub = Hub::new();
        let mut a = hub.join("r");
        let b = hub.join("r");
        assert_eq!(hub.local_count("r"), 2);
        hub.deliver("r", Event::Message { seq: 1, frame: "x".into(), kick: None });
        assert!(matches!(a.rx.recv().await, Ok(Event::Message { seq: 1, .. })));
        drop(b);
        assert_eq!(hub.local_count("r"), 1);
        drop(a);
        assert_eq!(hub.local_count("r"), 0);
        assert!(hub.snapshot().is_empty());
    }

    #[test]
    fn progress_resyncs_only_what_is_overdue() {
        let slot = RoomSlot::new();
        assert_eq!(Hub::check_progress(&slot, 5), None); // first sight: not overdue yet
        slot.max_seen.store(5, Ordering::Release);
        assert_eq!(Hub::check_progress(&slot, 9), None);
        assert_eq!(Hub::check_progress(&slot, 9), Some(9)); // 6..=9 never arrived
    }
}
