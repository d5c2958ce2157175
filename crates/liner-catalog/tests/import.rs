//! MusicBrainz import, on SQLite and PostgreSQL: idempotent upserts by mbid, bad
//! lines counted and skipped, and the shipped sample on an empty catalogue.

mod common;

use common::*;

liner_shared::on_both_backends!(
    import_is_idempotent_and_updates,
    import_skips_and_reports_bad_lines,
    the_sample_loads_into_an_empty_catalogue_once
);

fn dump(title_of_first: &str) -> String {
    let mut lines = vec![release_group(&mbid(1), title_of_first, "Portishead", "1994-08-22", "Album", &["trip hop"])];
    for n in 2..=30 {
        lines.push(release_group(&mbid(n), &format!("Record {n}"), "Various", "2001", "Album", &["jazz", "soul"]));
    }
    lines.push(release_group(&mbid(99), "A Single", "Various", "2001", "Single", &["jazz"]));
    lines.push(String::new());
    lines.join("\n")
}

async fn import_is_idempotent_and_updates(backend: Backend) {
    let c = start(backend).await;
    let first = c.import(dump("Dummy")).await;
    assert_eq!((first.written.inserted, first.written.updated, first.other_types, first.bad_lines), (30, 0, 1, 0));
    assert_eq!(c.count().await, 30);
    assert_eq!(c.titles("q=dummy").await, ["Dummy"]);

    // Again, with one title changed upstream: updated in place, nothing duplicated.
    let second = c.import(dump("Dummy (Remastered)")).await;
    assert_eq!((second.written.inserted, second.written.updated), (0, 30), "{second}");
    assert_eq!(c.count().await, 30);
    let (status, album) = c.get(&format!("/albums/mb:{}", mbid(1))).await;
    assert_eq!(status, 200);
    assert_eq!(album["title"], "Dummy (Remastered)");
    assert_eq!(album["genres"], serde_json::json!(["trip-hop"]));
    // The search index followed the update.
    assert_eq!(c.titles("q=remastered").await, ["Dummy (Remastered)"]);
    let (_, genres) = c.get("/genres").await;
    let jazz = genres.as_array().unwrap().iter().find(|g| g["id"] == "jazz").expect("jazz");
    assert_eq!(jazz["albumCount"], 29, "genre links replaced, not added twice");

    // An album added by hand with the same title + artist + year is not duplicated by an import.
    let token = c.token("ann").await;
    let (status, _) =
        c.post(Some(&token), &serde_json::json!({"title": "Roseland", "artist": "Portishead", "year": 1998})).await;
    assert_eq!(status, 201);
    let clash = release_group(&mbid(500), "ROSELAND", "portishead", "1998", "Album", &[]);
    let report = c.import(clash).await;
    assert_eq!((report.written.inserted, report.written.duplicates), (0, 1), "{report}");
    assert_eq!(c.count().await, 31);
}

async fn import_skips_and_reports_bad_lines(backend: Backend) {
    let c = start(backend).await;
    let lines = [
        release_group(&mbid(1), "Good One", "A", "1999", "Album", &[]),
        "{not json".to_owned(),
        r#"{"id":"not-a-uuid","title":"T","primary-type":"Album","artist-credit":[{"name":"A"}]}"#.to_owned(),
        release_group(&mbid(2), "", "A", "1999", "Album", &[]),
        "[1, 2, 3]".to_owned(),
        release_group(&mbid(3), "Good Two", "A", "", "EP", &[]),
        format!(r#"{{"pad":"{}"}}"#, "x".repeat(liner_catalog::import::MAX_LINE_BYTES)),
        release_group(&mbid(4), "Good Three", "A", "2003-01", "Album", &[]),
    ];
    let report = c.import(lines.join("\n")).await;
    assert_eq!(report.lines, 8);
    assert_eq!(report.written.inserted, 3, "{report}");
    assert_eq!(report.bad_lines, 5, "{report}");
    let numbers: Vec<u64> = report.first_bad.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [2, 3, 4, 5, 7]);
    assert!(report.first_bad[1].1.contains("mbid"), "{report}");
    assert!(report.first_bad[2].1.contains("title"), "{report}");
    assert!(report.to_string().contains("5 bad lines skipped"), "{report}");
    let mut titles = c.titles("q=good").await;
    titles.sort();
    assert_eq!(titles, ["Good One", "Good Three", "Good Two"]);
    let (_, album) = c.get(&format!("/albums/mb:{}", mbid(4))).await;
    assert_eq!(album["year"], 2003);
    assert!(album["createdBy"].is_null(), "imported albums have no creator");

    // The shipped sample loads into an empty catalogue only.
    assert!(liner_catalog::import::load_sample_if_empty(&c.db).await.expect("sample").is_none());
}

async fn the_sample_loads_into_an_empty_catalogue_once(backend: Backend) {
    let c = start(backend).await;
    let report = liner_catalog::import::load_sample_if_empty(&c.db).await.expect("sample").expect("loaded");
    assert!(report.written.inserted >= 3, "{report}");
    assert_eq!(report.bad_lines, 0, "the sample is clean: {report}");
    assert_eq!(c.count().await as u64, report.written.inserted);
    assert!(liner_catalog::import::load_sample_if_empty(&c.db).await.expect("sample").is_none());
}
