//! Like storage: `review_likes (review_id, user_id)` is the primary key, so a second like
//! inserts nothing (`ON CONFLICT DO NOTHING`, on both backends) and racing likes of one
//! person count once. Deleting a review deletes its likes (`ON DELETE CASCADE`).

use std::collections::HashSet;

use liner_shared::db::Db;
use sqlx::Row;

use crate::error::{Result, ReviewError};
use crate::paging::After;
use crate::reviews::store::{REVIEW_COLUMNS, ReviewRow, from_row};

/// The album a review is about; None for an unknown review.
pub async fn album_of(db: &Db, review_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT album_id FROM reviews WHERE id = $1")
        .bind(review_id)
        .fetch_optional(&db.pool)
        .await?)
}

/// Likes the review; true when this added a like (false: it was liked already).
pub async fn like(db: &Db, review_id: &str, user_id: &str, now: i64) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO review_likes (review_id, user_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (review_id, user_id) DO NOTHING",
    )
    .bind(review_id)
    .bind(user_id)
    .bind(now)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(done) => Ok(done.rows_affected() > 0),
        // The review went between the lookup and the insert.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(ReviewError::NotFound("review")),
        Err(e) => Err(e.into()),
    }
}

/// Removes the like; true when there was one.
pub async fn unlike(db: &Db, review_id: &str, user_id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM review_likes WHERE review_id = $1 AND user_id = $2")
        .bind(review_id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn count(db: &Db, review_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM review_likes WHERE review_id = $1")
        .bind(review_id)
        .fetch_one(&db.pool)
        .await?)
}

/// Which of `ids` the user likes.
pub async fn liked_among(db: &Db, user_id: &str, ids: &[&str]) -> Result<HashSet<String>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let placeholders: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
    // Safe: only numbered placeholders are spliced in; values are bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT review_id FROM review_likes WHERE user_id = $1 AND review_id IN ({})",
        placeholders.join(", ")
    ));
    let mut query = sqlx::query_scalar::<_, String>(sql).bind(user_id);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&db.pool).await?.into_iter().collect())
}

/// The reviews a user likes, the latest liked first, with when each was liked.
pub async fn page_of_user(db: &Db, user_id: &str, after: &After, limit: i64) -> Result<Vec<(ReviewRow, i64)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEW_COLUMNS}, k.created_at AS liked_at
         FROM review_likes k JOIN reviews r ON r.id = k.review_id JOIN users u ON u.id = r.user_id
         WHERE k.user_id = $1 AND (k.created_at, k.review_id) < ($2, $3)
         ORDER BY k.created_at DESC, k.review_id DESC LIMIT $4"
    ));
    let rows = sqlx::query(sql).bind(user_id).bind(after.time).bind(&after.id).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(|row| Ok((from_row(row)?, row.try_get("liked_at")?))).collect()
}
