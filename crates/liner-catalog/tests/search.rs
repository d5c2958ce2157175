//! Search and listing, on SQLite (FTS5) and PostgreSQL (tsvector): the same albums
//! found, in the same order, for the same query.

mod common;

use std::collections::HashSet;

use common::*;

liner_shared::on_both_backends!(search_folds_ranks_filters_and_pages);

const FILLERS: u64 = 45;

fn catalogue() -> String {
    let mut lines = vec![
        release_group(&mbid(1), "Homogenic", "Björk", "1997-09-22", "Album", &["electronic", "art pop"]),
        release_group(&mbid(2), "Lemonade", "Beyoncé", "2016-04-23", "Album", &["contemporary r&b"]),
        release_group(&mbid(3), "OK Computer", "Radiohead", "1997-05-21", "Album", &["alternative rock"]),
        release_group(&mbid(4), "OK Computer OKNOTOK 1997 2017", "Radiohead", "2017", "Album", &["alternative rock"]),
        release_group(&mbid(5), "Computer World", "Kraftwerk", "1981-05-10", "Album", &["electronic"]),
        release_group(&mbid(6), "Ágætis byrjun", "Sigur Rós", "1999-06-12", "Album", &["post-rock"]),
    ];
    for n in 0..FILLERS {
        let year = format!("{}", 1990 + n % 5);
        lines.push(release_group(&mbid(100 + n), &format!("Filler Record {n}"), "The Fillers", &year, "EP", &[]));
    }
    lines.join("\n")
}

async fn search_folds_ranks_filters_and_pages(backend: Backend) {
    let c = start(backend).await;
    let report = c.import(catalogue()).await;
    assert_eq!(report.written.inserted, 6 + FILLERS, "{report}");

    // Accent- and case-insensitive, both ways.
    assert_eq!(c.titles("q=bjork").await, ["Homogenic"]);
    assert_eq!(c.titles("q=BJÖRK").await, ["Homogenic"]);
    assert_eq!(c.titles("q=BEYONCE").await, ["Lemonade"]);
    assert_eq!(c.titles("q=agaetis%20ROS").await, ["Ágætis byrjun"]);
    // Prefix on the last word only.
    assert_eq!(c.titles("q=ok%20comp").await, ["OK Computer", "OK Computer OKNOTOK 1997 2017"]);
    assert_eq!(c.titles("q=homo").await, ["Homogenic"]);
    assert!(c.titles("q=comp%20ok").await.is_empty(), "only the last word is a prefix");
    // Words across title and artist.
    assert_eq!(c.titles("q=radiohead%20oknotok").await, ["OK Computer OKNOTOK 1997 2017"]);
    assert_eq!(c.titles("q=kraftwerk%20world").await, ["Computer World"]);
    // Ranking: the exact title first, then titles starting with the query, then others.
    assert_eq!(c.titles("q=ok%20computer").await, ["OK Computer", "OK Computer OKNOTOK 1997 2017"]);
    assert_eq!(c.titles("q=computer").await, ["Computer World", "OK Computer", "OK Computer OKNOTOK 1997 2017"]);
    // User text never reaches the query syntax.
    for hostile in ["%22", "ok%22%20OR%20*", "NEAR(a%20b)", "a%26b%7C!c", "'%3A*", "%5C"] {
        let (status, body) = c.get(&format!("/albums?q={hostile}")).await;
        assert_eq!(status, 200, "{hostile}: {body}");
    }
    let (status, body) = c.get(&format!("/albums?q={}", "a".repeat(201))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_query");

    // Filters, alone and with a query.
    let mut electronic = c.titles("genre=electronic").await;
    electronic.sort();
    assert_eq!(electronic, ["Computer World", "Homogenic"]);
    let mut of_1997 = c.titles("year=1997").await;
    of_1997.sort();
    assert_eq!(of_1997, ["Homogenic", "OK Computer"]);
    assert_eq!(c.titles("q=computer&genre=electronic").await, ["Computer World"]);
    assert_eq!(c.titles("q=computer&year=2017").await, ["OK Computer OKNOTOK 1997 2017"]);
    assert!(c.titles("genre=no-such-genre").await.is_empty());
    for bad in ["genre=Not%20A%20Slug", "year=1200", "year=abc", "limit=0", "limit=101", "cursor=zzz", "nope=1"] {
        let (status, body) = c.get(&format!("/albums?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Paging: every match exactly once, ranked and newest-first alike.
    let pages = c.all_pages("q=filler&limit=7").await;
    let ids: HashSet<&str> = pages.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!((pages.len(), ids.len()), (FILLERS as usize, FILLERS as usize));
    let pages = c.all_pages("limit=8").await;
    let ids: HashSet<&str> = pages.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!((pages.len(), ids.len()), ((6 + FILLERS) as usize, (6 + FILLERS) as usize));
    let filtered = c.all_pages("year=1990&limit=3").await;
    assert_eq!(filtered.len(), (FILLERS / 5) as usize);
    assert!(filtered.iter().all(|a| a["year"] == 1990));
    // A cursor of a ranked listing is refused by the newest-first one.
    let (_, body) = c.get("/albums?q=filler&limit=7").await;
    let cursor = body["nextCursor"].as_str().unwrap();
    let (status, _) = c.get(&format!("/albums?cursor={cursor}")).await;
    assert_eq!(status, 400);

    // Newest first without q: an album added now comes before the imported ones.
    let token = c.token("ann").await;
    let (status, body) = c
        .post(
            Some(&token),
            &serde_json::json!({"title": "Newest Thing", "artist": "Someone", "genres": ["electronic"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(c.titles("limit=1").await, ["Newest Thing"]);

    // Genres with their album counts.
    let (status, genres) = c.get("/genres").await;
    assert_eq!(status, 200);
    let electronic = genres.as_array().unwrap().iter().find(|g| g["id"] == "electronic").expect("electronic");
    assert_eq!((electronic["name"].as_str(), electronic["albumCount"].as_i64()), (Some("electronic"), Some(3)));
    let rnb = genres.as_array().unwrap().iter().find(|g| g["id"] == "contemporary-r-and-b").expect("slugged");
    assert_eq!(rnb["name"], "contemporary r&b");
}
