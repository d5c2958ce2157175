//! List storage. Each change of a list is one transaction that starts by touching the
//! list's row *as its owner* (`UPDATE lists SET updated_at … WHERE id AND user_id`):
//! that is the owner check, and on PostgreSQL a row lock that queues concurrent changes
//! of the list, so counting the items and taking the next position cannot race. A new
//! list touches its owner's user row the same way before counting their lists.

use liner_shared::db::{Db, is_unique_violation};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::model::{MAX_ITEMS, MAX_LISTS_PER_USER, validate_order};
use crate::error::{Result, ReviewError};
use crate::paging::After;

/// A list as stored, with its owner's name and its number of items.
pub struct ListRow {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub description: String,
    pub item_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An item as stored, in list order.
pub struct ItemRow {
    pub album_id: String,
    pub note: String,
    pub added_at: i64,
}

const LIST_COLUMNS: &str = "l.id, l.user_id, u.username, l.name, l.description, l.created_at, l.updated_at, \
     (SELECT COUNT(*) FROM list_items i WHERE i.list_id = l.id) AS item_count";

fn list_from_row(row: &AnyRow) -> Result<ListRow> {
    Ok(ListRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        item_count: row.try_get("item_count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Creates a list unless its owner has [`MAX_LISTS_PER_USER`] already.
pub async fn create(db: &Db, id: &str, user_id: &str, name: &str, description: &str, now: i64) -> Result<()> {
    let mut tx = db.pool.begin().await?;
    let touched = sqlx::query("UPDATE users SET created_at = created_at WHERE id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if touched == 0 {
        return Err(ReviewError::Forbidden("the token's user does not exist"));
    }
    let lists: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM lists WHERE user_id = $1").bind(user_id).fetch_one(&mut *tx).await?;
    if lists >= MAX_LISTS_PER_USER {
        return Err(ReviewError::LimitReached("you have 100 lists, the most one may have"));
    }
    sqlx::query(
        "INSERT INTO lists (id, user_id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id)
    .bind(user_id)
    .bind(name)
    .bind(description)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Starts a change of the list as `user_id`: 404 if there is no such list, 403 if it
/// is someone else's.
async fn begin_change<'a>(db: &'a Db, list_id: &str, user_id: &str, now: i64) -> Result<Transaction<'a, Any>> {
    let mut tx = db.pool.begin().await?;
    let touched = sqlx::query("UPDATE lists SET updated_at = $1 WHERE id = $2 AND user_id = $3")
        .bind(now)
        .bind(list_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if touched == 0 {
        return Err(missing_or_foreign(&mut tx, list_id).await);
    }
    Ok(tx)
}

async fn missing_or_foreign(tx: &mut Transaction<'_, Any>, list_id: &str) -> ReviewError {
    let found: Result<i64, _> =
        sqlx::query_scalar("SELECT COUNT(*) FROM lists WHERE id = $1").bind(list_id).fetch_one(&mut **tx).await;
    match found {
        Ok(0) => ReviewError::NotFound("list"),
        Ok(_) => ReviewError::Forbidden("only the owner may change this list"),
        Err(e) => e.into(),
    }
}

/// Renames and/or redescribes the list.
pub async fn update(
    db: &Db,
    list_id: &str,
    user_id: &str,
    name: Option<&str>,
    description: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    sqlx::query("UPDATE lists SET name = COALESCE($1, name), description = COALESCE($2, description) WHERE id = $3")
        .bind(name)
        .bind(description)
        .bind(list_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes the list and its items.
pub async fn delete(db: &Db, list_id: &str, user_id: &str, now: i64) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    sqlx::query("DELETE FROM lists WHERE id = $1").bind(list_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Appends an album with its note; 409 if it is in the list or the list is full.
pub async fn add_item(db: &Db, list_id: &str, user_id: &str, album_id: &str, note: &str, now: i64) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    let items: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM list_items WHERE list_id = $1")
        .bind(list_id)
        .fetch_one(&mut *tx)
        .await?;
    if items >= MAX_ITEMS {
        return Err(ReviewError::LimitReached("the list has 250 albums, the most a list may have"));
    }
    let inserted = sqlx::query(
        "INSERT INTO list_items (list_id, album_id, position, note, added_at)
         SELECT $1, $2, COALESCE(MAX(position), 0) + 1, $3, $4 FROM list_items WHERE list_id = $1",
    )
    .bind(list_id)
    .bind(album_id)
    .bind(note)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => Ok(tx.commit().await?),
        Err(e) if is_unique_violation(&e) => Err(ReviewError::AlreadyInList),
        Err(e) => Err(e.into()),
    }
}

/// Removes an album from the list; 404 if it is not in it.
pub async fn remove_item(db: &Db, list_id: &str, user_id: &str, album_id: &str, now: i64) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    let gone = sqlx::query("DELETE FROM list_items WHERE list_id = $1 AND album_id = $2")
        .bind(list_id)
        .bind(album_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ReviewError::NotFound("list item"));
    }
    tx.commit().await?;
    Ok(())
}

/// Replaces an album's note; 404 if the album is not in the list.
pub async fn set_note(db: &Db, list_id: &str, user_id: &str, album_id: &str, note: &str, now: i64) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    let changed = sqlx::query("UPDATE list_items SET note = $1 WHERE list_id = $2 AND album_id = $3")
        .bind(note)
        .bind(list_id)
        .bind(album_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Err(ReviewError::NotFound("list item"));
    }
    tx.commit().await?;
    Ok(())
}

/// Puts the items in the given order (every album of the list once, else 422).
pub async fn reorder(db: &Db, list_id: &str, user_id: &str, order: &[String], now: i64) -> Result<()> {
    let mut tx = begin_change(db, list_id, user_id, now).await?;
    let current: Vec<String> = sqlx::query_scalar("SELECT album_id FROM list_items WHERE list_id = $1")
        .bind(list_id)
        .fetch_all(&mut *tx)
        .await?;
    validate_order(&current, order)?;
    for (position, album_id) in (1_i64..).zip(order) {
        sqlx::query("UPDATE list_items SET position = $1 WHERE list_id = $2 AND album_id = $3")
            .bind(position)
            .bind(list_id)
            .bind(album_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The list and its items in order; None for an unknown list.
pub async fn get(db: &Db, list_id: &str) -> Result<Option<(ListRow, Vec<ItemRow>)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {LIST_COLUMNS} FROM lists l JOIN users u ON u.id = l.user_id WHERE l.id = $1"
    ));
    let Some(row) = sqlx::query(sql).bind(list_id).fetch_optional(&db.pool).await? else { return Ok(None) };
    let items = sqlx::query(
        "SELECT album_id, note, added_at FROM list_items WHERE list_id = $1 ORDER BY position ASC, album_id ASC",
    )
    .bind(list_id)
    .fetch_all(&db.pool)
    .await?;
    let items = items
        .iter()
        .map(|r| {
            Ok(ItemRow { album_id: r.try_get("album_id")?, note: r.try_get("note")?, added_at: r.try_get("added_at")? })
        })
        .collect::<Result<_>>()?;
    Ok(Some((list_from_row(&row)?, items)))
}

/// One page of a user's lists, the newest first.
pub async fn page_of_user(db: &Db, user_id: &str, after: &After, limit: i64) -> Result<Vec<ListRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {LIST_COLUMNS} FROM lists l JOIN users u ON u.id = l.user_id
         WHERE l.user_id = $1 AND (l.created_at, l.id) < ($2, $3)
         ORDER BY l.created_at DESC, l.id DESC LIMIT $4"
    ));
    let rows = sqlx::query(sql).bind(user_id).bind(after.time).bind(&after.id).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(list_from_row).collect()
}
