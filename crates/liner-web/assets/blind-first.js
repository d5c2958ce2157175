// Blind-first everywhere, not only on the album page: the one place that decides whether
// an album's score, and other people's ratings and reviews of it, stay hidden from the
// logged-in person — yes while blind-first is on (settings.js) and they have not rated
// the album (own-reviews.js). Pages ask once per view (`blindness()`) and show
// `ratePrompt` where the number or the review would be, so that the person sees why
// something is missing and how to reveal it.
//
// Decided here, in the client, from data it reads anyway: charts, the feed, profiles and
// liked reviews stay the answers every reader gets (the charts are shared and cached),
// and the person's own reviews are one read per session. The album page is the
// exception: there the server answers `blind=true` (page-album.js), since that page is
// mostly the reviews themselves.

import { h } from './dom.js';
import { ownReviews } from './own-reviews.js';
import { blindFirst } from './settings.js';

const NOTHING_HIDDEN = () => false;

/**
 * For this page view: `hides(albumId)`, true when that album's score and other people's
 * ratings are to stay hidden from the logged-in person. Never true when blind-first is
 * off or nobody is logged in. When their reviews cannot be read, every album stays
 * hidden: a blind-first person would rather wait than be told.
 */
export async function blindness() {
  if (!(await blindFirst())) return NOTHING_HIDDEN;
  const rated = await ownReviews().catch(() => new Map());
  return (albumId) => !rated.has(albumId);
}

/** What stands in for a hidden score or review: a link to the album, to rate it. */
export function ratePrompt(albumId, text = 'Rate it to see the score') {
  return h('a', { href: `/albums/${encodeURIComponent(albumId)}`, class: 'blind-prompt' }, text);
}
