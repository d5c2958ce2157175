//! Album storage: reads, listings, search and single inserts. The SQL is shared by both
//! backends except the full-text match, the one place they differ (see `search_sql`).
//!
//! Duplicates are unique keys in the database (the id, which is `mb:<mbid>` when the
//! mbid is known, and `dedupe_key`), so racing creates of one album store exactly one.

use std::collections::HashMap;

use liner_shared::config::Backend;
use liner_shared::db::{Db, is_unique_violation};
use liner_shared::rfc3339;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row};

use super::model::{Album, Cursor, GenreRef, Listing, MAX_SEARCH_OFFSET, NewAlbum};
use crate::error::{CatalogError, Result};
use crate::text;

const COLUMNS: &str = "a.id, a.title, a.artist, a.year, a.mbid, a.created_at, a.created_by";

/// An album row before its genres are attached.
fn from_row(row: &AnyRow) -> Result<Album> {
    Ok(Album {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        artist: row.try_get("artist")?,
        year: row.try_get("year")?,
        genres: Vec::new(),
        mbid: row.try_get("mbid")?,
        created_at: rfc3339(row.try_get("created_at")?),
        created_by: row.try_get("created_by")?,
    })
}

/// A value bound to a numbered placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// SQL assembled from fixed fragments, with every value bound to a `$N` placeholder
/// (never spliced into the text).
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), binds: Vec::new() }
    }

    /// Binds `value`; returns its placeholder.
    pub fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    pub fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.clone()));
        for b in &self.binds {
            q = match b {
                Bind::Text(v) => q.bind(v.as_str()),
                Bind::OptText(v) => q.bind(v.as_deref()),
                Bind::Int(v) => q.bind(*v),
                Bind::OptInt(v) => q.bind(*v),
            };
        }
        q
    }
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Album>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM albums a WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(mut album) = row.as_ref().map(from_row).transpose()? else { return Ok(None) };
    album.genres = genres_of(db, std::slice::from_ref(&album.id)).await?.remove(&album.id).unwrap_or_default();
    Ok(Some(album))
}

/// Genre ids per album, in each album's order.
async fn genres_of(db: &Db, album_ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    if album_ids.is_empty() {
        return Ok(map);
    }
    let mut sql = Sql::new("SELECT album_id, genre_id FROM album_genres WHERE album_id IN (");
    let marks: Vec<String> = album_ids.iter().map(|id| sql.bind(Bind::Text(id.clone()))).collect();
    sql.push(&marks.join(", ")).push(") ORDER BY album_id, position");
    for row in sql.query().fetch_all(&db.pool).await? {
        map.entry(row.try_get("album_id")?).or_default().push(row.try_get("genre_id")?);
    }
    Ok(map)
}

