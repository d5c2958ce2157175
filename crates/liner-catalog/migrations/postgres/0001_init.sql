-- The catalogue. Kept in step with ../sqlite/0001_init.sql; the differences are the
-- integer key SQLite's full-text index needs and the search index itself (a tsvector
-- here, FTS5 there). Both index the same `search_doc`, folded in Rust (see src/text.rs).
CREATE TABLE albums (
    id          TEXT PRIMARY KEY,          -- 'mb:<mbid>' when the MusicBrainz id is known
    title       TEXT NOT NULL,
    artist      TEXT NOT NULL,
    year        BIGINT,
    mbid        TEXT,
    created_at  BIGINT NOT NULL,           -- unix milliseconds
    created_by  TEXT,                      -- user id; NULL for imported albums
    updated_at  BIGINT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE,      -- lower-cased title, artist and year: one album each
    title_words TEXT NOT NULL,             -- folded words of the title (ranks exact titles first)
    search_doc  TEXT NOT NULL,             -- folded words of title and artist, space-separated
    -- The words as lexemes, verbatim: no text-search parser or dictionary runs, so the
    -- words are exactly the ones Rust made (the 'simple' config would re-split them).
    search_vec  TSVECTOR GENERATED ALWAYS AS (array_to_tsvector(string_to_array(search_doc, ' '))) STORED
);

CREATE INDEX albums_newest ON albums (created_at, id);
CREATE INDEX albums_by_year ON albums (year, created_at, id);
CREATE INDEX albums_search ON albums USING GIN (search_vec);

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
