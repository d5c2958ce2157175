//! Room and message storage — the forum's own database, never the review service's.
//!
//! The `messages` table is each room's sequenced log: chat lines and the room events
//! that must reach every member in order and be replayed by `since` (edits, deletions,
//! mutes, kicks, slow-mode changes; see the 0002 migration). Every row, whatever its
//! kind, is appended by [`append`] with the room's next seq; an event's change (new
//! text, a tombstone, a mute) is made in the same transaction, and a send that a mute
//! or slow mode holds back is rolled back with its seq. History shows chat lines only,
//! each as it stands now.
//!
//! Ordering lives here. `seq` is handed out by the database: the insert transaction
//! starts with `UPDATE rooms SET last_seq = last_seq + 1 … RETURNING last_seq`, so
//! - the row lock (PostgreSQL) or the single writer lock (SQLite) serialises senders of
//!   one room across every replica; seq N+1 cannot be handed out before N committed,
//!   so a reader that sees N+1 can always find N in the table;
//! - a failed insert rolls the bump back, so there are no gaps;
//! - on SQLite the first statement is a write, so the transaction takes the write lock
//!   at once and waits on `busy_timeout` instead of failing with `SQLITE_BUSY` when a
//!   read transaction would have to be upgraded.
//!
//! On SQLite, message writers of this service also queue on one async mutex: SQLite
//! has a single writer anyway, and its busy handler waits by sleeping in growing steps
//! (up to 100 ms), which under many concurrent senders turned into latency spikes of
//! hundreds of milliseconds; a fair in-process queue hands the lock over at once.
//!
//! `UNIQUE (room_id, user_id, client_msg_id)` makes a retried send idempotent even when
//! two retries race on different replicas: the loser's transaction rolls back (and its
//! seq bump with it) and it answers with the winner's id and seq.

use liner_shared::config::Backend;
use liner_shared::db::{Db, is_unique_violation};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::model::{EventKind, MessageView, QuotedReview, Room, RoomType};
use crate::error::{ForumError, Result};

/// A room row as stored.
#[derive(Debug, Clone)]
pub struct RoomRow {
    pub id: String,
    pub room_type: RoomType,
    pub album_id: Option<String>,
    pub genre_id: Option<String>,
    pub title: String,
    pub created_by: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub last_seq: i64,
    /// One chat line per user per this many seconds (0: off).
    pub slow_mode_secs: i64,
    /// When the adaptive rule switched slow mode on (unix ms; 0: a moderator's or none).
    pub slow_mode_auto_since: i64,
}

impl RoomRow {
    pub fn is_active(&self) -> bool {
        self.closed_at.is_none()
    }
    pub fn into_view(self, online: u64) -> Room {
        Room {
            active: self.is_active(),
            id: self.id,
            room_type: self.room_type,
            album_id: self.album_id,
            genre_id: self.genre_id,
            title: self.title,
            created_by: self.created_by,
            created_at: liner_shared::rfc3339(self.created_at),
            online,
            slow_mode_secs: self.slow_mode_secs,
            slow_mode_automatic: self.slow_mode_auto_since > 0,
        }
    }
}

const ROOM_COLUMNS: &str =
    "id, room_type, album_id, genre_id, title, created_by, created_at, closed_at, last_seq, slow_mode_secs,
     slow_mode_auto_since";

fn room_from_row(row: &AnyRow) -> Result<RoomRow> {
    let room_type: String = row.try_get("room_type")?;
    Ok(RoomRow {
        id: row.try_get("id")?,
        room_type: RoomType::parse(&room_type)
            .ok_or_else(|| ForumError::Internal(anyhow::anyhow!("bad room_type {room_type:?} in database")))?,
        album_id: row.try_get("album_id")?,
        genre_id: row.try_get("genre_id")?,
        title: row.try_get("title")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        closed_at: row.try_get("closed_at")?,
        last_seq: row.try_get("last_seq")?,
        slow_mode_secs: row.try_get("slow_mode_secs")?,
        slow_mode_auto_since: row.try_get("slow_mode_auto_since")?,
    })
}

