//! Review storage. One review per (user, album) is a unique key in the database, so 50
//! racing POSTs create exactly one row; listings page by keyset (the sort key of the
//! last item), which stays fast and stable however deep a client pages.

use liner_shared::db::{Db, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Cursor, Sort};
use crate::error::{Result, ReviewError};

/// A review row as stored (rating in half-stars, times in unix ms).
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub album_id: String,
    pub rating_half: i64,
    pub review_text: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &AnyRow) -> Result<ReviewRow> {
    Ok(ReviewRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username").unwrap_or_default(),
        album_id: row.try_get("album_id")?,
        rating_half: row.try_get("rating_half")?,
        review_text: row.try_get("review_text")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a review; a second one for the same (user, album) is a conflict naming the first.
pub async fn insert(db: &Db, row: &ReviewRow) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO reviews (id, user_id, album_id, rating_half, review_text, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.album_id)
    .bind(row.rating_half)
    .bind(&row.review_text)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            let existing: String = sqlx::query_scalar("SELECT id FROM reviews WHERE user_id = $1 AND album_id = $2")
                .bind(&row.user_id)
                .bind(&row.album_id)
                .fetch_one(&db.pool)
                .await?;
            Err(ReviewError::DuplicateReview { existing_id: existing })
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(ReviewError::Forbidden("the token's user does not exist"))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<ReviewRow>> {
    const SQL: &str =
        "SELECT r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.created_at, r.updated_at
         FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.id = $1";
    let row = sqlx::query(SQL).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// Updates the fields given, only if `user_id` owns the review. `Ok(None)`: no such
/// review owned by that user (the caller tells 404 from 403).
pub async fn update(
    db: &Db,
    id: &str,
    user_id: &str,
    rating_half: Option<i64>,
    text: Option<&str>,
    now: i64,
) -> Result<Option<ReviewRow>> {
    let row = sqlx::query(
        "UPDATE reviews SET rating_half = COALESCE($1, rating_half), review_text = COALESCE($2, review_text), updated_at = $3
         WHERE id = $4 AND user_id = $5
         RETURNING id, user_id, album_id, rating_half, review_text, created_at, updated_at",
    )
    .bind(rating_half)
    .bind(text)
    .bind(now)
    .bind(id)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes the review if `user_id` owns it; true when a row went.
pub async fn delete(db: &Db, id: &str, user_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM reviews WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn exists(db: &Db, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE id = $1").bind(id).fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// (half-star rating, count) pairs for one album.
pub async fn rating_counts(db: &Db, album_id: &str) -> Result<Vec<(i64, i64)>> {
    let rows = sqlx::query("SELECT rating_half, COUNT(*) AS n FROM reviews WHERE album_id = $1 GROUP BY rating_half")
        .bind(album_id)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(|r| Ok((r.try_get::<i64, _>("rating_half")?, r.try_get::<i64, _>("n")?))).collect()
}

/// One page of an album's reviews after `cursor` in `sort` order.
pub async fn page(db: &Db, album_id: &str, sort: Sort, cursor: &Cursor, limit: i64) -> Result<Vec<ReviewRow>> {
    let sql = match sort {
        Sort::Newest => {
            "SELECT r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.created_at, r.updated_at
            FROM reviews r JOIN users u ON u.id = r.user_id
            WHERE r.album_id = $1 AND (r.created_at, r.id) < ($3, $4) AND $2 = $2
            ORDER BY r.created_at DESC, r.id DESC LIMIT $5"
        }
        Sort::Oldest => {
            "SELECT r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.created_at, r.updated_at
            FROM reviews r JOIN users u ON u.id = r.user_id
            WHERE r.album_id = $1 AND (r.created_at, r.id) > ($3, $4) AND $2 = $2
            ORDER BY r.created_at ASC, r.id ASC LIMIT $5"
        }
        Sort::Highest => {
            "SELECT r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.created_at, r.updated_at
            FROM reviews r JOIN users u ON u.id = r.user_id
            WHERE r.album_id = $1 AND (r.rating_half, r.created_at, r.id) < ($2, $3, $4)
            ORDER BY r.rating_half DESC, r.created_at DESC, r.id DESC LIMIT $5"
        }
        Sort::Lowest => {
            "SELECT r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.created_at, r.updated_at
            FROM reviews r JOIN users u ON u.id = r.user_id
            WHERE r.album_id = $1 AND (r.rating_half, r.created_at, r.id) > ($2, $3, $4)
            ORDER BY r.rating_half ASC, r.created_at ASC, r.id ASC LIMIT $5"
        }
    };
    let rows = sqlx::query(sql)
        .bind(album_id)
        .bind(cursor.rating_half)
        .bind(cursor.created_at)
        .bind(&cursor.id)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}
