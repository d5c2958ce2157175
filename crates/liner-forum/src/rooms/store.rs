//! Room and message storage — the forum's own database, never the review service's.
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
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{MessageView, Room, RoomType};
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
        }
    }
}

const ROOM_COLUMNS: &str = "id, room_type, album_id, genre_id, title, created_by, created_at, closed_at, last_seq";

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

/// A stored chat message.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: String,
    pub room_id: String,
    pub seq: i64,
    pub user_id: String,
    pub username: String,
    pub body: String,
    pub sent_at: i64,
}

impl StoredMessage {
    pub fn view(&self) -> MessageView {
        MessageView {
            id: self.id.clone(),
            seq: self.seq,
            room_id: self.room_id.clone(),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            message: self.body.clone(),
            sent_at: liner_shared::rfc3339(self.sent_at),
        }
    }
}

const MESSAGE_COLUMNS: &str = "id, room_id, seq, user_id, username, body, sent_at";

fn message_from_row(row: &AnyRow) -> Result<StoredMessage> {
    Ok(StoredMessage {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        seq: row.try_get("seq")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        body: row.try_get("body")?,
        sent_at: row.try_get("sent_at")?,
    })
}

/// What appending a message did.
#[derive(Debug)]
pub enum Appended {
    /// Newly stored.
    Stored(StoredMessage),
    /// The same (user, clientMsgId) was stored before: its id and seq.
    Duplicate { id: String, seq: i64 },
    /// The room is closed (or gone).
    RoomClosed,
}

/// A message to append.
pub struct NewMessage<'a> {
    pub room_id: &'a str,
    pub user_id: &'a str,
    pub username: &'a str,
    pub client_msg_id: Option<&'a str>,
    pub body: &'a str,
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

/// The in-process queue of SQLite message writers (see the module doc); one per service
/// instance (a process-wide static would tie together instances on different runtimes,
/// as in tests).
#[derive(Debug, Default)]
pub struct WriteQueue(tokio::sync::Mutex<()>);

/// Stores a message with the room's next seq (see the module doc), idempotently per clientMsgId.
pub async fn append(db: &Db, queue: &WriteQueue, msg: NewMessage<'_>) -> Result<Appended> {
    let _writer = match db.backend {
        Backend::Sqlite => Some(queue.0.lock().await),
        Backend::Postgres => None,
    };
    if let Some(cid) = msg.client_msg_id
        && let Some((id, seq)) = find_by_client_id(db, msg.room_id, msg.user_id, cid).await?
    {
        return Ok(Appended::Duplicate { id, seq });
    }
    let mut tx = db.pool.begin().await?;
    let seq: Option<i64> = sqlx::query_scalar(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 AND closed_at IS NULL RETURNING last_seq",
    )
    .bind(msg.room_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(seq) = seq else {
        tx.rollback().await?;
        return Ok(Appended::RoomClosed);
    };
    let stored = StoredMessage {
        id: liner_shared::new_id(),
        room_id: msg.room_id.to_owned(),
        seq,
        user_id: msg.user_id.to_owned(),
        username: msg.username.to_owned(),
        body: msg.body.to_owned(),
        sent_at: liner_shared::now_millis(),
    };
    let inserted = sqlx::query(
        "INSERT INTO messages (id, room_id, seq, user_id, username, client_msg_id, body, sent_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&stored.id)
    .bind(&stored.room_id)
    .bind(stored.seq)
    .bind(&stored.user_id)
    .bind(&stored.username)
    .bind(msg.client_msg_id)
    .bind(&stored.body)
    .bind(stored.sent_at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            tx.commit().await?;
            Ok(Appended::Stored(stored))
        }
        Err(e) if is_unique_violation(&e) && msg.client_msg_id.is_some() => {
            tx.rollback().await?;
            let cid = msg.client_msg_id.unwrap_or_default();
            match find_by_client_id(db, msg.room_id, msg.user_id, cid).await? {
                Some((id, seq)) => Ok(Appended::Duplicate { id, seq }),
                None => Err(ForumError::Internal(anyhow::anyhow!("duplicate message vanished"))),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Messages with `seq > after`, oldest first, at most `limit`.
pub async fn messages_after(db: &Db, room_id: &str, after: i64, limit: i64) -> Result<Vec<StoredMessage>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3"
    ));
    let rows = sqlx::query(sql).bind(room_id).bind(after).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(message_from_row).collect()
}

/// The `limit` newest messages with `seq < before`, returned oldest first.
pub async fn messages_before(db: &Db, room_id: &str, before: i64, limit: i64) -> Result<Vec<StoredMessage>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
    ));
    let rows = sqlx::query(sql).bind(room_id).bind(before).bind(limit).fetch_all(&db.pool).await?;
    let mut out = rows.iter().map(message_from_row).collect::<Result<Vec<_>>>()?;
    out.reverse();
    Ok(out)
}
