//! One WebSocket connection: three cooperating loops sharing a cancellation token.
//!
//! - **writer** owns the socket's sink and a bounded queue of outgoing frames; it is the
//!   only loop that can block on a slow client. It also sends the keep-alive pings.
//! - **reader** reads client frames (idle timeout, size limit, rate limit, abuse strikes),
//!   stores messages and answers with `ack` or `error`. Storing is never raced against
//!   cancellation, so a stored message is always handed to the fan-out too.
//! - **delivery** turns room events into frames, exactly once and in seq order.
//!
//! Why the queue is the back-pressure point: live frames are put on the queue with
//! `try_send`, so the room's fan-out never waits for this member. When the queue is
//! full the member is disconnected with close code 4008 and can reconnect with
//! `since`; nobody else is delayed. A member therefore never delays the others by more
//! than the time to copy a frame into its queue, and is dropped after at most
//! `send_queue` undelivered frames (or [`FILL_SEND_TIMEOUT`] while replaying history).
//!
//! Why delivery is exact: it tracks `last`, the last seq sent. A message with a higher
//! seq than `last + 1` waits in a small reorder buffer for [`GAP_GRACE`] (concurrent
//! senders publish slightly out of order), then the gap is read from the database —
//! seq N+1 is handed out only after N committed, so the gap is always there. The same
//! read serves `since=` replay, `Lagged` broadcast receivers and resync requests, and
//! anything at or below `last` is dropped, so replay and live delivery meet with no gap
//! and no duplicate even while messages arrive during the replay.
//!
//! Close codes: 1000 normal, 1001 server stopping, 1002 protocol error, 1007 text frame
//! not UTF-8, 1008 too many bad or rate-limited frames, 1009 frame too large, 1011
//! database unavailable, 4008 too slow, 4403 kicked by a moderator, 4408 idle timeout,
//! 4410 room closed.
//!
//! A kick is a row of the room's log like any other: every member's delivery sees it in
//! order, on every replica, and the kicked user's connections close after sending it.
//! Only a kick stored after the connection began counts (a replay with `since` shows
//! earlier kicks without acting on them), so a kicked user may come back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::actions;
use super::hub::Event;
use super::protocol::{Refusal, ServerFrame, UserRef};
use crate::rooms::store;
use crate::state::AppState;

/// How long an out-of-order message waits for the missing ones before the database is read.
const GAP_GRACE: Duration = Duration::from_millis(100);
/// Out-of-order messages held before reading the database at once.
const MAX_PENDING: usize = 1024;
/// Page size of history reads during replay and gap fills.
const FILL_PAGE: i64 = 500;
/// A replaying member that does not take a frame for this long is dropped as too slow.
pub const FILL_SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Bad or rate-limited frames tolerated in a burst …
const MAX_STRIKES: u32 = 10;
/// … and forgiven per second.
const STRIKES_FORGIVEN_PER_SEC: f64 = 0.2;
/// How long closing may take (flushing queued frames and the close frame).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_INTERNAL: u16 = 1011;
pub const CLOSE_TOO_SLOW: u16 = 4008;
pub const CLOSE_IDLE: u16 = 4408;
pub const CLOSE_KICKED: u16 = 4403;
pub const CLOSE_ROOM_CLOSED: u16 = 4410;

/// Who is connected to which room, decided before the upgrade.
#[derive(Debug, Clone)]
pub struct Conn {
    pub room_id: String,
    pub user_id: String,
    pub username: String,
    pub since: Option<i64>,
    /// The album of an album room: chat lines carry their author's rating of it.
    pub album_id: Option<String>,
    /// The room's creator or a configured admin: never muted or slowed.
    pub moderator: bool,
}

#[derive(Debug, Clone, Copy)]
struct Close {
    code: u16,
    reason: &'static str,
    /// Send the frames already queued before the close frame.
    flush: bool,
}

/// The connection's shared stop switch; the first close reason wins.
pub(super) struct Ctl {
    token: CancellationToken,
    close: Mutex<Option<Close>>,
}

impl Ctl {
    pub(super) fn close(&self, code: u16, reason: &'static str, flush: bool) {
        let mut slot = self.close.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Close { code, reason, flush });
        }
        drop(slot);
        self.token.cancel();
    }

    fn reason(&self) -> Close {
        self.close.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or(Close {
            code: CLOSE_GOING_AWAY,
            reason: "server shutting down; reconnect with since",
            flush: true,
        })
    }
}