/// One page of a listing, and the cursor of the next one.
pub async fn page(db: &Db, listing: &Listing) -> Result<(Vec<Album>, Option<Cursor>)> {
    let mut sql = match &listing.search {
        Some(search) => search_sql(db.backend, search),
        None => Sql::new(&format!("SELECT {COLUMNS} FROM albums a WHERE 1 = 1")),
    };
    if let Some(genre) = &listing.genre {
        let p = sql.bind(Bind::Text(genre.clone()));
        sql.push(&format!(" AND EXISTS (SELECT 1 FROM album_genres g WHERE g.album_id = a.id AND g.genre_id = {p})"));
    }
    if let Some(year) = listing.year {
        let p = sql.bind(Bind::Int(year));
        sql.push(&format!(" AND a.year = {p}"));
    }
    let offset = match &listing.cursor {
        Some(Cursor::Ranked { offset }) => *offset,
        _ => 0,
    };
    if let Some(search) = &listing.search {
        search_order(db.backend, &mut sql, search);
    } else {
        if let Some(Cursor::Newest { created_at, id }) = &listing.cursor {
            let (at, id) = (sql.bind(Bind::Int(*created_at)), sql.bind(Bind::Text(id.clone())));
            sql.push(&format!(" AND (a.created_at, a.id) < ({at}, {id})"));
        }
        sql.push(" ORDER BY a.created_at DESC, a.id DESC");
    }
    // One extra row tells whether another page follows.
    let (lim, off) = (sql.bind(Bind::Int(listing.limit + 1)), sql.bind(Bind::Int(offset)));
    sql.push(&format!(" LIMIT {lim} OFFSET {off}"));
    let rows = sql.query().fetch_all(&db.pool).await?;
    let mut albums = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let more = albums.len() as i64 > listing.limit;
    albums.truncate(listing.limit as usize);
    let ids: Vec<String> = albums.iter().map(|a| a.id.clone()).collect();
    let mut genres = genres_of(db, &ids).await?;
    for album in &mut albums {
        album.genres = genres.remove(&album.id).unwrap_or_default();
    }
    let next = match (more, albums.last(), &listing.search) {
        (false, _, _) | (_, None, _) => None,
        (true, Some(_), Some(_)) => {
            let next = offset + listing.limit;
            (next <= MAX_SEARCH_OFFSET).then_some(Cursor::Ranked { offset: next })
        }
        (true, Some(last), None) => {
            let created_at = rows[albums.len() - 1].try_get::<i64, _>("created_at")?;
            Some(Cursor::Newest { created_at, id: last.id.clone() })
        }
    };
    Ok((albums, next))
}

/// The matching albums of a search, before filters. Only this differs per backend:
/// an FTS5 MATCH on SQLite, a tsquery on PostgreSQL, each built from the folded words.
fn search_sql(backend: Backend, search: &text::SearchQuery) -> Sql {
    let mut sql = Sql::default();
    match backend {
        Backend::Sqlite => {
            let p = sql.bind(Bind::Text(search.fts5()));
            sql.push(&format!(
                "SELECT {COLUMNS} FROM album_search JOIN albums a ON a.seq = album_search.rowid WHERE album_search MATCH {p}"
            ));
        }
        Backend::Postgres => {
            let p = sql.bind(Bind::Text(search.tsquery()));
            sql.push(&format!("SELECT {COLUMNS} FROM albums a WHERE a.search_vec @@ CAST({p} AS tsquery)"));
        }
    }
    sql
}

/// Best matches first: a title that is exactly the query, then a title that starts
/// with it, then the engine's relevance (bm25 / ts_rank, both favouring short
/// documents), then newest, then id — a total order, so offset pages never overlap.
fn search_order(backend: Backend, sql: &mut Sql, search: &text::SearchQuery) {
    let exact = sql.bind(Bind::Text(search.phrase()));
    // Words are alphanumeric: they hold no LIKE wildcard.
    let prefix = sql.bind(Bind::Text(format!("{}%", search.phrase())));
    let relevance = match backend {
        Backend::Sqlite => "bm25(album_search)".to_owned(),
        Backend::Postgres => {
            let p = sql.bind(Bind::Text(search.tsquery()));
            format!("ts_rank(a.search_vec, CAST({p} AS tsquery), 2) DESC")
        }
    };
    sql.push(&format!(
        " ORDER BY CASE WHEN a.title_words = {exact} THEN 0 WHEN a.title_words LIKE {prefix} THEN 1 ELSE 2 END, \
         {relevance}, a.created_at DESC, a.id"
    ));
}