/// Inserts an active room; a second active room for the same key is a conflict naming the first.
pub async fn insert_room(db: &Db, row: &RoomRow, active_key: &str) -> Result<()> {
    // A conflicting room may close between our failed insert and the lookup: try twice.
    for _ in 0..2 {
        let inserted = sqlx::query(
            "INSERT INTO rooms (id, room_type, album_id, genre_id, title, created_by, created_at, closed_at, active_key, last_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, 0)",
        )
        .bind(&row.id)
        .bind(row.room_type.as_str())
        .bind(row.album_id.as_deref())
        .bind(row.genre_id.as_deref())
        .bind(&row.title)
        .bind(&row.created_by)
        .bind(row.created_at)
        .bind(active_key)
        .execute(&db.pool)
        .await;
        match inserted {
            Ok(_) => return Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let existing: Option<String> = sqlx::query_scalar("SELECT id FROM rooms WHERE active_key = $1")
                    .bind(active_key)
                    .fetch_optional(&db.pool)
                    .await?;
                if let Some(existing_id) = existing {
                    return Err(ForumError::RoomExists { existing_id });
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ForumError::Internal(anyhow::anyhow!("room insert kept conflicting")))
}

pub async fn get_room(db: &Db, id: &str) -> Result<Option<RoomRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"));
    let row = sqlx::query(sql).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(room_from_row).transpose()
}

/// Active rooms, newest first, optionally filtered.
pub async fn list_active(
    db: &Db,
    room_type: Option<RoomType>,
    album_id: Option<&str>,
    genre_id: Option<&str>,
    limit: i64,
) -> Result<Vec<RoomRow>> {
    // CAST gives PostgreSQL a type for a parameter that may be bound as NULL.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ROOM_COLUMNS} FROM rooms
         WHERE closed_at IS NULL
           AND (CAST($1 AS TEXT) IS NULL OR room_type = $1)
           AND (CAST($2 AS TEXT) IS NULL OR album_id = $2)
           AND (CAST($3 AS TEXT) IS NULL OR LOWER(genre_id) = LOWER($3))
         ORDER BY created_at DESC, id DESC
         LIMIT $4"
    ));
    let rows = sqlx::query(sql)
        .bind(room_type.map(RoomType::as_str))
        .bind(album_id)
        .bind(genre_id)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(room_from_row).collect()
}

/// Closes an active room; false when it was closed already.
pub async fn close_room(db: &Db, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query("UPDATE rooms SET closed_at = $2, active_key = NULL WHERE id = $1 AND closed_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// (last seq, active) of a room, for the fan-out reconciliation.
pub async fn room_progress(db: &Db, id: &str) -> Result<Option<(i64, bool)>> {
    let row =
        sqlx::query("SELECT last_seq, closed_at FROM rooms WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((r.try_get("last_seq")?, r.try_get::<Option<i64>, _>("closed_at")?.is_none()))),
    }
}

/// A row of a room's sequenced log: a chat line, or a room event (`kind`, see the
/// 0002 migration for what `target_id`, `target_name` and `amount` mean per kind).
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub kind: EventKind,
    /// The author of a chat line or edit; the moderator of a moderation event.
    pub user_id: String,
    pub username: String,
    pub body: String,
    pub sent_at: i64,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    pub amount: Option<i64>,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// The author's rating of the room's album when sent, in halves (see the 0003 migration).
    pub author_rating_half: Option<i64>,
    /// The review a thread's opening line quotes (see the 0005 migration).
    pub quote: Option<Quote>,
    /// A reply's thread: the id of the line that quotes the review.
    pub thread_id: Option<String>,
}

/// A review as quoted by the line that opens its thread, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub review_id: String,
    pub user_id: String,
    pub username: String,
    pub rating_half: i64,
}

