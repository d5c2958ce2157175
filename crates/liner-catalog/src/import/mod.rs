//! Bulk import of MusicBrainz release groups (JSON lines), for `liner catalog import
//! FILE` and for the sample a new installation starts with.
//!
//! Streaming with bounded memory: a blocking thread reads one line at a time (a line
//! longer than 1 MiB is skipped without being held), parses it and hands batches of
//! 500 albums through a channel of two batches to the writer, which upserts each batch
//! in one transaction. A million lines take the memory of three batches. Lines that are
//! not release groups, or have an invalid field, are counted and reported, never fatal;
//! see [`musicbrainz`] for what is kept and how genres map.

pub mod musicbrainz;
pub mod write;

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use liner_shared::config::DatabaseUrl;
use liner_shared::db::Db;
use tokio::sync::mpsc;

use crate::albums::model::NewAlbum;
use musicbrainz::Parsed;
use write::Written;

/// Albums per transaction.
pub const BATCH: usize = 500;
/// Longest line read; longer ones are skipped as bad.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Bad lines whose reason the report quotes.
const QUOTED_BAD_LINES: usize = 5;

/// `liner catalog import FILE`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportSettings {
    /// MusicBrainz release-group dump, one JSON object per line.
    pub file: PathBuf,
    /// `sqlite://FILE` or `postgres://…`; default: `catalog.db` in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<DatabaseUrl>,
    /// Directory of the default SQLite file.
    #[arg(long, env = "LINER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read (blank lines included).
    pub lines: u64,
    pub written: Written,
    /// Release groups of a type the catalogue does not keep (singles, …).
    pub other_types: u64,
    /// Lines that were not valid release groups.
    pub bad_lines: u64,
    /// The first few bad lines: (line number, reason).
    pub first_bad: Vec<(u64, String)>,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.written;
        write!(
            f,
            "{} lines: {} albums added, {} updated, {} duplicates skipped, {} of other types skipped, {} bad lines skipped",
            self.lines, w.inserted, w.updated, w.duplicates, self.other_types, self.bad_lines
        )?;
        for (line, why) in &self.first_bad {
            write!(f, "\n  line {line}: {why}")?;
        }
        Ok(())
    }
}

/// What the reader thread hands the writer.
struct Chunk {
    albums: Vec<NewAlbum>,
    lines: u64,
    other_types: u64,
    bad: Vec<(u64, String)>,
}

/// Imports a file into the database the service uses.
pub async fn import_file(settings: &ImportSettings) -> anyhow::Result<ImportReport> {
    let file = std::fs::File::open(&settings.file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", settings.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let url =
        liner_shared::config::database_url_or(settings.database_url.as_ref(), &settings.data_dir, crate::SQLITE_FILE)?;
    let db = crate::connect(&url, 4).await?;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(size);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {elapsed_precise} eta {eta}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = import_reader(&db, std::io::BufReader::with_capacity(256 * 1024, file), progress.clone()).await;
    progress.finish_and_clear();
    db.pool.close().await;
    report
}

/// Imports every line of `reader`; `progress` advances by bytes read.
pub async fn import_reader(
    db: &Db,
    reader: impl BufRead + Send + 'static,
    progress: ProgressBar,
) -> anyhow::Result<ImportReport> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(2);
    let reading = tokio::task::spawn_blocking(move || read_chunks(reader, &tx, &progress));
    let mut report = ImportReport::default();
    while let Some(chunk) = rx.recv().await {
        report.lines += chunk.lines;
        report.other_types += chunk.other_types;
        report.bad_lines += chunk.bad.len() as u64;
        for bad in chunk.bad {
            if report.first_bad.len() < QUOTED_BAD_LINES {
                tracing::warn!(line = bad.0, reason = %bad.1, "import: line skipped");
                report.first_bad.push(bad);
            }
        }
        if !chunk.albums.is_empty() {
            report.written += write::write_batch(db, chunk.albums, liner_shared::now_millis())
                .await
                .map_err(|e| anyhow::anyhow!("import failed after {} lines: {e}", report.lines))?;
        }
    }
    reading.await.map_err(|e| anyhow::anyhow!("import reader failed: {e}"))??;
    Ok(report)
}

