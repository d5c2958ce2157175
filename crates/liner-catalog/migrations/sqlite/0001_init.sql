-- The catalogue. Kept in step with ../postgres/0001_init.sql; the differences are the
-- integer key the full-text index needs and the search index itself (FTS5 here,
-- a tsvector there). Both index the same `search_doc`, folded in Rust (see src/text.rs).
CREATE TABLE albums (
    -- SQLite only: a stable integer key for the FTS5 index (a table's implicit rowid
    -- may change on VACUUM, an INTEGER PRIMARY KEY never does).
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,      -- 'mb:<mbid>' when the MusicBrainz id is known
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL,
    year        BIGINT,
    mbid        TEXT,
    created_at  BIGINT NOT NULL,           -- unix milliseconds
    created_by  TEXT,                      -- user id; NULL for imported albums
    updated_at  BIGINT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE,      -- lower-cased title, artist and year: one album each
    title_words TEXT NOT NULL,             -- folded words of the title (ranks exact titles first)
    search_doc  TEXT NOT NULL              -- folded words of title and artist, space-separated
);

CREATE INDEX albums_newest ON albums (created_at, id);
CREATE INDEX albums_by_year ON albums (year, created_at, id);

CREATE TABLE genres (
    id   TEXT PRIMARY KEY,                 -- slug of the name: 'alternative-rock'
    name TEXT NOT NULL                     -- as first seen: 'alternative rock'
);

CREATE TABLE album_genres (
    album_id TEXT NOT NULL REFERENCES albums (id) ON DELETE CASCADE,
    genre_id TEXT NOT NULL REFERENCES genres (id),
    position BIGINT NOT NULL,              -- order within the album (most voted first)
    PRIMARY KEY (album_id, genre_id)
);

CREATE INDEX album_genres_by_genre ON album_genres (genre_id, album_id);

-- The search index reads its text from albums (external content) and is kept in step
-- by these triggers, so no code path can forget it.
CREATE VIRTUAL TABLE album_search USING fts5 (
    search_doc,
    content = 'albums',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER albums_search_insert AFTER INSERT ON albums BEGIN
    INSERT INTO album_search (rowid, search_doc) VALUES (new.seq, new.search_doc);
END;

CREATE TRIGGER albums_search_delete AFTER DELETE ON albums BEGIN
    INSERT INTO album_search (album_search, rowid, search_doc) VALUES ('delete', old.seq, old.search_doc);
END;

CREATE TRIGGER albums_search_update AFTER UPDATE OF search_doc ON albums BEGIN
    INSERT INTO album_search (album_search, rowid, search_doc) VALUES ('delete', old.seq, old.search_doc);
    INSERT INTO album_search (rowid, search_doc) VALUES (new.seq, new.search_doc);
END;