impl StoredMessage {
    /// A chat line as history and `message` frames show it (a deleted one as a tombstone).
    pub fn view(&self) -> MessageView {
        MessageView {
            id: self.id.clone(),
            seq: self.seq,
            room_id: self.room_id.clone(),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            message: if self.deleted_at.is_some() { String::new() } else { self.body.clone() },
            sent_at: liner_shared::rfc3339(self.sent_at),
            edited_at: self.edited_at.map(liner_shared::rfc3339),
            deleted: self.deleted_at.is_some(),
            author_rating: self.author_rating_half.map(|h| h as f64 / 2.0),
            review: self.quote.as_ref().map(|q| QuotedReview {
                id: q.review_id.clone(),
                user_id: q.user_id.clone(),
                username: q.username.clone(),
                rating: q.rating_half as f64 / 2.0,
            }),
            thread_id: self.thread_id.clone(),
        }
    }
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, room_id, seq, kind, user_id, username, body, sent_at, target_id, target_name, amount, edited_at, deleted_at,
     author_rating_half, review_id, review_user_id, review_username, review_rating_half, thread_id";

pub(crate) fn message_from_row(row: &AnyRow) -> Result<StoredMessage> {
    let kind: String = row.try_get("kind")?;
    let quote = match row.try_get::<Option<String>, _>("review_id")? {
        None => None,
        Some(review_id) => Some(Quote {
            review_id,
            user_id: row.try_get::<Option<String>, _>("review_user_id")?.unwrap_or_default(),
            username: row.try_get::<Option<String>, _>("review_username")?.unwrap_or_default(),
            rating_half: row.try_get::<Option<i64>, _>("review_rating_half")?.unwrap_or_default(),
        }),
    };
    Ok(StoredMessage {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        seq: row.try_get("seq")?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| ForumError::Internal(anyhow::anyhow!("bad message kind {kind:?} in database")))?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        body: row.try_get("body")?,
        sent_at: row.try_get("sent_at")?,
        target_id: row.try_get("target_id")?,
        target_name: row.try_get("target_name")?,
        amount: row.try_get("amount")?,
        edited_at: row.try_get("edited_at")?,
        deleted_at: row.try_get("deleted_at")?,
        author_rating_half: row.try_get("author_rating_half")?,
        quote,
        thread_id: row.try_get("thread_id")?,
    })
}

/// Why a member may not post right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Muted in this room until then (unix ms).
    Muted { until: i64 },
    /// Slow mode: the member's next chat line is allowed in this many ms.
    SlowMode { retry_after_ms: i64 },
}

/// What appending to the log did.
#[derive(Debug)]
pub enum Appended {
    /// Newly stored, while the room's slow mode was this (seconds, 0: off).
    Stored { message: Box<StoredMessage>, slow_mode_secs: i64 },
    /// The same (user, clientMsgId) was stored before: its id and seq.
    Duplicate { id: String, seq: i64 },
    /// The room is closed (or gone).
    RoomClosed,
    /// Refused: the member is muted or in slow mode.
    Held(Hold),
    /// The event's change found nothing to change (the message is gone, deleted, past
    /// its edit window, or the user not muted): nothing stored.
    NoChange,
}

/// What an event changes besides adding its row, in the same transaction.
#[derive(Debug, Default)]
pub enum Effect<'a> {
    #[default]
    None,
    /// The author's message gets this text, if sent at or after `not_before` and not deleted.
    Edit {
        message_id: &'a str,
        not_before: i64,
    },
    /// The message becomes a tombstone; its text leaves the log (edits included).
    Delete {
        message_id: &'a str,
    },
    /// The user is muted until `until` (unix ms).
    Mute {
        until: i64,
    },
    Unmute,
    /// A moderator sets slow mode (it stays theirs: the adaptive rule leaves it alone).
    SlowMode {
        secs: i64,
    },
    /// The adaptive rule switches slow mode on, unless it is on already or a moderator
    /// set it after `moderator_before` (unix ms).
    AutoSlowModeOn {
        secs: i64,
        moderator_before: i64,
    },
    /// The adaptive rule switches its own slow mode off (not a moderator's).
    AutoSlowModeOff,
}

/// A row to append: a chat line (the default kind) or a room event.
#[derive(Debug, Default)]
pub struct NewMessage<'a> {
    pub room_id: &'a str,
    pub kind: EventKind,
    pub user_id: &'a str,
    pub username: &'a str,
    pub client_msg_id: Option<&'a str>,
    pub body: &'a str,
    pub target_id: Option<&'a str>,
    pub target_name: Option<&'a str>,
    pub amount: Option<i64>,
    /// A chat line's author's rating of the album, in halves.
    pub author_rating_half: Option<i64>,
    /// Moderators are neither muted nor slowed.
    pub moderator: bool,
    pub effect: Effect<'a>,
    /// The review this line quotes (it opens the review's thread; one per review per room).
    pub quote: Option<&'a Quote>,
    /// The thread this line replies in.
    pub thread_id: Option<&'a str>,
}

pub async fn find_by_client_id(
    db: &Db,
    room_id: &str,
    user_id: &str,
    client_msg_id: &str,
) -> Result<Option<(String, i64)>> {
    let row = sqlx::query("SELECT id, seq FROM messages WHERE room_id = $1 AND user_id = $2 AND client_msg_id = $3")
        .bind(room_id)
        .bind(user_id)
        .bind(client_msg_id)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((r.try_get("id")?, r.try_get("seq")?))),
    }
}

