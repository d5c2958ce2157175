//! Keyset paging, newest first on (time, id), for the listings that have only that order:
//! the feed, a user's likes, followers and following, a user's lists. The cursor is the
//! review listings' `newest` cursor (opaque to clients), so one encoding serves them all;
//! a page is the rows strictly after the cursor, so rows written while a client pages
//! neither repeat nor push others out of the pages still to come.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::Result;
use crate::reviews::model::{Cursor, Sort, page_limit};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// Where a page starts: rows with (time, id) below these.
pub struct After {
    pub time: i64,
    pub id: String,
}

impl PageQuery {
    /// The page size and where it starts (400 for a bad limit or cursor).
    pub fn start(&self) -> Result<(i64, After)> {
        let limit = page_limit(self.limit)?;
        let cursor = match &self.cursor {
            Some(raw) => Cursor::decode(raw, Sort::Newest)?,
            None => Cursor::start(Sort::Newest),
        };
        Ok((limit, After { time: cursor.created_at, id: cursor.id }))
    }
}

/// Cuts the `limit + 1` rows read down to a page; the cursor after its last row when
/// more follow. `key` gives a row's (time, id).
pub fn finish<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, String)) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 <= limit {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(|row| {
        let (created_at, id) = key(row);
        Cursor { rating_half: 0, created_at, id }.encode(Sort::Newest)
    });
    (rows, next)
}