/// Runs a connection to the end: join, announce, serve, leave, announce.
///
/// A function that returns the connection's future rather than an `async fn`, because
/// this future lives as long as the member does: an `async fn` keeps room for its
/// arguments twice (as passed, and as moved into its body), 0.9 KiB here with the
/// unsplit socket. The socket is split before the future exists. With the boxed frame
/// handling and fills (`read_frames`, `Cursor::fill`) a member's task is 3,072 bytes
/// instead of 8,320, which jemalloc rounds to 10 KiB (`cargo +nightly rustc --release -p
/// liner-forum --lib -- -Zprint-type-sizes`; docs/BENCHMARKS.md, release day, stop 25).
pub fn run(socket: WebSocket, state: AppState, conn: Conn) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    async move {
        let mut membership = state.fanout.hub.join(&conn.room_id);
        state.fanout.members_changed(&conn.room_id).await;
        metrics::gauge!("forum_ws_connections").increment(1.0);
        tracing::debug!(room_id = %conn.room_id, user_id = %conn.user_id, "member joined");
        announce(&state, &conn, true).await;

        // The member's starting position, read after joining the hub (whatever is stored
        // later arrives on the hub or is found by a fill) and before reading the client's
        // first frame (its own messages come after it, so it receives them too).
        let start = store::room_progress(&state.db, &conn.room_id).await;

        let ctl = Ctl { token: state.shutdown.child_token(), close: Mutex::new(None) };
        let (tx, rx) = mpsc::channel(state.chat.send_queue);
        tokio::join!(
            writer(sink, rx, &ctl, state.chat.ping_interval),
            reader(stream, tx.clone(), &ctl, &state, &conn),
            delivery(start, &mut membership.rx, tx, &ctl, &state, &conn),
        );

        drop(membership);
        state.fanout.members_changed(&conn.room_id).await;
        metrics::gauge!("forum_ws_connections").decrement(1.0);
        let close = ctl.reason();
        tracing::debug!(room_id = %conn.room_id, user_id = %conn.user_id, code = close.code, reason = close.reason, "member left");
        announce(&state, &conn, false).await;
    }
}

async fn announce(state: &AppState, conn: &Conn, joined: bool) {
    let online = state.fanout.online(&conn.room_id).await;
    let who = Some(UserRef { user_id: conn.user_id.clone(), username: conn.username.clone() });
    let frame = if joined {
        ServerFrame::Presence { joined: who, left: None, online }
    } else {
        ServerFrame::Presence { joined: None, left: who, online }
    };
    state.fanout.publish(&conn.room_id, Event::Presence { frame: frame.to_text() }).await;
}

async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    ctl: &Ctl,
    ping_every: Duration,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    loop {
        let msg = tokio::select! {
            biased;
            _ = ctl.token.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            _ = ping.tick() => Message::Ping(Bytes::new()),
        };
        let sent = tokio::select! {
            _ = ctl.token.cancelled() => break,
            r = sink.send(msg) => r,
        };
        if sent.is_err() {
            ctl.close(CLOSE_NORMAL, "", false);
            return;
        }
    }
    let close = ctl.reason();
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if close.flush {
            while let Ok(m) = rx.try_recv() {
                sink.feed(m).await?;
            }
        }
        let frame = CloseFrame { code: close.code, reason: Utf8Bytes::from_static(close.reason) };
        sink.send(Message::Close(Some(frame))).await?;
        sink.close().await
    })
    .await;
}

/// The close code for a frame the codec refused (RFC 6455 §7.4.1): too large → 1009,
/// a text frame that is not UTF-8 → 1007, anything else → 1002.
fn close_for_read_error(e: axum::Error) -> (u16, &'static str) {
    use tungstenite::Error;
    match e.into_inner().downcast::<Error>().map(|e| *e) {
        Ok(Error::Capacity(_)) => (CLOSE_TOO_BIG, "frame too large (max 16 KiB)"),
        Ok(Error::Utf8(_)) => (CLOSE_INVALID_DATA, "text frame is not valid UTF-8"),
        _ => (CLOSE_PROTOCOL, "protocol error"),
    }
}