/// The line that quotes this review in the room (its thread): (id, seq).
pub async fn find_thread(db: &Db, room_id: &str, review_id: &str) -> Result<Option<(String, i64)>> {
    let row = sqlx::query("SELECT id, seq FROM messages WHERE room_id = $1 AND review_id = $2")
        .bind(room_id)
        .bind(review_id)
        .fetch_optional(&db.pool)
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((r.try_get("id")?, r.try_get("seq")?))),
    }
}

/// The row this line duplicates, if it was stored before: the same (user, clientMsgId),
/// or a line quoting the same review.
async fn find_earlier(db: &Db, msg: &NewMessage<'_>) -> Result<Option<(String, i64)>> {
    if let Some(quote) = msg.quote {
        return find_thread(db, msg.room_id, &quote.review_id).await;
    }
    match msg.client_msg_id {
        Some(cid) => find_by_client_id(db, msg.room_id, msg.user_id, cid).await,
        None => Ok(None),
    }
}

/// One row of the log by id (any kind), in its room.
pub async fn get_message(db: &Db, room_id: &str, id: &str) -> Result<Option<StoredMessage>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND room_id = $2"));
    let row = sqlx::query(sql).bind(id).bind(room_id).fetch_optional(&db.pool).await?;
    row.as_ref().map(message_from_row).transpose()
}

/// The in-process queue of SQLite message writers (see the module doc); one per service
/// instance (a process-wide static would tie together instances on different runtimes,
/// as in tests).
#[derive(Debug, Default)]
pub struct WriteQueue(tokio::sync::Mutex<()>);

/// The seq handed out, and the room's rules a sender is held to.
struct Next {
    seq: i64,
    slow_mode_secs: i64,
    mutes_until: i64,
}

/// Takes the room's next seq (see the module doc); None when the room is closed or gone.
async fn next_seq(tx: &mut Transaction<'_, Any>, room_id: &str) -> Result<Option<Next>> {
    let row = sqlx::query(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND closed_at IS NULL
         RETURNING last_seq, slow_mode_secs, mutes_until",
    )
    .bind(room_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Next {
        seq: r.try_get("last_seq")?,
        slow_mode_secs: r.try_get("slow_mode_secs")?,
        mutes_until: r.try_get("mutes_until")?,
    }))
}

/// Whether a mute or slow mode holds this row back. Mutes hold chat lines and edits,
/// slow mode chat lines only; moderators are never held. Cheap while the room has no
/// running mute and no slow mode (no extra query).
async fn hold(tx: &mut Transaction<'_, Any>, next: &Next, msg: &NewMessage<'_>, now: i64) -> Result<Option<Hold>> {
    if msg.moderator || !matches!(msg.kind, EventKind::Message | EventKind::Edit) {
        return Ok(None);
    }
    if next.mutes_until > now {
        let until: Option<i64> =
            sqlx::query_scalar("SELECT until_at FROM room_mutes WHERE room_id = $1 AND user_id = $2")
                .bind(msg.room_id)
                .bind(msg.user_id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some(until) = until.filter(|u| *u > now) {
            return Ok(Some(Hold::Muted { until }));
        }
    }
    if msg.kind == EventKind::Message && next.slow_mode_secs > 0 {
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(sent_at) FROM messages WHERE room_id = $1 AND user_id = $2 AND kind = 'message'",
        )
        .bind(msg.room_id)
        .bind(msg.user_id)
        .fetch_one(&mut **tx)
        .await?;
        let wait = last.map_or(0, |l| l + next.slow_mode_secs * 1000 - now);
        if wait > 0 {
            return Ok(Some(Hold::SlowMode { retry_after_ms: wait }));
        }
    }
    Ok(None)
}

