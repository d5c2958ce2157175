-- Likes, spoilers, follows and lists (issue 12). Kept statement-for-statement identical
-- to ../sqlite/0003_people.sql.

-- 0 or 1: an integer, the one boolean both backends read alike through sqlx's Any.
ALTER TABLE reviews ADD COLUMN spoiler BIGINT NOT NULL DEFAULT 0;

-- One like per user per review (the primary key); counted per review by the key's
-- prefix, listed per user newest first.
CREATE TABLE review_likes (
    review_id  TEXT NOT NULL REFERENCES reviews (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (review_id, user_id)
);
CREATE INDEX review_likes_by_user ON review_likes (user_id, created_at, review_id);

-- follower follows followee; a user never follows themself.
CREATE TABLE follows (
    follower_id TEXT NOT NULL REFERENCES users (id),
    followee_id TEXT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_by_follower ON follows (follower_id, created_at, followee_id);
CREATE INDEX follows_by_followee ON follows (followee_id, created_at, follower_id);

-- A user's named, ordered lists of albums (album ids as reviews name them).
CREATE TABLE lists (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX lists_by_user ON lists (user_id, created_at, id);

CREATE TABLE list_items (
    list_id  TEXT NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    album_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    note     TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (list_id, album_id)
);
CREATE INDEX list_items_in_order ON list_items (list_id, position);
