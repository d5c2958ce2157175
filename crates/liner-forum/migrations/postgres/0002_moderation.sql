-- Edits, moderation and reports (issue 12). Kept statement-for-statement identical to
-- ../sqlite/0002_moderation.sql.
--
-- The messages table is the room's sequenced log: besides chat lines (kind 'message')
-- it holds every room event that replay with since= must reproduce, each with its own
-- seq: 'edit' and 'delete' (target_id = the message), 'mute', 'unmute' and 'kick'
-- (target_id/target_name = the user; amount = a mute's end, unix ms) and 'slowmode'
-- (amount = seconds). A chat line's row itself carries its latest text: an edit
-- rewrites body and sets edited_at, a delete empties body and sets deleted_at.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
ALTER TABLE messages ADD COLUMN target_id TEXT;
ALTER TABLE messages ADD COLUMN target_name TEXT;
ALTER TABLE messages ADD COLUMN amount BIGINT;
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;

-- Slow mode: a user's last chat line in the room.
CREATE INDEX messages_by_author ON messages (room_id, user_id, sent_at);

-- 0 = off. mutes_until: the latest end of any mute in the room (0 = none), so that a
-- send looks up room_mutes only while some mute may be running.
ALTER TABLE rooms ADD COLUMN slow_mode_secs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN mutes_until BIGINT NOT NULL DEFAULT 0;

CREATE TABLE room_mutes (
    room_id   TEXT NOT NULL REFERENCES rooms (id),
    user_id   TEXT NOT NULL,
    username  TEXT NOT NULL,
    until_at  BIGINT NOT NULL,          -- unix milliseconds
    muted_by  TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE message_reports (
    id           TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL REFERENCES rooms (id),
    message_id   TEXT NOT NULL REFERENCES messages (id),
    reporter_id  TEXT NOT NULL,
    reporter_name TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    resolved_at  BIGINT,                -- NULL while open
    resolved_by  TEXT,
    UNIQUE (message_id, reporter_id)
);

CREATE INDEX message_reports_open ON message_reports (room_id, resolved_at, created_at);
