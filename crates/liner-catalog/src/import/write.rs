//! Writing one batch of imported albums: an upsert by id (`mb:<mbid>`), so importing
//! the same file twice updates rather than duplicates.
//!
//! A batch is a handful of multi-row statements in one transaction. Albums that would
//! collide with another album's title + artist + year are counted as duplicates and
//! left out up front; should a concurrent write still make the batch fail on a unique
//! key, the batch is retried one album per transaction, so one collision costs only
//! that album.

use std::collections::{HashMap, HashSet};

use liner_shared::db::{Db, is_unique_violation};
use sqlx::Row;

use crate::albums::model::{GenreRef, NewAlbum};
use crate::albums::store::{Bind, Sql, link_genres, upsert_genres};
use crate::error::{CatalogError, Result};
use crate::text;

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub updated: u64,
    pub duplicates: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.duplicates += o.duplicates;
    }
}

/// An album with its derived keys.
struct Prepared {
    id: String,
    key: String,
    album: NewAlbum,
}

/// Upserts `albums` (each with an mbid) at time `now`.
pub async fn write_batch(db: &Db, albums: Vec<NewAlbum>, now: i64) -> Result<Written> {
    let (prepared, mut written) = prepare(db, albums).await?;
    if prepared.is_empty() {
        return Ok(written);
    }
    let existing = existing_ids(db, &prepared).await?;
    match upsert(db, &prepared, now).await {
        Ok(()) => {
            let updated = prepared.iter().filter(|p| existing.contains(&p.id)).count() as u64;
            written.updated += updated;
            written.inserted += prepared.len() as u64 - updated;
            Ok(written)
        }
        Err(Failure::Unique) if prepared.len() == 1 => {
            written.duplicates += 1;
            Ok(written)
        }
        Err(Failure::Unique) => {
            for p in prepared {
                written += Box::pin(write_batch(db, vec![p.album], now)).await?;
            }
            Ok(written)
        }
        Err(Failure::Other(e)) => Err(e),
    }
}

/// Keeps the last line of each id, and of each title + artist + year the first album;
/// drops albums whose key another stored album holds. Counts what it dropped.
async fn prepare(db: &Db, albums: Vec<NewAlbum>) -> Result<(Vec<Prepared>, Written)> {
    let mut written = Written::default();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(albums.len());
    for album in albums {
        let id = album.id();
        let key = text::dedupe_key(&album.title, &album.artist, album.year);
        match by_id.get(&id) {
            Some(&i) => {
                prepared[i] = Prepared { id, key, album };
                written.duplicates += 1;
            }
            None => {
                by_id.insert(id.clone(), prepared.len());
                prepared.push(Prepared { id, key, album });
            }
        }
    }
    let mut seen_keys: HashSet<String> = HashSet::new();
    let before = prepared.len();
    prepared.retain(|p| seen_keys.insert(p.key.clone()));
    let taken = keys_held_by_others(db, &prepared).await?;
    prepared.retain(|p| !taken.contains(&p.key));
    written.duplicates += (before - prepared.len()) as u64;
    Ok((prepared, written))
}

/// Keys of `prepared` that a stored album with another id holds.
async fn keys_held_by_others(db: &Db, prepared: &[Prepared]) -> Result<HashSet<String>> {
    if prepared.is_empty() {
        return Ok(HashSet::new());
    }
    let mut sql = Sql::new("SELECT id, dedupe_key FROM albums WHERE dedupe_key IN (");
    let marks: Vec<String> = prepared.iter().map(|p| sql.bind(Bind::Text(p.key.clone()))).collect();
    sql.push(&marks.join(", ")).push(")");
    let owner: HashMap<&str, &str> = prepared.iter().map(|p| (p.key.as_str(), p.id.as_str())).collect();
    let mut taken = HashSet::new();
    for row in sql.query().fetch_all(&db.pool).await? {
        let (id, key): (String, String) = (row.try_get("id")?, row.try_get("dedupe_key")?);
        if owner.get(key.as_str()).is_some_and(|mine| *mine != id) {
            taken.insert(key);
        }
    }
    Ok(taken)
}

async fn existing_ids(db: &Db, prepared: &[Prepared]) -> Result<HashSet<String>> {
    let mut sql = Sql::new("SELECT id FROM albums WHERE id IN (");
    let marks: Vec<String> = prepared.iter().map(|p| sql.bind(Bind::Text(p.id.clone()))).collect();
    sql.push(&marks.join(", ")).push(")");
    let rows = sql.query().fetch_all(&db.pool).await?;
    rows.iter().map(|r| Ok(r.try_get::<String, _>("id")?)).collect()
}

enum Failure {
    Unique,
    Other(CatalogError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) { Failure::Unique } else { Failure::Other(e.into()) }
    }
}

impl From<CatalogError> for Failure {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Internal(cause) if cause.downcast_ref::<sqlx::Error>().is_some_and(is_unique_violation) => {
                Failure::Unique
            }
            other => Failure::Other(other),
        }
    }
}

/// The albums and their genre links, replaced in one transaction.
async fn upsert(db: &Db, prepared: &[Prepared], now: i64) -> Result<(), Failure> {
    let mut tx = db.pool.begin().await?;
    let mut sql = Sql::new(
        "INSERT INTO albums (id, title, artist, year, mbid, created_at, created_by, updated_at, dedupe_key, title_words, search_doc) VALUES ",
    );
    let at = sql.bind(Bind::Int(now));
    let rows: Vec<String> = prepared
        .iter()
        .map(|p| {
            let a = &p.album;
            let vals = [
                sql.bind(Bind::Text(p.id.clone())),
                sql.bind(Bind::Text(a.title.clone())),
                sql.bind(Bind::Text(a.artist.clone())),
                sql.bind(Bind::OptInt(a.year)),
                sql.bind(Bind::OptText(a.mbid.clone())),
                sql.bind(Bind::Text(p.key.clone())),
                sql.bind(Bind::Text(text::title_words(&a.title))),
                sql.bind(Bind::Text(text::search_doc(&a.title, &a.artist))),
            ];
            let [id, title, artist, year, mbid, key, words, doc] = vals;
            format!("({id}, {title}, {artist}, {year}, {mbid}, {at}, NULL, {at}, {key}, {words}, {doc})")
        })
        .collect();
    sql.push(&rows.join(", ")).push(
        " ON CONFLICT (id) DO UPDATE SET title = excluded.title, artist = excluded.artist, year = excluded.year,
          mbid = excluded.mbid, updated_at = excluded.updated_at, dedupe_key = excluded.dedupe_key,
          title_words = excluded.title_words, search_doc = excluded.search_doc",
    );
    sql.query().execute(&mut *tx).await?;
    let mut unlink = Sql::new("DELETE FROM album_genres WHERE album_id IN (");
    let marks: Vec<String> = prepared.iter().map(|p| unlink.bind(Bind::Text(p.id.clone()))).collect();
    unlink.push(&marks.join(", ")).push(")");
    unlink.query().execute(&mut *tx).await?;
    let genres: Vec<GenreRef> = prepared.iter().flat_map(|p| p.album.genres.iter().cloned()).collect();
    upsert_genres(&mut tx, &genres).await?;
    let links: Vec<(String, Vec<GenreRef>)> = prepared.iter().map(|p| (p.id.clone(), p.album.genres.clone())).collect();
    link_genres(&mut tx, &links).await?;
    tx.commit().await?;
    Ok(())
}
