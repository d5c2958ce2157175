// The logged-in person's own reviews, by album: what the rating form starts from and
// what blind-first (blind.js) asks "have I rated this album?". Read once for the session
// (every page of GET /reviews/user/{me}, 100 at a time, by nextCursor) and kept in this
// module, so that a page with many albums costs no request per album and moving between
// pages costs none at all; review-form.js drops it after every save or delete, so the
// next page reads it again. A review written in another tab shows after a reload.

import { REVIEWS, api, query } from './api.js';
import * as session from './session.js';

const PAGE = 100;

let cached = null; // { token, promise of Map albumId → review }

/** albumId → the logged-in person's review of it (empty when logged out). */
export function ownReviews() {
  const s = session.current();
  if (!s) return Promise.resolve(new Map());
  if (cached?.token !== s.token) {
    const promise = readAll(s.user.id);
    // A failed read is not kept: the next page view asks again.
    promise.catch(() => {
      if (cached?.promise === promise) cached = null;
    });
    cached = { token: s.token, promise };
  }
  return cached.promise;
}

/** The person saved or deleted a review: the next `ownReviews()` reads them again. */
export function ownReviewsChanged() {
  cached = null;
}

async function readAll(userId) {
  const byAlbum = new Map();
  let cursor = null;
  do {
    const page = await api(`${REVIEWS}/reviews/user/${encodeURIComponent(userId)}${query({ limit: PAGE, cursor })}`);
    for (const r of page.items) byAlbum.set(r.albumId, r);
    cursor = page.nextCursor;
  } while (cursor);
  return byAlbum;
}
