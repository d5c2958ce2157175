-- Rooms and their message log. Kept statement-for-statement identical to
-- ../sqlite/0001_init.sql.
CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,
    room_type   TEXT NOT NULL CHECK (room_type IN ('album', 'genre')),
    album_id    TEXT,
    genre_id    TEXT,
    title       TEXT NOT NULL,
    created_by  TEXT NOT NULL,          -- user id (the review service owns users)
    created_at  BIGINT NOT NULL,        -- unix milliseconds
    closed_at   BIGINT,                 -- NULL while active
    -- 'album:<id>' / 'genre:<id>' while active, NULL once closed: at most one active
    -- room per album or genre, enforced by the database (NULLs never collide).
    active_key  TEXT UNIQUE,
    -- Highest seq handed out; bumped in the same transaction as the message insert.
    last_seq    BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX rooms_active_by_time ON rooms (closed_at, created_at);

CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    room_id       TEXT NOT NULL REFERENCES rooms (id),
    seq           BIGINT NOT NULL,
    user_id       TEXT NOT NULL,
    username      TEXT NOT NULL,        -- as resolved when sent
    client_msg_id TEXT,                 -- NULL when the client sent none
    body          TEXT NOT NULL,
    sent_at       BIGINT NOT NULL,
    UNIQUE (room_id, seq),
    UNIQUE (room_id, user_id, client_msg_id)
);
