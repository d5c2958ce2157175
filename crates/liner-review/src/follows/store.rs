//! Follow storage: (follower_id, followee_id) is the primary key, so racing follows of
//! one pair make one row; an index per direction serves both lists and both counts.

use liner_shared::db::Db;
use sqlx::Row;

use crate::error::Result;
use crate::paging::After;
use crate::reviews::store::{REVIEW_COLUMNS, ReviewRow, from_row};

/// Follows; true when this added the follow.
pub async fn follow(db: &Db, follower: &str, followee: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (follower_id, followee_id) DO NOTHING",
    )
    .bind(follower)
    .bind(followee)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Unfollows; true when there was a follow.
pub async fn unfollow(db: &Db, follower: &str, followee: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
        .bind(follower)
        .bind(followee)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn is_following(db: &Db, follower: &str, followee: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM follows WHERE follower_id = $1 AND followee_id = $2")
        .bind(follower)
        .bind(followee)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// (followers, following) of a user.
pub async fn counts(db: &Db, user_id: &str) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM follows WHERE followee_id = $1) AS followers,
                (SELECT COUNT(*) FROM follows WHERE follower_id = $1) AS following",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?;
    Ok((row.try_get("followers")?, row.try_get("following")?))
}

/// Which side of a follow a list shows.
#[derive(Clone, Copy)]
pub enum Side {
    /// Who follows the user.
    Followers,
    /// Whom the user follows.
    Following,
}

/// One page of a user's followers or followees: (id, username, followed at), latest first.
pub async fn page(db: &Db, user_id: &str, side: Side, after: &After, limit: i64) -> Result<Vec<(String, String, i64)>> {
    let (mine, theirs) = match side {
        Side::Followers => ("followee_id", "follower_id"),
        Side::Following => ("follower_id", "followee_id"),
    };
    // Safe: only fixed column names are spliced in; values are bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT u.id, u.username, f.created_at FROM follows f JOIN users u ON u.id = f.{theirs}
         WHERE f.{mine} = $1 AND (f.created_at, f.{theirs}) < ($2, $3)
         ORDER BY f.created_at DESC, f.{theirs} DESC LIMIT $4"
    ));
    let rows = sqlx::query(sql).bind(user_id).bind(after.time).bind(&after.id).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("username")?, r.try_get("created_at")?))).collect()
}

/// One page of the feed: reviews by the people `user_id` follows, newest first.
pub async fn feed(db: &Db, user_id: &str, after: &After, limit: i64) -> Result<Vec<ReviewRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEW_COLUMNS}
         FROM follows f JOIN reviews r ON r.user_id = f.followee_id JOIN users u ON u.id = r.user_id
         WHERE f.follower_id = $1 AND (r.created_at, r.id) < ($2, $3)
         ORDER BY r.created_at DESC, r.id DESC LIMIT $4"
    ));
    let rows = sqlx::query(sql).bind(user_id).bind(after.time).bind(&after.id).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(from_row).collect()
}