/// The reader thread: lines → parsed chunks of up to [`BATCH`] albums.
fn read_chunks(mut reader: impl BufRead, tx: &mpsc::Sender<Chunk>, progress: &ProgressBar) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut number = 0u64;
    let empty = || Chunk { albums: Vec::with_capacity(BATCH), lines: 0, other_types: 0, bad: Vec::new() };
    let mut chunk = empty();
    while let Some(line) = next_line(&mut reader, &mut buf)? {
        number += 1;
        chunk.lines += 1;
        progress.inc(line.bytes);
        match line.complete {
            false => chunk.bad.push((number, format!("longer than {MAX_LINE_BYTES} bytes"))),
            true if buf.trim_ascii().is_empty() => {}
            true => match musicbrainz::parse_line(&buf) {
                Parsed::Album(album) => chunk.albums.push(*album),
                Parsed::OtherType => chunk.other_types += 1,
                Parsed::Bad(why) => chunk.bad.push((number, why)),
            },
        }
        if chunk.albums.len() >= BATCH || chunk.bad.len() >= BATCH {
            let full = std::mem::replace(&mut chunk, empty());
            if tx.blocking_send(full).is_err() {
                return Ok(()); // the writer stopped; it reports why
            }
        }
    }
    let _ = tx.blocking_send(chunk);
    Ok(())
}

struct Line {
    bytes: u64,
    /// False when the line was longer than [`MAX_LINE_BYTES`] (its text is dropped).
    complete: bool,
}

/// Reads the next line into `buf` (at most [`MAX_LINE_BYTES`] of it); None at the end.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
    buf.clear();
    let n = reader.by_ref().take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', buf)? as u64;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() <= MAX_LINE_BYTES || buf.ends_with(b"\n") {
        return Ok(Some(Line { bytes: n, complete: true }));
    }
    buf.clear();
    let mut skipped = n;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        reader.consume(used);
        skipped += used as u64;
        if done {
            break;
        }
    }
    Ok(Some(Line { bytes: skipped, complete: false }))
}

/// The sample that ships with the project: a few hundred real albums.
pub const SAMPLE: &[u8] = include_bytes!("../../sample/albums.jsonl");

/// Loads [`SAMPLE`] when the catalogue holds no album yet.
pub async fn load_sample_if_empty(db: &Db) -> anyhow::Result<Option<ImportReport>> {
    if crate::albums::store::count(db).await? > 0 {
        return Ok(None);
    }
    let report = import_reader(db, std::io::Cursor::new(SAMPLE), ProgressBar::hidden()).await?;
    tracing::info!(albums = report.written.inserted, "catalogue: sample loaded");
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_lines_are_skipped_whole() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let text = format!("a\n{long}\nb\n{long}");
        let mut reader = std::io::BufReader::with_capacity(1024, text.as_bytes());
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        while let Some(line) = next_line(&mut reader, &mut buf).unwrap() {
            seen.push((line.complete, String::from_utf8_lossy(&buf).trim().to_owned(), line.bytes));
            assert!(buf.capacity() <= MAX_LINE_BYTES * 2 + 64);
        }
        let total: u64 = seen.iter().map(|s| s.2).sum();
        assert_eq!(total, text.len() as u64);
        let kinds: Vec<(bool, &str)> = seen.iter().map(|s| (s.0, s.1.as_str())).collect();
        assert_eq!(kinds, [(true, "a"), (false, ""), (true, "b"), (false, "")]);
    }

    #[test]
    fn the_sample_parses() {
        let mut parsed = 0;
        for line in SAMPLE.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()) {
            if let Parsed::Album(_) = musicbrainz::parse_line(line) {
                parsed += 1;
            }
        }
        assert!(parsed >= 3, "the sample holds albums");
    }
}
