//! One MusicBrainz release group (a line of the JSON dump) → an album, or why not.
//!
//! What is kept:
//! - primary type `Album` or `EP` (singles, broadcasts, "Other" and untyped release
//!   groups are not albums people review), unless a secondary type says it is not
//!   music (`Interview`, `Audiobook`, `Audio drama`, `Spokenword`); compilations,
//!   live albums, soundtracks, remixes and mixtapes are kept.
//! - the artist as credited: every `artist-credit[].name` followed by its `joinphrase`
//!   ("Simon & Garfunkel", "Jay-Z feat. Alicia Keys").
//! - the year of `first-release-date` ("1997-05-21", "1997-05" or "1997"; none when
//!   empty or outside 1860 to next year).
//! - genres from `genres[]`, MusicBrainz's curated genre list, most voted first, at
//!   most 5, only those with a positive vote count; the genre id is the slug of the
//!   name, the name is kept as given. Free-form `tags[]` ("seen live", "favourite")
//!   are ignored — MusicBrainz already lifts every tag that names a genre into
//!   `genres[]` — except in old dumps that have no `genres` field at all, where the
//!   tags stand in for it under the same rules.

use serde::Deserialize;

use crate::albums::model::{GenreRef, MIN_YEAR, NewAlbum, latest_year, validate_mbid, validate_name};
use crate::text;

pub const KEPT_PRIMARY_TYPES: &[&str] = &["Album", "EP"];
pub const DROPPED_SECONDARY_TYPES: &[&str] = &["Interview", "Audiobook", "Audio drama", "Spokenword"];
pub const MAX_IMPORTED_GENRES: usize = 5;

#[derive(Debug, Deserialize)]
struct ReleaseGroup {
    id: String,
    title: String,
    #[serde(rename = "first-release-date", default)]
    first_release_date: Option<String>,
    #[serde(rename = "primary-type", default)]
    primary_type: Option<String>,
    #[serde(rename = "secondary-types", default)]
    secondary_types: Option<Vec<String>>,
    #[serde(rename = "artist-credit", default)]
    artist_credit: Vec<Credit>,
    #[serde(default)]
    genres: Option<Vec<Tag>>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
}

#[derive(Debug, Deserialize)]
struct Credit {
    name: String,
    #[serde(default)]
    joinphrase: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
    #[serde(default)]
    count: i64,
}

/// What became of one line.
#[derive(Debug)]
pub enum Parsed {
    Album(Box<NewAlbum>),
    /// A release group of a type the catalogue does not keep.
    OtherType,
    /// Not a release group, or one with an invalid field; the reason.
    Bad(String),
}

pub fn parse_line(line: &[u8]) -> Parsed {
    let rg: ReleaseGroup = match serde_json::from_slice(line) {
        Ok(rg) => rg,
        Err(e) => return Parsed::Bad(format!("not a release group: {e}")),
    };
    let primary = rg.primary_type.as_deref().unwrap_or_default();
    let secondary = rg.secondary_types.as_deref().unwrap_or_default();
    if !KEPT_PRIMARY_TYPES.contains(&primary) || secondary.iter().any(|t| DROPPED_SECONDARY_TYPES.contains(&t.as_str()))
    {
        return Parsed::OtherType;
    }
    match to_album(rg) {
        Ok(album) => Parsed::Album(Box::new(album)),
        Err(e) => Parsed::Bad(e.to_string()),
    }
}

fn to_album(rg: ReleaseGroup) -> crate::error::Result<NewAlbum> {
    let artist: String =
        rg.artist_credit.iter().map(|c| format!("{}{}", c.name, c.joinphrase.as_deref().unwrap_or(""))).collect();
    let tags = match rg.genres {
        Some(genres) => genres,
        None => rg.tags.unwrap_or_default(),
    };
    Ok(NewAlbum {
        mbid: Some(validate_mbid(&rg.id)?),
        title: validate_name("title", &rg.title)?,
        artist: validate_name("artist", &artist)?,
        year: rg.first_release_date.as_deref().and_then(year_of),
        genres: top_genres(tags),
    })
}

