-- "Discuss this review" (issue 12). Kept statement-for-statement identical to
-- ../sqlite/0005_threads.sql.
--
-- A chat line may quote a review of the room's album: it opens the review's thread.
-- review_id, review_user_id, review_username and review_rating_half hold the quote as
-- it was when the thread was opened (the review may change or go later); body holds
-- the review's excerpt. At most one line per room quotes a given review, so opening a
-- review's thread twice finds the first.
-- thread_id: on a reply, the id of the line that quotes the review.
ALTER TABLE messages ADD COLUMN review_id TEXT;
ALTER TABLE messages ADD COLUMN review_user_id TEXT;
ALTER TABLE messages ADD COLUMN review_username TEXT;
ALTER TABLE messages ADD COLUMN review_rating_half BIGINT;
ALTER TABLE messages ADD COLUMN thread_id TEXT;
CREATE UNIQUE INDEX messages_one_thread_per_review ON messages (room_id, review_id) WHERE review_id IS NOT NULL;
CREATE INDEX messages_by_thread ON messages (room_id, thread_id, seq) WHERE thread_id IS NOT NULL;
