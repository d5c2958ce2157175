//! The embedded files and their content-hashed names.
//!
//! Every file of `assets/` is compiled into the binary (the list below; a test checks
//! that it matches the folder). At first use each one gets a public name with a hash
//! of its content, `main.js` → `main.3f9a0c1e2b7d.js`, so that browsers may cache it
//! for a year: a changed file is a new URL.
//!
//! The catch is that files name each other: `main.js` imports `./api.js`, and
//! `index.html` loads `/assets/main.js`. If `api.js` changes, `main.js` must change too
//! (its import now names the new hash), or a browser would keep the old `main.js`
//! that imports the old `api.js`. So names are rewritten children first: a file is
//! hashed only after every file it references has its final name, and its hash is
//! taken over the *rewritten* text. A reference is an exact quoted string,
//! `"./NAME"` / `'./NAME'` (module imports, always flat) or `"/assets/NAME"` (HTML);
//! nothing else is touched. Files referencing each other in a cycle cannot be named
//! this way: that panics at startup, and the tests catch it before any release.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The HTML page every client-side route is answered with.
pub const INDEX: &str = "index.html";

/// Where the `<link rel="modulepreload">` tags for every module go in `index.html`, so
/// the browser fetches the whole import graph at once rather than level by level.
const PRELOAD_MARKER: &str = "<!-- modulepreload -->";

macro_rules! embed {
    ($($name:literal),* $(,)?) => { &[$(($name, include_bytes!(concat!("../assets/", $name)))),*] };
}

/// Every file in `assets/`, by name.
pub const SOURCES: &[(&str, &[u8])] = embed![
    "index.html",
    "app.css",
    "favicon.svg",
    "main.js",
    "nav.js",
    "api.js",
    "session.js",
    "dom.js",
    "rating.js",
    "chat.js",
    "page-home.js",
    "page-search.js",
    "page-album.js",
    "review-form.js",
    "page-user.js",
    "page-auth.js",
    "page-room.js",
    "room-tools.js",
    "page-add-album.js",
    "social.js",
    "lists.js",
    "page-feed.js",
    "page-list.js",
    "settings.js",
    "page-likes.js",
    "own-reviews.js",
    "blind-first.js",
];

/// One file as served.
pub struct Built {
    /// The public name (`main.3f9a0c1e2b7d.js`); `index.html` keeps its own.
    pub public_name: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Hex digest of `body`, for the ETag of the page.
    pub digest: String,
}

pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `main.js` + digest → `main.<12 hex>.js`.
fn hashed_name(name: &str, digest: &str) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("{stem}.{}.{ext}", &digest[..12])
}

/// The quoted forms under which `text` may reference the asset `name`.
fn reference_forms(name: &str) -> [(String, String); 3] {
    [
        (format!("\"./{name}\""), "\"./".into()),
        (format!("'./{name}'"), "'./".into()),
        (format!("\"/assets/{name}\""), "\"/assets/".into()),
    ]
}

fn references(text: &str, name: &str) -> bool {
    reference_forms(name).iter().any(|(form, _)| text.contains(form.as_str()))
}

/// `text` with every reference to an already named asset replaced by its public name.
fn rewrite(mut text: String, named: &HashMap<&str, String>) -> String {
    for (name, public) in named {
        for (form, prefix) in reference_forms(name) {
            let quote = &prefix[..1];
            text = text.replace(&form, &format!("{prefix}{public}{quote}"));
        }
    }
    text
}

/// Names every asset, children first (see the module doc), and fills in `index.html`.
pub fn build() -> Vec<Built> {
    let mut named: HashMap<&str, String> = HashMap::new();
    let mut built = Vec::new();
    let mut todo: Vec<(&str, &[u8])> = SOURCES.iter().copied().filter(|(name, _)| *name != INDEX).collect();
    while !todo.is_empty() {
        let before = todo.len();
        let mut waiting = Vec::new();
        for (name, bytes) in todo {
            let Ok(text) = std::str::from_utf8(bytes) else {
                built.push(finish(name, bytes.to_vec(), &mut named));
                continue;
            };
            let pending = |other: &&str| *other != name && !named.contains_key(other) && references(text, other);
            if SOURCES.iter().map(|(other, _)| other).any(pending) {
                waiting.push((name, bytes));
            } else {
                let body = rewrite(text.to_owned(), &named).into_bytes();
                built.push(finish(name, body, &mut named));
            }
        }
        assert!(waiting.len() < before, "assets reference each other in a cycle: {waiting:?}");
        todo = waiting;
    }
    built.push(index_page(&named));
    built
}

fn finish<'a>(name: &'a str, body: Vec<u8>, named: &mut HashMap<&'a str, String>) -> Built {
    let digest = hex_digest(&body);
    let public_name = hashed_name(name, &digest);
    named.insert(name, public_name.clone());
    Built { public_name, body, content_type: content_type(name), digest }
}

fn index_page(named: &HashMap<&str, String>) -> Built {
    let source = SOURCES.iter().find(|(name, _)| *name == INDEX).map(|(_, b)| *b).unwrap_or_default();
    let mut modules: Vec<&String> = named.values().filter(|n| n.ends_with(".js")).collect();
    modules.sort();
    let preload: String =
        modules.iter().map(|m| format!("<link rel=\"modulepreload\" href=\"/assets/{m}\">\n")).collect();
    let text = rewrite(String::from_utf8_lossy(source).into_owned(), named).replace(PRELOAD_MARKER, &preload);
    let digest = hex_digest(text.as_bytes());
    Built { public_name: INDEX.to_owned(), body: text.into_bytes(), content_type: content_type(INDEX), digest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_embedded_and_nothing_else() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("assets folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = SOURCES.iter().map(|(n, _)| (*n).to_owned()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn a_changed_child_renames_its_parent() {
        let mut named = HashMap::new();
        named.insert("api.js", "api.aaaaaaaaaaaa.js".to_owned());
        let parent = rewrite("import { a } from './api.js';".to_owned(), &named);
        assert_eq!(parent, "import { a } from './api.aaaaaaaaaaaa.js';");
        named.insert("api.js", "api.bbbbbbbbbbbb.js".to_owned());
        let again = rewrite("import { a } from './api.js';".to_owned(), &named);
        assert_ne!(hex_digest(parent.as_bytes()), hex_digest(again.as_bytes()));
    }

    #[test]
    fn only_exact_quoted_references_are_rewritten() {
        let mut named = HashMap::new();
        named.insert("api.js", "api.0123456789ab.js".to_owned());
        let text = "const s = './api.js.map'; // api.js \"/assets/api.js\"".to_owned();
        assert_eq!(rewrite(text, &named), "const s = './api.js.map'; // api.js \"/assets/api.0123456789ab.js\"");
    }

    #[test]
    fn hashed_names_keep_the_extension() {
        assert_eq!(hashed_name("page-home.js", "0123456789abcdef"), "page-home.0123456789ab.js");
    }
}
