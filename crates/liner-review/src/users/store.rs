//! User storage. Uniqueness lives in the database (`username_key`, `email_key`), so two
//! racing registrations cannot both win.

use liner_shared::db::{Db, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::User;
use crate::error::{Result, ReviewError};

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(db: &Db, user: &User) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, username_key, email, email_key, password_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&user.id)
    .bind(&user.username)
    .bind(user.username.to_lowercase())
    .bind(&user.email)
    .bind(user.email.to_lowercase())
    .bind(&user.password_hash)
    .bind(user.created_at)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            // Which one collided? Ask rather than parse backend-specific error text.
            let taken = if find_by_username(db, &user.username).await?.is_some() { "username" } else { "email" };
            Err(ReviewError::Taken(taken))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, username, email, password_hash, created_at FROM users WHERE username_key = $1")
        .bind(username.to_lowercase())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, username, email, password_hash, created_at FROM users WHERE email_key = $1")
        .bind(email.to_lowercase())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

pub async fn find_by_id(db: &Db, id: &str) -> Result<Option<User>> {
    let row = sqlx::query("SELECT id, username, email, password_hash, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// (number of reviews, mean rating) of one user.
pub async fn review_stats(db: &Db, user_id: &str) -> Result<(i64, Option<f64>)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(AVG(rating_half) AS DOUBLE PRECISION) AS avg_half FROM reviews WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(&db.pool)
    .await?;
    let count: i64 = row.try_get("n")?;
    let avg_half: Option<f64> = row.try_get("avg_half")?;
    Ok((count, avg_half.map(|a| a / 2.0)))
}

pub async fn exists(db: &Db, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1").bind(id).fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// The user's blind-first setting; None for an unknown user.
pub async fn blind_first(db: &Db, id: &str) -> Result<Option<bool>> {
    let on: Option<i64> =
        sqlx::query_scalar("SELECT blind_first FROM users WHERE id = $1").bind(id).fetch_optional(&db.pool).await?;
    Ok(on.map(|on| on != 0))
}

/// Sets the user's blind-first setting; false for an unknown user.
pub async fn set_blind_first(db: &Db, id: &str, on: bool) -> Result<bool> {
    let changed = sqlx::query("UPDATE users SET blind_first = $1 WHERE id = $2")
        .bind(i64::from(on))
        .bind(id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(changed > 0)
}
