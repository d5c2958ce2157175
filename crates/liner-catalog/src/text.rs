//! Text folding: the one place that decides what counts as "the same word".
//!
//! Search must behave the same on SQLite (FTS5) and PostgreSQL (tsvector), and the two
//! engines disagree on case folding, accents and word boundaries. So neither engine
//! is asked: Rust folds the title and artist into plain words (lower case, accents
//! stripped, split on anything that is not a letter or digit) and stores them as the
//! album's `search_doc`; a query goes through the very same [`words`], and each
//! backend only matches words it was handed verbatim. "Björk", "BJORK" and "bjork"
//! are then one word everywhere, and no user text reaches a query syntax unquoted.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lower case, compatibility-decomposed, combining marks (accents) removed, and the
/// letters that do not decompose (ø, æ, ß, ł, …) spelled in ASCII.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().nfkd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'ø' => out.push('o'),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ß' => out.push_str("ss"),
            'đ' | 'ð' => out.push('d'),
            'ł' => out.push('l'),
            'þ' => out.push_str("th"),
            'ı' => out.push('i'),
            _ => out.push(c),
        }
    }
    out
}

/// Longest word kept (longer ones are cut): PostgreSQL refuses lexemes over 2 KiB,
/// and no one searches for a word that long.
pub const MAX_WORD_CHARS: usize = 64;

/// The folded words of `text`. Apostrophes and dots join rather than split ("Don't" →
/// `dont`, "R.E.M." → `rem`), every other non-alphanumeric character separates.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .chars()
        .filter(|c| !matches!(c, '\'' | '’' | '‘' | '.'))
        .collect::<String>()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// What the full-text index holds for an album: the words of its title and artist.
pub fn search_doc(title: &str, artist: &str) -> String {
    let mut all = words(title);
    all.extend(words(artist));
    all.join(" ")
}

/// The title's words, for ranking a query that is exactly (or starts) the title first.
pub fn title_words(title: &str) -> String {
    words(title).join(" ")
}

/// What makes two albums the same one: title, artist and year, compared
/// case-insensitively (whitespace runs count as one space).
pub fn dedupe_key(title: &str, artist: &str, year: Option<i64>) -> String {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let year = year.map_or(String::new(), |y| y.to_string());
    format!("{}\u{1f}{}\u{1f}{year}", norm(title), norm(artist))
}

/// A genre id from its name: folded, `&` read as "and", every other run of
/// non-`[a-z0-9]` characters one `-` ("Alternative Rock" → `alternative-rock`,
/// "Drum & Bass" → `drum-and-bass`). None when nothing is left or it is too long.
pub fn slug(name: &str) -> Option<String> {
    let folded = fold(name).replace('&', " and ");
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    (!out.is_empty() && out.len() <= 64).then_some(out)
}

/// A parsed search: the folded words; the last one matches as a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub words: Vec<String>,
}

impl SearchQuery {
    /// None when `q` holds no word at all (then the listing is newest first).
    pub fn parse(q: &str) -> Option<Self> {
        let words = words(q);
        (!words.is_empty()).then_some(Self { words })
    }

    /// FTS5 MATCH text: every word a quoted phrase (words are alphanumeric, so they
    /// hold no quote), the last one a prefix: `"ok" "comp"*`.
    pub fn fts5(&self) -> String {
        let quoted: Vec<String> = self.words.iter().map(|w| format!("\"{w}\"")).collect();
        format!("{}*", quoted.join(" "))
    }

    /// tsquery text: every word a quoted lexeme, the last one a prefix: `'ok' & 'comp':*`.
    pub fn tsquery(&self) -> String {
        let quoted: Vec<String> = self.words.iter().map(|w| format!("'{w}'")).collect();
        format!("{}:*", quoted.join(" & "))
    }

    /// The words as one string: an album whose title words equal it ranks first.
    pub fn phrase(&self) -> String {
        self.words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(words("Björk"), ["bjork"]);
        assert_eq!(words("BEYONCÉ"), ["beyonce"]);
        assert_eq!(words("Sigur Rós — Ágætis byrjun"), ["sigur", "ros", "agaetis", "byrjun"]);
        assert_eq!(words("Mötley Crüe"), ["motley", "crue"]);
        assert_eq!(words("Røyksopp"), ["royksopp"]);
        assert_eq!(words("ＯＫ　Ｃｏｍｐｕｔｅｒ"), ["ok", "computer"]);
    }

    #[test]
    fn punctuation_splits_or_joins() {
        assert_eq!(words("AC/DC: Back in Black"), ["ac", "dc", "back", "in", "black"]);
        assert_eq!(words("Don't Stop"), ["dont", "stop"]);
        assert_eq!(words("R.E.M."), ["rem"]);
        assert!(words("!!! ---").is_empty());
        assert_eq!(words(&"ǆ".repeat(300)), ["dz".repeat(MAX_WORD_CHARS / 2)]);
    }

    #[test]
    fn queries_quote_every_word() {
        let q = SearchQuery::parse("OK  comp\"uter*").unwrap();
        assert_eq!(q.words, ["ok", "comp", "uter"]);
        assert_eq!(q.fts5(), r#""ok" "comp" "uter"*"#);
        assert_eq!(q.tsquery(), "'ok' & 'comp' & 'uter':*");
        assert_eq!(SearchQuery::parse(" -- "), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("alternative rock").as_deref(), Some("alternative-rock"));
        assert_eq!(slug("Drum & Bass").as_deref(), Some("drum-and-bass"));
        assert_eq!(slug("  Hip-Hop ").as_deref(), Some("hip-hop"));
        assert_eq!(slug("Música Popular Brasileira").as_deref(), Some("musica-popular-brasileira"));
        assert_eq!(slug("日本"), None);
        assert_eq!(slug(&"x".repeat(65)), None);
    }

    #[test]
    fn dedupe_keys_ignore_case_only() {
        assert_eq!(
            dedupe_key("OK  Computer", "radiohead", Some(1997)),
            dedupe_key("ok computer", "RADIOHEAD", Some(1997))
        );
        assert_ne!(dedupe_key("OK Computer", "Radiohead", Some(1997)), dedupe_key("OK Computer", "Radiohead", None));
    }
}
