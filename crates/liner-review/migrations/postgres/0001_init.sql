-- Users and reviews. Kept statement-for-statement identical to ../sqlite/0001_init.sql.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,   -- lower-cased: usernames are unique case-insensitively
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,   -- lower-cased
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL         -- unix milliseconds
);

CREATE TABLE reviews (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    album_id    TEXT NOT NULL,
    rating_half BIGINT NOT NULL CHECK (rating_half BETWEEN 1 AND 10), -- rating × 2
    review_text TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (user_id, album_id)
);

CREATE INDEX reviews_by_album_time ON reviews (album_id, created_at, id);
CREATE INDEX reviews_by_album_rating ON reviews (album_id, rating_half, created_at, id);