/// Queues a live frame without waiting; a full queue means the member is too slow.
pub(super) fn push(tx: &mpsc::Sender<Message>, ctl: &Ctl, frame: Utf8Bytes) -> bool {
    match tx.try_send(Message::Text(frame)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("forum_ws_slow_consumers_total").increment(1);
            ctl.close(CLOSE_TOO_SLOW, "too slow: send queue full; reconnect with since", false);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Queues a frame of a replay or gap fill, waiting a bounded time for room.
async fn push_wait(tx: &mpsc::Sender<Message>, ctl: &Ctl, frame: Utf8Bytes) -> bool {
    let sent = tokio::select! {
        _ = ctl.token.cancelled() => return false,
        r = tx.send_timeout(Message::Text(frame), FILL_SEND_TIMEOUT) => r,
    };
    match sent {
        Ok(()) => true,
        Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
            metrics::counter!("forum_ws_slow_consumers_total").increment(1);
            ctl.close(CLOSE_TOO_SLOW, "too slow: send queue full; reconnect with since", false);
            false
        }
        Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
    }
}

async fn reader(
    mut stream: SplitStream<WebSocket>,
    tx: mpsc::Sender<Message>,
    ctl: &Ctl,
    state: &AppState,
    conn: &Conn,
) {
    read_frames(&mut stream, tx, ctl, state, conn).await;
    // Closing handshake: keep reading (and discarding) until the client answers our
    // close frame or hangs up, so the TCP connection is not torn down under it.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn read_frames(
    stream: &mut SplitStream<WebSocket>,
    tx: mpsc::Sender<Message>,
    ctl: &Ctl,
    state: &AppState,
    conn: &Conn,
) {
    // No rate configured (0) means no limit; strikes always have one.
    let rate = liner_shared::rate::direct(state.chat.rate_per_sec, state.chat.rate_burst);
    let strikes = liner_shared::rate::direct(STRIKES_FORGIVEN_PER_SEC, MAX_STRIKES);
    loop {
        let next = tokio::select! {
            _ = ctl.token.cancelled() => return,
            n = tokio::time::timeout(state.chat.idle_timeout, stream.next()) => n,
        };
        let msg = match next {
            Err(_) => return ctl.close(CLOSE_IDLE, "idle timeout", true),
            Ok(None) => return ctl.close(CLOSE_NORMAL, "", false),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "WebSocket read failed");
                let (code, reason) = close_for_read_error(e);
                return ctl.close(code, reason, false);
            }
            Ok(Some(Ok(m))) => m,
        };
        let refusal = match msg {
            Message::Text(_) | Message::Binary(_) if rate.as_ref().is_some_and(|r| r.check().is_err()) => {
                Some((Refusal::new("rate_limited", "too many messages; slow down", None), true))
            }
            // Boxed: a frame's handling (a stored write, an edit) needs 3.5 KiB of state
            // for a moment; inline, every idle member's task would carry it for good.
            Message::Text(text) => Box::pin(actions::handle(text.as_str(), &tx, ctl, state, conn)).await,
            Message::Binary(_) => {
                Some((Refusal::new("bad_frame", "binary frames are not supported; send JSON text frames", None), true))
            }
            Message::Ping(_) | Message::Pong(_) => None,
            Message::Close(_) => return ctl.close(CLOSE_NORMAL, "", true),
        };
        if let Some((refusal, strike)) = refusal {
            if refusal.code == "rate_limited" {
                metrics::counter!("forum_ws_rate_limited_total").increment(1);
            }
            if !push(&tx, ctl, ServerFrame::from(refusal).to_text()) {
                return;
            }
            if strike && strikes.as_ref().is_some_and(|s| s.check().is_err()) {
                return ctl.close(CLOSE_POLICY, "too many bad or rate-limited frames", true);
            }
        }
        if ctl.token.is_cancelled() {
            return;
        }
    }
}

/// A row of the log waiting in the reorder buffer: its frame, and whom it kicks.
type Held = (Utf8Bytes, Option<Arc<str>>);

/// The member's delivery position (see the module doc).
struct Cursor {
    last: i64,
    pending: BTreeMap<i64, Held>,
    fill_at: Option<Instant>,
    user_id: String,
    /// The room's last seq when the connection began: only later kicks act.
    live_from: i64,
}

impl Cursor {
    /// A live row of the log; false when the connection must end.
    fn on_message(&mut self, seq: i64, held: Held, tx: &mpsc::Sender<Message>, ctl: &Ctl) -> bool {
        if seq <= self.last || self.pending.contains_key(&seq) {
            return true;
        }
        if seq == self.last + 1 {
            return self.sent(seq, push(tx, ctl, held.0), held.1.as_deref(), ctl) && self.drain(tx, ctl);
        }
        self.pending.insert(seq, held);
        if self.pending.len() > MAX_PENDING {
            self.fill_at = Some(Instant::now());
        } else if self.fill_at.is_none() {
            self.fill_at = Some(Instant::now() + GAP_GRACE);
        }
        true
    }

    /// After queueing row `seq` (`queued`): advances, and ends the connection when the
    /// row kicks this member; false when the connection must end.
    fn sent(&mut self, seq: i64, queued: bool, kick: Option<&str>, ctl: &Ctl) -> bool {
        if !queued {
            return false;
        }
        self.last = seq;
        if kick == Some(self.user_id.as_str()) && seq > self.live_from {
            ctl.close(CLOSE_KICKED, "kicked from the room by a moderator", true);
            return false;
        }
        true
    }