/// Applies an event's change; false when there was nothing to change.
async fn apply(tx: &mut Transaction<'_, Any>, msg: &NewMessage<'_>, now: i64) -> Result<bool> {
    let done = match msg.effect {
        Effect::None => return Ok(true),
        Effect::Edit { message_id, not_before } => {
            sqlx::query(
                "UPDATE messages SET body = $1, edited_at = $2 WHERE id = $3 AND room_id = $4 AND kind = 'message'
                   AND user_id = $5 AND deleted_at IS NULL AND sent_at >= $6",
            )
            .bind(msg.body)
            .bind(now)
            .bind(message_id)
            .bind(msg.room_id)
            .bind(msg.user_id)
            .bind(not_before)
            .execute(&mut **tx)
            .await?
        }
        Effect::Delete { message_id } => return tombstone(tx, msg.room_id, message_id, now).await,
        Effect::Mute { until } => {
            mute(tx, msg, until).await?;
            return Ok(true);
        }
        Effect::Unmute => {
            sqlx::query("DELETE FROM room_mutes WHERE room_id = $1 AND user_id = $2 AND until_at > $3")
                .bind(msg.room_id)
                .bind(msg.target_id)
                .bind(now)
                .execute(&mut **tx)
                .await?
        }
        Effect::SlowMode { secs } => {
            sqlx::query(
                "UPDATE rooms SET slow_mode_secs = $2, slow_mode_auto_since = 0, slow_mode_set_at = $3
                 WHERE id = $1 AND (slow_mode_secs <> $2 OR slow_mode_auto_since <> 0)",
            )
            .bind(msg.room_id)
            .bind(secs)
            .bind(now)
            .execute(&mut **tx)
            .await?
        }
        Effect::AutoSlowModeOn { secs, moderator_before } => {
            sqlx::query(
                "UPDATE rooms SET slow_mode_secs = $2, slow_mode_auto_since = $3
                 WHERE id = $1 AND slow_mode_secs = 0 AND slow_mode_set_at < $4",
            )
            .bind(msg.room_id)
            .bind(secs)
            .bind(now)
            .bind(moderator_before)
            .execute(&mut **tx)
            .await?
        }
        Effect::AutoSlowModeOff => sqlx::query(
            "UPDATE rooms SET slow_mode_secs = 0, slow_mode_auto_since = 0 WHERE id = $1 AND slow_mode_auto_since > 0",
        )
        .bind(msg.room_id)
        .execute(&mut **tx)
        .await?,
    };
    Ok(done.rows_affected() > 0)
}

