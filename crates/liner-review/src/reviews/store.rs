//! Review storage. One review per (user, album) is a unique key in the database, so 50
//! racing POSTs create exactly one row; listings (of an album or of a user, the same
//! code) page by keyset (the sort key of the last item), which stays fast and stable
//! however deep a client pages. Score inputs are integer tallies (count, Σ, Σx² in
//! half-stars) so the statistics in `score` start from exact numbers.

use liner_shared::db::{Db, is_unique_violation};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Cursor, Sort};
use super::score::Tally;
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
    pub spoiler: bool,
    /// Likes counted when read (0 for a row just written).
    pub likes: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns of a full review (`r` joined with its author `u`), its likes counted by
/// the prefix of the likes' primary key. Every listing selects these.
pub const REVIEW_COLUMNS: &str = "r.id, r.user_id, u.username, r.album_id, r.rating_half, r.review_text, r.spoiler, \
     r.created_at, r.updated_at, (SELECT COUNT(*) FROM review_likes l WHERE l.review_id = r.id) AS likes";

pub fn from_row(row: &AnyRow) -> Result<ReviewRow> {
    Ok(ReviewRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username").unwrap_or_default(),
        album_id: row.try_get("album_id")?,
        rating_half: row.try_get("rating_half")?,
        review_text: row.try_get("review_text")?,
        spoiler: row.try_get::<i64, _>("spoiler")? != 0,
        likes: row.try_get("likes").unwrap_or(0),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a review; a second one for the same (user, album) is a conflict naming the first.
pub async fn insert(db: &Db, row: &ReviewRow) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO reviews (id, user_id, album_id, rating_half, review_text, spoiler, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.album_id)
    .bind(row.rating_half)
    .bind(&row.review_text)
    .bind(i64::from(row.spoiler))
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
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.id = $1"
    ));
    let row = sqlx::query(sql).bind(id).fetch_optional(&db.pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// What a `PUT` changes; `None` keeps the field.
pub struct Change<'a> {
    pub rating_half: Option<i64>,
    pub text: Option<&'a str>,
    pub spoiler: Option<bool>,
}

/// Updates the fields given, only if `user_id` owns the review. `Ok(None)`: no such
/// review owned by that user (the caller tells 404 from 403).
pub async fn update(db: &Db, id: &str, user_id: &str, change: Change<'_>, now: i64) -> Result<Option<ReviewRow>> {
    let row = sqlx::query(
        "UPDATE reviews SET rating_half = COALESCE($1, rating_half), review_text = COALESCE($2, review_text),
                spoiler = COALESCE($6, spoiler), updated_at = $3
         WHERE id = $4 AND user_id = $5
         RETURNING id, user_id, album_id, rating_half, review_text, spoiler, created_at, updated_at",
    )
    .bind(change.rating_half)
    .bind(change.text)
    .bind(now)
    .bind(id)
    .bind(user_id)
    .bind(change.spoiler.map(i64::from))
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes the user's review; the album it was about, or `None` if no such review of theirs.
pub async fn delete(db: &Db, id: &str, user_id: &str) -> Result<Option<String>> {
    let album: Option<String> =
        sqlx::query_scalar("DELETE FROM reviews WHERE id = $1 AND user_id = $2 RETURNING album_id")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(album)
}

pub async fn exists(db: &Db, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE id = $1").bind(id).fetch_one(&db.pool).await?;
    Ok(n > 0)
}

/// Whether the user has reviewed the album: one lookup of the (user_id, album_id)
/// unique key.
pub async fn has_reviewed(db: &Db, user_id: &str, album_id: &str) -> Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM reviews WHERE user_id = $1 AND album_id = $2")
        .bind(user_id)
        .bind(album_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// Whose reviews a listing shows: one album's or one user's. Both page the same way.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Album(&'a str),
    User(&'a str),
}

impl Scope<'_> {
    fn column(&self) -> &'static str {
        match self {
            Scope::Album(_) => "r.album_id",
            Scope::User(_) => "r.user_id",
        }
    }

    fn value(&self) -> &str {
        match self {
            Scope::Album(id) | Scope::User(id) => id,
        }
    }
}

