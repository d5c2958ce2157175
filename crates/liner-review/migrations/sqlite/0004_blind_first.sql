-- Blind-first rating (issue 12): a user who turns it on sees an album's score and
-- reviews only after rating it. Kept statement-for-statement identical to
-- ../postgres/0004_blind_first.sql. 0 or 1, as reviews.spoiler.
ALTER TABLE users ADD COLUMN blind_first BIGINT NOT NULL DEFAULT 0;
