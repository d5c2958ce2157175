//! Album types on the wire, the field rules (shared by `POST /albums` and the
//! import), and the listing cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{CatalogError, Result};
use crate::text;

pub const MAX_NAME_CHARS: usize = 300;
pub const MIN_YEAR: i64 = 1860;
pub const MAX_GENRES: usize = 10;
/// Longest `q` accepted; longer is a 400.
pub const MAX_QUERY_CHARS: usize = 200;
/// Deepest a ranked search pages (offset); past it, narrow the query.
pub const MAX_SEARCH_OFFSET: i64 = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateAlbum {
    /// 1–300 characters.
    #[schema(min_length = 1, max_length = 300)]
    pub title: String,
    /// 1–300 characters.
    #[schema(min_length = 1, max_length = 300)]
    pub artist: String,
    /// 1860 to next year.
    #[serde(default)]
    #[schema(minimum = 1860)]
    pub year: Option<i64>,
    /// Genre ids, each 1–64 of `[a-z0-9-]`; at most 10. Unknown ids create the genre.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub genres: Option<Vec<String>>,
    /// A MusicBrainz release-group id (UUID); the album's id is then `mb:<mbid>`.
    #[serde(default)]
    pub mbid: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Album {
    /// `mb:<mbid>` when the MusicBrainz id is known, else an opaque id.
    pub id: String,
    pub title: String,
    pub artist: String,
    pub year: Option<i64>,
    /// Genre ids, most relevant first.
    pub genres: Vec<String>,
    pub mbid: Option<String>,
    pub created_at: String,
    /// The user who added it; null for imported albums.
    pub created_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlbumPage {
    pub items: Vec<Album>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Genre {
    pub id: String,
    pub name: String,
    pub album_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words of the title or artist (accent- and case-insensitive; the last word
    /// matches as a prefix); up to 200 characters. Best matches first; without it,
    /// newest first.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only albums with this genre id.
    pub genre: Option<String>,
    /// Only albums of this year.
    pub year: Option<i64>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A genre an album is filed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenreRef {
    pub id: String,
    pub name: String,
}

/// An album that passed every field rule, ready to store.
#[derive(Debug, Clone)]
pub struct NewAlbum {
    pub title: String,
    pub artist: String,
    pub year: Option<i64>,
    pub genres: Vec<GenreRef>,
    pub mbid: Option<String>,
}

impl NewAlbum {
    /// The album's id: `mb:<mbid>` when known, else a new opaque one.
    pub fn id(&self) -> String {
        match &self.mbid {
            Some(mbid) => format!("mb:{mbid}"),
            None => liner_shared::new_id(),
        }
    }
}

/// Checks a create request.
pub fn validate_create(req: CreateAlbum) -> Result<NewAlbum> {
    let genres = req.genres.unwrap_or_default();
    if genres.len() > MAX_GENRES {
        return Err(CatalogError::invalid("genres", format!("at most {MAX_GENRES} genres")));
    }
    let mut refs: Vec<GenreRef> = Vec::with_capacity(genres.len());
    for id in genres {
        if !is_genre_id(&id) {
            return Err(CatalogError::invalid("genres", "each genre id must be 1 to 64 of a-z 0-9 -"));
        }
        if !refs.iter().any(|g| g.id == id) {
            refs.push(GenreRef { name: id.replace('-', " "), id });
        }
    }
    Ok(NewAlbum {
        title: validate_name("title", &req.title)?,
        artist: validate_name("artist", &req.artist)?,
        year: req.year.map(validate_year).transpose()?,
        genres: refs,
        mbid: req.mbid.as_deref().map(validate_mbid).transpose()?,
    })
}

/// Title or artist: trimmed, 1–300 characters, no control characters.
pub fn validate_name(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    let len = value.chars().count();
    if len == 0 || len > MAX_NAME_CHARS {
        return Err(CatalogError::invalid(field, "must be 1 to 300 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(CatalogError::invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

pub fn latest_year() -> i64 {
    i64::from(time::OffsetDateTime::now_utc().year()) + 1
}

pub fn validate_year(year: i64) -> Result<i64> {
    if (MIN_YEAR..=latest_year()).contains(&year) {
        Ok(year)
    } else {
        Err(CatalogError::invalid("year", format!("must be {MIN_YEAR} to {}", latest_year())))
    }
}

/// A MusicBrainz id: any UUID spelling, stored lower-case hyphenated.
pub fn validate_mbid(mbid: &str) -> Result<String> {
    uuid::Uuid::try_parse(mbid.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| CatalogError::invalid("mbid", "must be a MusicBrainz release-group id (a UUID) or null"))
}

/// 1–64 of `[a-z0-9-]`.
pub fn is_genre_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The position after the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Newest first: keyset on (created_at, id), stable however deep a client pages.
    Newest { created_at: i64, id: String },
    /// A ranked search: the number of results already shown.
    Ranked { offset: i64 },
}

impl Cursor {
    /// Opaque to clients; a cursor of one kind is refused by a listing of the other.
    pub fn encode(&self) -> String {
        let raw = match self {
            Cursor::Newest { created_at, id } => format!("n|{created_at}|{id}"),
            Cursor::Ranked { offset } => format!("r|{offset}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(raw: &str, ranked: bool) -> Result<Self> {
        let bad = || CatalogError::BadQuery("cursor is not valid for this listing".into());
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
        let mut parts = text.splitn(3, '|');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("n"), Some(at), Some(id)) if !ranked => {
                Ok(Cursor::Newest { created_at: at.parse().map_err(|_| bad())?, id: id.to_owned() })
            }
            (Some("r"), Some(offset), None) if ranked => {
                let offset: i64 = offset.parse().map_err(|_| bad())?;
                if (0..=MAX_SEARCH_OFFSET).contains(&offset) { Ok(Cursor::Ranked { offset }) } else { Err(bad()) }
            }
            _ => Err(bad()),
        }
    }
}

/// A listing request after its parameters were checked.
#[derive(Debug, Clone)]
pub struct Listing {
    pub search: Option<text::SearchQuery>,
    pub genre: Option<String>,
    pub year: Option<i64>,
    pub limit: i64,
    pub cursor: Option<Cursor>,
}

impl Listing {
    pub fn from_query(query: ListQuery) -> Result<Self> {
        let bad = |m: &str| CatalogError::BadQuery(m.to_owned());
        let limit = query.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(bad("limit must be 1 to 100"));
        }
        let q = query.q.unwrap_or_default();
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(bad("q must be at most 200 characters"));
        }
        let search = text::SearchQuery::parse(&q);
        if let Some(genre) = &query.genre
            && !is_genre_id(genre)
        {
            return Err(bad("genre must be a genre id: 1 to 64 of a-z 0-9 -"));
        }
        if let Some(year) = query.year
            && !(MIN_YEAR..=latest_year()).contains(&year)
        {
            return Err(bad(&format!("year must be {MIN_YEAR} to {}", latest_year())));
        }
        let cursor = query.cursor.as_deref().map(|raw| Cursor::decode(raw, search.is_some())).transpose()?;
        Ok(Self { search, genre: query.genre, year: query.year, limit, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keep_their_kind() {
        let newest = Cursor::Newest { created_at: 1_700_000_000_000, id: "mb:a|b".into() };
        assert_eq!(Cursor::decode(&newest.encode(), false).ok(), Some(newest.clone()));
        assert!(Cursor::decode(&newest.encode(), true).is_err());
        let ranked = Cursor::Ranked { offset: 40 };
        assert_eq!(Cursor::decode(&ranked.encode(), true).ok(), Some(ranked.clone()));
        assert!(Cursor::decode(&ranked.encode(), false).is_err());
        assert!(Cursor::decode(&Cursor::Ranked { offset: MAX_SEARCH_OFFSET + 1 }.encode(), true).is_err());
        assert!(Cursor::decode("%%%", false).is_err());
    }

    #[test]
    fn mbids_are_canonical() {
        assert_eq!(
            validate_mbid("B1392450-E666-3926-A536-22C65F834433").ok().as_deref(),
            Some("b1392450-e666-3926-a536-22c65f834433")
        );
        assert!(validate_mbid("not-a-uuid").is_err());
    }

    #[test]
    fn genre_ids() {
        assert!(is_genre_id("alternative-rock"));
        assert!(!is_genre_id("Alternative"));
        assert!(!is_genre_id(""));
        assert!(!is_genre_id(&"a".repeat(65)));
    }
}