/// Makes a message a tombstone and drops the text of its edits; false when it was one already.
async fn tombstone(tx: &mut Transaction<'_, Any>, room_id: &str, message_id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE messages SET body = '', deleted_at = $1
         WHERE id = $2 AND room_id = $3 AND kind = 'message' AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(message_id)
    .bind(room_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE messages SET body = '' WHERE room_id = $1 AND kind = 'edit' AND target_id = $2")
        .bind(room_id)
        .bind(message_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Mutes the event's target until `until` (replacing a running mute's end).
async fn mute(tx: &mut Transaction<'_, Any>, msg: &NewMessage<'_>, until: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO room_mutes (room_id, user_id, username, until_at, muted_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (room_id, user_id) DO UPDATE
         SET username = excluded.username, until_at = excluded.until_at, muted_by = excluded.muted_by",
    )
    .bind(msg.room_id)
    .bind(msg.target_id)
    .bind(msg.target_name.unwrap_or_default())
    .bind(until)
    .bind(msg.user_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE rooms SET mutes_until = $2 WHERE id = $1 AND mutes_until < $2")
        .bind(msg.room_id)
        .bind(until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Appends a chat line or a room event with the room's next seq (see the module doc),
/// idempotently per clientMsgId; the event's change is made in the same transaction.
pub async fn append(db: &Db, queue: &WriteQueue, msg: NewMessage<'_>) -> Result<Appended> {
    let _writer = match db.backend {
        Backend::Sqlite => Some(queue.0.lock().await),
        Backend::Postgres => None,
    };
    if let Some((id, seq)) = find_earlier(db, &msg).await? {
        return Ok(Appended::Duplicate { id, seq });
    }
    let now = liner_shared::now_millis();
    let mut tx = db.pool.begin().await?;
    let Some(next) = next_seq(&mut tx, msg.room_id).await? else {
        tx.rollback().await?;
        return Ok(Appended::RoomClosed);
    };
    if let Some(held) = hold(&mut tx, &next, &msg, now).await? {
        tx.rollback().await?;
        return Ok(Appended::Held(held));
    }
    if !apply(&mut tx, &msg, now).await? {
        tx.rollback().await?;
        return Ok(Appended::NoChange);
    }
    let stored = StoredMessage {
        id: liner_shared::new_id(),
        room_id: msg.room_id.to_owned(),
        seq: next.seq,
        kind: msg.kind,
        user_id: msg.user_id.to_owned(),
        username: msg.username.to_owned(),
        body: msg.body.to_owned(),
        sent_at: now,
        target_id: msg.target_id.map(str::to_owned),
        target_name: msg.target_name.map(str::to_owned),
        amount: msg.amount,
        edited_at: None,
        deleted_at: None,
        author_rating_half: msg.author_rating_half,
        quote: msg.quote.cloned(),
        thread_id: msg.thread_id.map(str::to_owned),
    };
    match insert(&mut tx, &stored, msg.client_msg_id).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Appended::Stored { message: Box::new(stored), slow_mode_secs: next.slow_mode_secs })
        }
        Err(e) if is_unique_violation(&e) && (msg.client_msg_id.is_some() || msg.quote.is_some()) => {
            tx.rollback().await?;
            match find_earlier(db, &msg).await? {
                Some((id, seq)) => Ok(Appended::Duplicate { id, seq }),
                None => Err(ForumError::Internal(anyhow::anyhow!("duplicate message vanished"))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn insert(
    tx: &mut Transaction<'_, Any>,
    m: &StoredMessage,
    client_msg_id: Option<&str>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO messages (id, room_id, seq, kind, user_id, username, client_msg_id, body, sent_at,
                               target_id, target_name, amount, author_rating_half,
                               review_id, review_user_id, review_username, review_rating_half, thread_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&m.id)
    .bind(&m.room_id)
    .bind(m.seq)
    .bind(m.kind.as_str())
    .bind(&m.user_id)
    .bind(&m.username)
    .bind(client_msg_id)
    .bind(&m.body)
    .bind(m.sent_at)
    .bind(m.target_id.as_deref())
    .bind(m.target_name.as_deref())
    .bind(m.amount)
    .bind(m.author_rating_half)
    .bind(m.quote.as_ref().map(|q| q.review_id.as_str()))
    .bind(m.quote.as_ref().map(|q| q.user_id.as_str()))
    .bind(m.quote.as_ref().map(|q| q.username.as_str()))
    .bind(m.quote.as_ref().map(|q| q.rating_half))
    .bind(m.thread_id.as_deref())
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// Rows of the log with `seq > after` (chat lines and events), oldest first, at most `limit`.
pub async fn messages_after(db: &Db, room_id: &str, after: i64, limit: i64) -> Result<Vec<StoredMessage>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
    ));
    let rows = sqlx::query(sql).bind(room_id).bind(after).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(message_from_row).collect()
}

/// The `limit` newest chat lines with `seq < before` (events left out: history shows each
/// line as it stands now), only the replies of `thread` when given, returned oldest first.
pub async fn messages_before(
    db: &Db,
    room_id: &str,
    before: i64,
    limit: i64,
    thread: Option<&str>,
) -> Result<Vec<StoredMessage>> {
    // CAST gives PostgreSQL a type for a parameter that may be bound as NULL.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND seq < $2 AND kind = 'message'
           AND (CAST($4 AS TEXT) IS NULL OR thread_id = $4)
         ORDER BY seq DESC LIMIT $3"
    ));
    let rows = sqlx::query(sql).bind(room_id).bind(before).bind(limit).bind(thread).fetch_all(&db.pool).await?;
    let mut out = rows.iter().map(message_from_row).collect::<Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}

/// Everyone who ever posted a chat line in the room (at most `limit`), for the rating split.
pub async fn posters(db: &Db, room_id: &str, limit: i64) -> Result<Vec<String>> {
    let ids =
        sqlx::query_scalar("SELECT DISTINCT user_id FROM messages WHERE room_id = $1 AND kind = 'message' LIMIT $2")
            .bind(room_id)
            .bind(limit)
            .fetch_all(&db.pool)
            .await?;
    Ok(ids)
}

/// When the room's row with this seq was appended (unix ms); None when there is none.
pub async fn sent_at_of(db: &Db, room_id: &str, seq: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar("SELECT sent_at FROM messages WHERE room_id = $1 AND seq = $2")
        .bind(room_id)
        .bind(seq)
        .fetch_optional(&db.pool)
        .await?)
}

/// Open rooms whose slow mode the adaptive rule switched on: (id, last seq, since when).
pub async fn auto_slowed_rooms(db: &Db) -> Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT id, last_seq, slow_mode_auto_since FROM rooms WHERE slow_mode_auto_since > 0 AND closed_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("last_seq")?, r.try_get("slow_mode_auto_since")?))).collect()
}