/// Adds an album and its genres in one transaction; a duplicate is a 409 naming the
/// album that exists.
pub async fn insert(db: &Db, album: &NewAlbum, created_by: &str, now: i64) -> Result<Album> {
    let id = album.id();
    let key = text::dedupe_key(&album.title, &album.artist, album.year);
    let mut tx = db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO albums (id, title, artist, year, mbid, created_at, created_by, updated_at, dedupe_key, title_words, search_doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&album.title)
    .bind(&album.artist)
    .bind(album.year)
    .bind(album.mbid.as_deref())
    .bind(now)
    .bind(created_by)
    .bind(&key)
    .bind(text::title_words(&album.title))
    .bind(text::search_doc(&album.title, &album.artist))
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            // Give the write lock back before looking the other album up.
            tx.rollback().await?;
            return Err(CatalogError::Duplicate { existing_id: existing_id(db, &id, &key).await? });
        }
        Err(e) => return Err(e.into()),
    }
    upsert_genres(&mut tx, &album.genres).await?;
    link_genres(&mut tx, &[(id.clone(), album.genres.clone())]).await?;
    tx.commit().await?;
    Ok(Album {
        id,
        title: album.title.clone(),
        artist: album.artist.clone(),
        year: album.year,
        genres: album.genres.iter().map(|g| g.id.clone()).collect(),
        mbid: album.mbid.clone(),
        created_at: rfc3339(now),
        created_by: Some(created_by.to_owned()),
    })
}

/// The album a rejected insert collided with: the same id (mbid) first, else the same key.
async fn existing_id(db: &Db, id: &str, key: &str) -> Result<String> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM albums WHERE id = $1 OR dedupe_key = $2 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1",
    )
    .bind(id)
    .bind(key)
    .fetch_optional(&db.pool)
    .await?;
    found.ok_or_else(|| CatalogError::Internal(anyhow::anyhow!("unique violation without a matching album")))
}

/// Makes sure every genre exists (a name already stored is kept). Sorted by id, so
/// concurrent writers lock in one order.
pub async fn upsert_genres(conn: &mut AnyConnection, genres: &[GenreRef]) -> Result<()> {
    let mut sorted: Vec<&GenreRef> = genres.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted.dedup_by(|a, b| a.id == b.id);
    for chunk in sorted.chunks(500) {
        let mut sql = Sql::new("INSERT INTO genres (id, name) VALUES ");
        let rows: Vec<String> = chunk
            .iter()
            .map(|g| {
                let (id, name) = (sql.bind(Bind::Text(g.id.clone())), sql.bind(Bind::Text(g.name.clone())));
                format!("({id}, {name})")
            })
            .collect();
        sql.push(&rows.join(", ")).push(" ON CONFLICT (id) DO NOTHING");
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Files each album under its genres (positions in the given order). The caller
/// removes old links first when it replaces them.
pub async fn link_genres(conn: &mut AnyConnection, albums: &[(String, Vec<GenreRef>)]) -> Result<()> {
    let links: Vec<(&String, &GenreRef, i64)> =
        albums.iter().flat_map(|(id, genres)| genres.iter().enumerate().map(move |(i, g)| (id, g, i as i64))).collect();
    for chunk in links.chunks(1000) {
        let mut sql = Sql::new("INSERT INTO album_genres (album_id, genre_id, position) VALUES ");
        let rows: Vec<String> = chunk
            .iter()
            .map(|(album, genre, pos)| {
                let a = sql.bind(Bind::Text((*album).clone()));
                let g = sql.bind(Bind::Text(genre.id.clone()));
                let p = sql.bind(Bind::Int(*pos));
                format!("({a}, {g}, {p})")
            })
            .collect();
        sql.push(&rows.join(", ")).push(" ON CONFLICT (album_id, genre_id) DO NOTHING");
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Every genre with the number of albums filed under it, most used first.
pub async fn genres(db: &Db) -> Result<Vec<super::model::Genre>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, COUNT(ag.album_id) AS album_count
         FROM genres g LEFT JOIN album_genres ag ON ag.genre_id = g.id
         GROUP BY g.id, g.name ORDER BY album_count DESC, g.id",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(super::model::Genre {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                album_count: r.try_get("album_count")?,
            })
        })
        .collect()
}

/// How many albums the catalogue holds.
pub async fn count(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM albums").fetch_one(&db.pool).await?)
}