/// (half-star rating, count) pairs of the scope's reviews.
pub async fn rating_counts(db: &Db, scope: Scope<'_>) -> Result<Vec<(i64, i64)>> {
    // Safe: only a fixed column name is spliced in; values are bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT r.rating_half, COUNT(*) AS n FROM reviews r WHERE {} = $1 GROUP BY r.rating_half",
        scope.column()
    ));
    let rows = sqlx::query(sql).bind(scope.value()).fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok((r.try_get::<i64, _>("rating_half")?, r.try_get::<i64, _>("n")?))).collect()
}

/// The keyset condition (rows after the cursor) and the order of each sort. `$2` is the
/// cursor's rating, `$3` its time, `$4` its id; sorts by time use `$2 = $2` so every
/// placeholder is typed on PostgreSQL.
fn keyset(sort: Sort) -> (&'static str, &'static str) {
    match sort {
        Sort::Newest => ("(r.created_at, r.id) < ($3, $4) AND $2 = $2", "r.created_at DESC, r.id DESC"),
        Sort::Oldest => ("(r.created_at, r.id) > ($3, $4) AND $2 = $2", "r.created_at ASC, r.id ASC"),
        Sort::Highest => {
            ("(r.rating_half, r.created_at, r.id) < ($2, $3, $4)", "r.rating_half DESC, r.created_at DESC, r.id DESC")
        }
        Sort::Lowest => {
            ("(r.rating_half, r.created_at, r.id) > ($2, $3, $4)", "r.rating_half ASC, r.created_at ASC, r.id ASC")
        }
    }
}

/// One page of the scope's reviews after `cursor` in `sort` order.
pub async fn page(db: &Db, scope: Scope<'_>, sort: Sort, cursor: &Cursor, limit: i64) -> Result<Vec<ReviewRow>> {
    let (after_cursor, order) = keyset(sort);
    // Safe: only fixed column names and clauses are spliced in; values are bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {REVIEW_COLUMNS} FROM reviews r JOIN users u ON u.id = r.user_id
         WHERE {} = $1 AND {after_cursor} ORDER BY {order} LIMIT $5",
        scope.column()
    ));
    let rows = sqlx::query(sql)
        .bind(scope.value())
        .bind(cursor.rating_half)
        .bind(cursor.created_at)
        .bind(&cursor.id)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Count, sum and sum of squares of every rating on the site (a full scan: cached by
/// the caller, see `site_prior`).
pub async fn site_tally(db: &Db) -> Result<Tally> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TALLY_COLUMNS} FROM reviews"))).fetch_one(&db.pool).await?;
    tally_from_row(&row)
}

/// Per-album tallies of the reviews created at or after `since` (unix ms), read from
/// the covering `reviews_by_time` index. The redundant upper bound matters: SQLite's
/// planner takes a one-sided range for a quarter of the table and would rather scan a
/// whole index ordered by album; a two-sided one makes it pick the time index.
pub async fn album_tallies_since(db: &Db, since: i64) -> Result<Vec<(String, Tally)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT album_id, {TALLY_COLUMNS} FROM reviews WHERE created_at >= $1 AND created_at <= $2 GROUP BY album_id"
    ));
    let rows = sqlx::query(sql).bind(since).bind(i64::MAX).fetch_all(&db.pool).await?;
    rows.iter().map(|row| Ok((row.try_get("album_id")?, tally_from_row(row)?))).collect()
}

/// Integer sums on both backends (PostgreSQL's SUM(bigint) is numeric, which `Any`
/// cannot decode), zero over no rows.
const TALLY_COLUMNS: &str = "COUNT(*) AS n, CAST(COALESCE(SUM(rating_half), 0) AS BIGINT) AS s, \
     CAST(COALESCE(SUM(rating_half * rating_half), 0) AS BIGINT) AS ss";

fn tally_from_row(row: &AnyRow) -> Result<Tally> {
    Ok(Tally { count: row.try_get("n")?, sum_half: row.try_get("s")?, sum_sq_half: row.try_get("ss")? })
}