    /// Sends buffered rows that are now next in line.
    fn drain(&mut self, tx: &mpsc::Sender<Message>, ctl: &Ctl) -> bool {
        while let Some((frame, kick)) = self.pending.remove(&(self.last + 1)) {
            if !self.sent(self.last + 1, push(tx, ctl, frame), kick.as_deref(), ctl) {
                return false;
            }
        }
        self.pending.retain(|seq, _| *seq > self.last);
        if self.pending.is_empty() {
            self.fill_at = None;
        }
        true
    }

    /// Reads every stored row after `last` and sends it; false when the connection must end.
    /// A database failure is retried a second later (nothing is skipped meanwhile).
    ///
    /// Boxed for the same reason as a frame's handling in `read_frames`: a fill's state
    /// (a history read and a bounded wait for room in the queue) is needed for replays and
    /// gaps only, not by an idle member's resident task.
    async fn fill(&mut self, tx: &mpsc::Sender<Message>, ctl: &Ctl, state: &AppState, room_id: &str) -> bool {
        Box::pin(self.fill_now(tx, ctl, state, room_id)).await
    }

    async fn fill_now(&mut self, tx: &mpsc::Sender<Message>, ctl: &Ctl, state: &AppState, room_id: &str) -> bool {
        loop {
            let rows = match store::messages_after(&state.db, room_id, self.last, FILL_PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, %room_id, "history read failed; retrying");
                    self.fill_at = Some(Instant::now() + Duration::from_secs(1));
                    return true;
                }
            };
            let full_page = rows.len() as i64 == FILL_PAGE;
            for m in rows {
                if m.seq <= self.last {
                    continue;
                }
                self.pending.remove(&m.seq);
                let Event::Message { frame, kick, .. } = Event::stored(&m) else { continue };
                if !self.sent(m.seq, push_wait(tx, ctl, frame).await, kick.as_deref(), ctl) {
                    return false;
                }
            }
            if !full_page {
                break;
            }
        }
        self.fill_at = None;
        if !self.drain(tx, ctl) {
            return false;
        }
        if !self.pending.is_empty() {
            self.fill_at = Some(Instant::now() + GAP_GRACE);
        }
        true
    }
}

async fn delivery(
    start: crate::error::Result<Option<(i64, bool)>>,
    rx: &mut broadcast::Receiver<Event>,
    tx: mpsc::Sender<Message>,
    ctl: &Ctl,
    state: &AppState,
    conn: &Conn,
) {
    let db_last = match start {
        // Closed between the connect check and the join: the close event may be gone.
        Ok(Some((_, false))) => {
            push_wait(&tx, ctl, ServerFrame::Closed.to_text()).await;
            return ctl.close(CLOSE_ROOM_CLOSED, "room closed", true);
        }
        Ok(Some((last, true))) => last,
        Ok(None) => return ctl.close(CLOSE_ROOM_CLOSED, "room not found", true),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read room position");
            return ctl.close(CLOSE_INTERNAL, "database unavailable; reconnect with since", false);
        }
    };
    let mut cur = Cursor {
        last: conn.since.map_or(db_last, |s| s.clamp(0, db_last)),
        pending: BTreeMap::new(),
        fill_at: None,
        user_id: conn.user_id.clone(),
        live_from: db_last,
    };
    if cur.last < db_last && !cur.fill(&tx, ctl, state, &conn.room_id).await {
        return;
    }
    loop {
        let fill_at = cur.fill_at;
        let keep_going = tokio::select! {
            _ = ctl.token.cancelled() => false,
            ev = rx.recv() => match ev {
                Ok(Event::Message { seq, frame, kick }) => cur.on_message(seq, (frame, kick), &tx, ctl),
                Ok(Event::Presence { frame }) => push(&tx, ctl, frame),
                Ok(Event::Typing { user_id, frame }) => *user_id == *conn.user_id || push(&tx, ctl, frame),
                Ok(Event::Resync { upto }) => cur.last >= upto || cur.fill(&tx, ctl, state, &conn.room_id).await,
                Ok(Event::Closed) => {
                    // Everything stored before the close first, then the notice.
                    if cur.fill(&tx, ctl, state, &conn.room_id).await {
                        push_wait(&tx, ctl, ServerFrame::Closed.to_text()).await;
                    }
                    ctl.close(CLOSE_ROOM_CLOSED, "room closed", true);
                    false
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "member lagged the room channel; reading the database");
                    cur.fill(&tx, ctl, state, &conn.room_id).await
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
            _ = tokio::time::sleep_until(fill_at.unwrap_or_else(Instant::now)), if fill_at.is_some() => {
                cur.fill(&tx, ctl, state, &conn.room_id).await
            }
        };
        if !keep_going {
            return;
        }
    }
}
