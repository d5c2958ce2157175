-- Rating-aware rooms (issue 12). Kept statement-for-statement identical to
-- ../postgres/0003_author_rating.sql.
--
-- A chat line in an album room keeps its author's rating of the album when it was
-- sent, in halves (1 = 0.5 … 10 = 5.0; NULL: unrated, a genre room, or the review
-- service could not be asked), so history and replays show the badge it was sent with.
ALTER TABLE messages ADD COLUMN author_rating_half BIGINT;
