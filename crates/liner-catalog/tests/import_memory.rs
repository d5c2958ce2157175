//! The import streams: its peak memory does not grow with the file.
//!
//! Alone in its own test binary, so the process's peak RSS (`VmHWM`, reset through
//! `/proc/self/clear_refs` before the import) is the import's.

use std::io::Write;
use std::path::Path;

use liner_catalog::import::{ImportSettings, import_file};

/// A generated MusicBrainz dump: `n` release groups of about 1 KiB each (a real dump
/// line is as large, with its tags, aliases and ratings).
fn generate(path: &Path, n: u64) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create dump"));
    let padding = "x".repeat(600);
    for i in 0..n {
        writeln!(
            out,
            r#"{{"id":"00000000-0000-4000-8000-{i:012x}","title":"Generated Album {i}","first-release-date":"{}-01-01","primary-type":"{}","secondary-types":[],"artist-credit":[{{"name":"Artist {}","joinphrase":""}}],"genres":[{{"name":"genre {}","count":3}}],"tags":[],"annotation":"{padding}"}}"#,
            1960 + i % 60,
            if i % 10 == 0 { "Single" } else { "Album" },
            i % 5000,
            i % 40,
        )
        .expect("write dump");
    }
    out.flush().expect("flush dump");
    std::fs::metadata(path).expect("dump size").len()
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("field present");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB value")
}

/// Imports `n` generated lines into a fresh SQLite catalogue; returns (file bytes, the
/// import's peak RSS above the RSS before it, in bytes).
async fn import_generated(n: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dump.jsonl");
    let started = std::time::Instant::now();
    let size = generate(&file, n);
    println!("generated {n} lines in {:?}", started.elapsed());
    let settings = ImportSettings { file, database_url: None, data_dir: dir.path().join("data") };
    // Writing 5 resets the peak to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let before = status_kib("VmRSS:");
    let report = import_file(&settings).await.expect("import");
    let peak = status_kib("VmHWM:");
    let albums = n - n.div_ceil(10);
    assert_eq!(report.written.inserted, albums, "{report}");
    assert_eq!((report.lines, report.other_types, report.bad_lines), (n, n.div_ceil(10), 0));
    (size, peak.saturating_sub(before) * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_line_import_has_bounded_memory() {
    let (size, growth) = import_generated(100_000).await;
    println!("100k lines ({} MiB): peak grew {} MiB", size >> 20, growth >> 20);
    assert!(size > 64 << 20, "the dump is large ({size} bytes)");
    assert!(growth < 40 << 20, "import peak grew by {} MiB for a {} MiB file", growth >> 20, size >> 20);
}

/// A million lines (about 900 MiB): the peak stays where it was for 100k.
///
/// `cargo test --release -p liner-catalog --test import_memory -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million lines: minutes and a GiB of disk"]
async fn a_million_line_import_has_bounded_memory() {
    let started = std::time::Instant::now();
    let (size, growth) = import_generated(1_000_000).await;
    println!("1M lines ({} MiB): peak grew {} MiB in {:?}", size >> 20, growth >> 20, started.elapsed());
    assert!(growth < 40 << 20, "import peak grew by {} MiB", growth >> 20);
}
