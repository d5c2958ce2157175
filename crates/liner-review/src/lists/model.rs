//! List types on the wire and their bounds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Result, ReviewError};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
pub const MAX_NOTE_CHARS: usize = 1_000;
/// Albums per list.
pub const MAX_ITEMS: i64 = 250;
/// Lists per user.
pub const MAX_LISTS_PER_USER: i64 = 100;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateList {
    /// 1–100 characters, not blank.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Up to 2,000 characters; may be omitted.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateList {
    /// 1–100 characters, not blank.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Up to 2,000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddItem {
    /// 1–64 characters of `[A-Za-z0-9_:.-]`, as in reviews.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_:.-]+$")]
    pub album_id: String,
    /// Up to 1,000 characters; may be omitted.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditItem {
    /// Up to 1,000 characters; empty clears it.
    #[schema(max_length = 1000)]
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reorder {
    /// Every album of the list, once each, in the new order.
    #[schema(max_items = 250)]
    pub album_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListItem {
    pub album_id: String,
    /// 1 for the first album.
    pub position: i64,
    pub note: String,
    pub added_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSummary {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub description: String,
    pub item_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List {
    #[serde(flatten)]
    pub summary: ListSummary,
    /// In the list's order.
    pub items: Vec<ListItem>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserLists {
    pub user_id: String,
    /// The newest list first.
    pub items: Vec<ListSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if name.trim().is_empty() || n > MAX_NAME_CHARS {
        return Err(ReviewError::invalid("name", "must be 1 to 100 characters, not blank"));
    }
    Ok(())
}

pub fn validate_description(text: &str) -> Result<()> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ReviewError::invalid("description", "must be at most 2000 characters"));
    }
    Ok(())
}

pub fn validate_note(text: &str) -> Result<()> {
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ReviewError::invalid("note", "must be at most 1000 characters"));
    }
    Ok(())
}

/// A new order must name every album of the list once: the same set, no repeats.
pub fn validate_order(current: &[String], order: &[String]) -> Result<()> {
    let mut given: Vec<&String> = order.iter().collect();
    let mut have: Vec<&String> = current.iter().collect();
    given.sort();
    have.sort();
    if given != have {
        return Err(ReviewError::invalid("albumIds", "must name every album of the list exactly once"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_is_a_permutation_of_the_items() {
        let have = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let ok = ["c".to_owned(), "a".to_owned(), "b".to_owned()];
        assert!(validate_order(&have, &ok).is_ok());
        for bad in [&["a", "b"][..], &["a", "b", "b"], &["a", "b", "c", "d"], &["a", "b", "x"]] {
            let bad: Vec<String> = bad.iter().map(|s| (*s).to_owned()).collect();
            assert!(validate_order(&have, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_are_bounded_and_not_blank() {
        assert!(validate_name("Desert island").is_ok());
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"é".repeat(100)).is_ok());
        assert!(validate_name(&"é".repeat(101)).is_err());
    }
}
