-- Indexes for the user listing and the charts. Kept statement-for-statement identical
-- to ../sqlite/0002_scores_charts_user_listing.sql.

-- GET /reviews/user/{userId} pages by the same keysets as the album listing.
CREATE INDEX reviews_by_user_time ON reviews (user_id, created_at, id);
CREATE INDEX reviews_by_user_rating ON reviews (user_id, rating_half, created_at, id);

-- GET /charts aggregates the reviews created since a cut-off: a range scan on
-- created_at that also carries album_id and rating_half, so the aggregate reads the
-- index alone and never the review texts.
CREATE INDEX reviews_by_time ON reviews (created_at, album_id, rating_half);