/// "1997-05-21" / "1997-05" / "1997" → 1997; None when empty or implausible.
fn year_of(date: &str) -> Option<i64> {
    let digits = date.get(..4)?;
    let year: i64 = digits.parse().ok().filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))?;
    (MIN_YEAR..=latest_year()).contains(&year).then_some(year)
}

fn top_genres(mut tags: Vec<Tag>) -> Vec<GenreRef> {
    tags.retain(|t| t.count > 0);
    tags.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    let mut out: Vec<GenreRef> = Vec::new();
    for tag in tags {
        let name = tag.name.trim();
        let Some(id) = text::slug(name) else { continue };
        if name.chars().count() > 100 || out.iter().any(|g| g.id == id) {
            continue;
        }
        out.push(GenreRef { id, name: name.to_owned() });
        if out.len() == MAX_IMPORTED_GENRES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn album(line: &str) -> NewAlbum {
        match parse_line(line.as_bytes()) {
            Parsed::Album(a) => *a,
            other => panic!("expected an album, got {other:?}"),
        }
    }

    #[test]
    fn a_full_release_group() {
        let a = album(
            r#"{"id":"B1392450-E666-3926-A536-22C65F834433","title":" OK Computer ","first-release-date":"1997-05-21",
            "primary-type":"Album","secondary-types":[],"artist-credit":[{"name":"Simon","joinphrase":" & "},{"name":"Garfunkel","joinphrase":""}],
            "genres":[{"name":"art rock","count":3},{"name":"alternative rock","count":9},{"name":"Alternative  Rock","count":1},{"name":"bad","count":0}],
            "tags":[{"name":"seen live","count":20}],"extra":{"ignored":true}}"#,
        );
        assert_eq!(a.mbid.as_deref(), Some("b1392450-e666-3926-a536-22c65f834433"));
        assert_eq!(a.title, "OK Computer");
        assert_eq!(a.artist, "Simon & Garfunkel");
        assert_eq!(a.year, Some(1997));
        let ids: Vec<&str> = a.genres.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["alternative-rock", "art-rock"]);
        assert_eq!(a.genres[0].name, "alternative rock");
    }

    #[test]
    fn dates_types_and_tags() {
        let base = |date: &str, ty: &str, extra: &str| {
            format!(
                r#"{{"id":"b1392450-e666-3926-a536-22c65f834433","title":"T","first-release-date":"{date}","primary-type":{ty},"artist-credit":[{{"name":"A"}}]{extra}}}"#
            )
        };
        assert_eq!(album(&base("1997", "\"EP\"", "")).year, Some(1997));
        assert_eq!(album(&base("", "\"Album\"", "")).year, None);
        assert_eq!(album(&base("0001-01-01", "\"Album\"", "")).year, None);
        assert!(matches!(parse_line(base("", "\"Single\"", "").as_bytes()), Parsed::OtherType));
        assert!(matches!(parse_line(base("", "null", "").as_bytes()), Parsed::OtherType));
        let spoken = base("", "\"Album\"", r#","secondary-types":["Audiobook"]"#);
        assert!(matches!(parse_line(spoken.as_bytes()), Parsed::OtherType));
        // No genres field at all (old dumps): tags stand in.
        let tagged = album(&base("", "\"Album\"", r#","tags":[{"name":"jazz","count":2}]"#));
        assert_eq!(tagged.genres, [GenreRef { id: "jazz".into(), name: "jazz".into() }]);
        let both = album(&base("", "\"Album\"", r#","genres":[],"tags":[{"name":"jazz","count":2}]"#));
        assert!(both.genres.is_empty());
    }

    #[test]
    fn bad_lines_say_why() {
        for line in [
            "{not json",
            r#"{"title":"no id","primary-type":"Album"}"#,
            r#"{"id":"nope","title":"T","primary-type":"Album","artist-credit":[{"name":"A"}]}"#,
            r#"{"id":"b1392450-e666-3926-a536-22c65f834433","title":"","primary-type":"Album","artist-credit":[{"name":"A"}]}"#,
            r#"{"id":"b1392450-e666-3926-a536-22c65f834433","title":"T","primary-type":"Album","artist-credit":[]}"#,
        ] {
            assert!(matches!(parse_line(line.as_bytes()), Parsed::Bad(_)), "{line}");
        }
    }
}
