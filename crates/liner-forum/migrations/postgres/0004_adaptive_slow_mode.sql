-- Adaptive slow mode (issue 12). Kept statement-for-statement identical to
-- ../sqlite/0004_adaptive_slow_mode.sql.
--
-- slow_mode_auto_since: when the adaptive rule switched the room's slow mode on (unix
-- ms; 0 = the slow mode, if any, was set by a moderator). Only a room with a value here
-- is switched off again by the rule when it calms.
-- slow_mode_set_at: when a moderator last set slow mode (unix ms; 0 = never); the rule
-- leaves the room alone for a while after a moderator's choice.
-- A 'slowmode' event switched by the rule has target_id = 'automatic'.
ALTER TABLE rooms ADD COLUMN slow_mode_auto_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN slow_mode_set_at BIGINT NOT NULL DEFAULT 0;
