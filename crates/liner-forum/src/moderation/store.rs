//! Mutes and reports. (Mutes are written by the sequenced `mute`/`unmute` events, in
//! their transaction, see `rooms::store`; this reads them back.) One report per user
//! per message is a unique key, not only a check.

use std::sync::LazyLock;

use liner_shared::db::{Db, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Mute, Report, ReportStatus};
use crate::error::{ForumError, Result};
use crate::rooms::store::{MESSAGE_COLUMNS, message_from_row};

/// Mutes still running at `now`, soonest end first.
pub async fn active_mutes(db: &Db, room_id: &str, now: i64) -> Result<Vec<Mute>> {
    let rows = sqlx::query(
        "SELECT user_id, username, until_at FROM room_mutes WHERE room_id = $1 AND until_at > $2
         ORDER BY until_at, user_id LIMIT 1000",
    )
    .bind(room_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Mute {
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                until: liner_shared::rfc3339(r.try_get("until_at")?),
            })
        })
        .collect()
}

/// A report to store.
pub struct NewReport<'a> {
    pub id: &'a str,
    pub room_id: &'a str,
    pub message_id: &'a str,
    pub reporter_id: &'a str,
    pub reporter_name: &'a str,
    pub reason: &'a str,
    pub created_at: i64,
}

/// Stores a report; the same reporter and message twice is a conflict naming the first.
pub async fn insert_report(db: &Db, r: &NewReport<'_>) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO message_reports (id, room_id, message_id, reporter_id, reporter_name, reason, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id)
    .bind(r.room_id)
    .bind(r.message_id)
    .bind(r.reporter_id)
    .bind(r.reporter_name)
    .bind(r.reason)
    .bind(r.created_at)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            let existing_id: String =
                sqlx::query_scalar("SELECT id FROM message_reports WHERE message_id = $1 AND reporter_id = $2")
                    .bind(r.message_id)
                    .bind(r.reporter_id)
                    .fetch_one(&db.pool)
                    .await?;
            Err(ForumError::ReportExists { existing_id })
        }
        Err(e) => Err(e.into()),
    }
}

/// A report joined with its message (the message's columns keep their names, and are
/// the log's own list, so a column added to messages is read here too).
static REPORT_SELECT: LazyLock<String> = LazyLock::new(|| {
    let message_columns: Vec<String> = MESSAGE_COLUMNS.split(',').map(|c| format!("m.{}", c.trim())).collect();
    format!(
        "SELECT r.id AS report_id, r.reporter_id, r.reporter_name, r.reason,
            r.created_at AS reported_at, r.resolved_at, r.resolved_by, {}
         FROM message_reports r JOIN messages m ON m.id = r.message_id",
        message_columns.join(", ")
    )
});

fn report_from_row(row: &AnyRow) -> Result<Report> {
    let message = message_from_row(row)?;
    let resolved_at: Option<i64> = row.try_get("resolved_at")?;
    Ok(Report {
        id: row.try_get("report_id")?,
        room_id: message.room_id.clone(),
        message_id: message.id.clone(),
        reporter_id: row.try_get("reporter_id")?,
        reporter_name: row.try_get("reporter_name")?,
        reason: row.try_get("reason")?,
        created_at: liner_shared::rfc3339(row.try_get("reported_at")?),
        status: if resolved_at.is_some() { ReportStatus::Resolved } else { ReportStatus::Open },
        resolved_at: resolved_at.map(liner_shared::rfc3339),
        resolved_by: row.try_get("resolved_by")?,
        message: message.view(),
    })
}

pub async fn get_report(db: &Db, room_id: &str, id: &str) -> Result<Option<Report>> {
    let sql = sqlx::AssertSqlSafe(format!("{} WHERE r.id = $1 AND r.room_id = $2", *REPORT_SELECT));
    let row = sqlx::query(sql).bind(id).bind(room_id).fetch_optional(&db.pool).await?;
    row.as_ref().map(report_from_row).transpose()
}

/// Open (or resolved) reports of a room, oldest first.
pub async fn list_reports(db: &Db, room_id: &str, status: ReportStatus, limit: i64) -> Result<Vec<Report>> {
    let open = match status {
        ReportStatus::Open => "IS NULL",
        ReportStatus::Resolved => "IS NOT NULL",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "{} WHERE r.room_id = $1 AND r.resolved_at {open} ORDER BY r.created_at, r.id LIMIT $2",
        *REPORT_SELECT
    ));
    let rows = sqlx::query(sql).bind(room_id).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(report_from_row).collect()
}

/// Marks a report resolved (a resolved one stays as it was).
pub async fn resolve_report(db: &Db, room_id: &str, id: &str, by: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE message_reports SET resolved_at = $3, resolved_by = $4
         WHERE id = $1 AND room_id = $2 AND resolved_at IS NULL",
    )
    .bind(id)
    .bind(room_id)
    .bind(now)
    .bind(by)
    .execute(&db.pool)
    .await?;
    Ok(())
}
