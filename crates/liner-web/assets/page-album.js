// One album: catalogue facts, the score (weighted, its 90 % interval, the plain average,
// the histogram), one's own review, everyone's reviews (four sorts, "more" paging), and
// the album's live room, likes and spoilers on each review, "discuss in the room" (the
// review's thread in the album's room), and "add to a list". For a
// blind-first person (settings.js) the score and reviews are asked with `blind=true` and
// stay hidden until their own review is saved; then the same refresh reveals them.

import { REVIEWS, album as fetchAlbum, api, query } from './api.js';
import { ratePrompt } from './blind-first.js';
import { busy, cover, failure, fmtDate, fmtScore, h, loading, mount, plural, setTitle, srOnly, timeEl } from './dom.js';
import { discussReview, roomWidget } from './page-room.js';
import { STEPS, fmtRating, stars } from './rating.js';
import { findOwnReview, reviewForm } from './review-form.js';
import { addToList } from './lists.js';
import * as session from './session.js';
import { blindFirst } from './settings.js';
import { applyLiked, likeButton, reviewText } from './social.js';

const SORTS = [
  ['newest', 'Newest'],
  ['oldest', 'Oldest'],
  ['highest', 'Highest rated'],
  ['lowest', 'Lowest rated'],
];

export function render(main, albumId) {
  setTitle('Album');
  const head = h('div', { class: 'album-head' }, loading());
  const stats = h('section', { class: 'panel score-panel', 'aria-labelledby': 'score-heading' }, loading());
  const mine = h('section', { class: 'panel', id: 'your-review' });
  const lists = h('section', { class: 'panel', id: 'add-to-list', hidden: true });
  const list = h('section', { class: 'panel', 'aria-labelledby': 'reviews-heading' });
  mount(main, head, h('div', { class: 'album-grid-layout' }, h('div', {}, stats, mine, lists), list));
  addToList(lists, albumId);

  loadHead(head, albumId);
  const reviews = reviewList(list, albumId);
  const refresh = () => {
    loadStats(stats, albumId);
    reviews.reload();
  };
  loadStats(stats, albumId);
  findOwnReview(albumId).then((own) => reviewForm(mine, albumId, own, refresh));
}

async function loadHead(el, albumId) {
  const room = h('div', { class: 'album-room' });
  try {
    const a = await fetchAlbum(albumId);
    if (!a) {
      setTitle(albumId);
      mount(
        el,
        cover({ id: albumId, title: albumId }, 'lg'),
        h('div', { class: 'album-head__text' }, h('h1', {}, albumId), h('p', { class: 'muted' }, 'This album is not in the catalogue, but it can still be rated.'), room),
      );
    } else {
      setTitle(`${a.title} by ${a.artist}`);
      mount(
        el,
        cover(a, 'lg'),
        h(
          'div',
          { class: 'album-head__text' },
          h('p', { class: 'eyebrow' }, 'Album'),
          h('h1', {}, a.title),
          h('p', { class: 'album-head__artist' }, a.artist, a.year ? h('span', { class: 'muted' }, ` · ${a.year}`) : null),
          a.genres?.length
            ? h(
                'ul',
                { class: 'chips', 'aria-label': 'Genres' },
                a.genres.map((g) => h('li', {}, h('a', { href: `/genres/${encodeURIComponent(g)}`, class: 'chip' }, g))),
              )
            : null,
          room,
        ),
      );
    }
    roomWidget(room, { roomType: 'album', albumId }, a ? `${a.title} — ${a.artist}` : albumId);
  } catch (err) {
    mount(el, failure(err, () => loadHead(el, albumId)));
  }
}

/** The album's reviews page; blind (and with the token) for a blind-first person. */
async function albumPage(albumId, params) {
  const blind = await blindFirst();
  const q = query({ ...params, blind: blind ? 'true' : null });
  return api(`${REVIEWS}/reviews/album/${encodeURIComponent(albumId)}${q}`, { auth: blind });
}

async function loadStats(el, albumId) {
  try {
    const res = await albumPage(albumId, { limit: 1 });
    if (res.hidden) {
      mount(el, h('h2', { id: 'score-heading' }, 'Score'), h('p', { class: 'blind-note', id: 'blind-note' }, 'Rate it first to see what others think.'));
      return;
    }
    mount(el, scoreCard(res), res.total ? histogram(res.histogram ?? {}) : null);
  } catch (err) {
    mount(el, failure(err, () => loadStats(el, albumId)));
  }
}

function scoreCard(res) {
  const s = res.score ?? {};
  if (!res.total) {
    return [h('h2', { id: 'score-heading' }, 'Score'), h('p', { class: 'empty', id: 'album-score' }, 'No ratings yet.')];
  }
  return [
    h('h2', { id: 'score-heading' }, 'Score'),
    h(
      'div',
      { class: 'score', id: 'album-score' },
      h('p', { class: 'score__big' }, h('span', { id: 'score-weighted' }, fmtScore(s.weighted)), h('span', { class: 'score__of' }, ' / 5')),
      h(
        'dl',
        { class: 'score__facts' },
        h('dt', {}, '90 % interval'),
        h('dd', { id: 'score-interval' }, `${fmtScore(s.low)} – ${fmtScore(s.high)}`),
        h('dt', {}, 'Average'),
        h('dd', { id: 'score-average' }, `${fmtScore(res.averageRating)} from ${plural(res.total, 'rating')}`),
        s.divisiveness !== null && s.divisiveness !== undefined ? [h('dt', {}, 'Spread'), h('dd', {}, `± ${fmtScore(s.divisiveness)}`)] : null,
      ),
      h('p', { class: 'muted small' }, 'The weighted score pulls albums with few ratings toward the site-wide mean.'),
    ),
  ];
}

function histogram(counts) {
  const values = STEPS.map((step) => counts[step.toFixed(1)] ?? 0);
  const max = Math.max(1, ...values);
  return h(
    'figure',
    { class: 'histogram' },
    h('figcaption', { class: 'visually-hidden' }, 'Ratings by stars'),
    h(
      'ol',
      { class: 'histogram__bars' },
      STEPS.map((step, i) =>
        h(
          'li',
          { class: 'histogram__col', title: `${fmtRating(step)} stars: ${plural(values[i], 'rating')}` },
          srOnly(`${fmtRating(step)} stars: ${plural(values[i], 'rating')}`),
          h('span', { class: `histogram__bar h-${Math.round((values[i] / max) * 20) * 5}`, 'aria-hidden': 'true' }),
          h('span', { class: 'histogram__label', 'aria-hidden': 'true' }, step % 1 ? '' : `${step}★`),
        ),
      ),
    ),
  );
}

function reviewList(el, albumId) {
  const select = h(
    'select',
    { id: 'review-sort' },
    SORTS.map(([v, label]) => h('option', { value: v }, label)),
  );
  const items = h('ol', { class: 'reviews', id: 'reviews' });
  const more = h('button', { type: 'button', class: 'btn btn--ghost', id: 'more-reviews', hidden: true }, 'More reviews');
  const count = h('span', { class: 'muted' });
  const status = h('div', { role: 'status' });
  mount(
    el,
    h(
      'div',
      { class: 'panel__head' },
      h('h2', { id: 'reviews-heading' }, 'Reviews ', count),
      h('div', { class: 'sort' }, h('label', { for: 'review-sort' }, 'Sort by'), select),
    ),
    status,
    items,
    more,
  );
  let cursor = null;
  let generation = 0;
  async function page(reset) {
    const mine = generation;
    if (reset) {
      cursor = null;
      mount(status, loading());
    }
    try {
      const res = await albumPage(albumId, { sort: select.value, limit: 10, cursor });
      if (mine !== generation) return;
      if (reset) items.replaceChildren();
      if (res.hidden) {
        mount(status, h('p', { class: 'empty', id: 'reviews-hidden' }, 'Reviews stay hidden until you rate this album (blind-first, on your profile).'));
        count.textContent = '';
        more.hidden = true;
        return;
      }
      mount(status, res.total ? null : h('p', { class: 'empty' }, 'No reviews yet.'));
      count.textContent = res.total ? `(${res.total.toLocaleString()})` : '';
      const added = res.items.map((r) => reviewItem(r));
      items.append(...added);
      applyLiked(items, res.items);
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(status, failure(err, () => page(reset)));
    }
  }
  const reload = () => {
    generation += 1;
    page(true);
  };
  select.addEventListener('change', reload);
  more.addEventListener('click', () => page(false));
  reload();
  return { reload };
}

/**
 * One review. `showAlbum`: an element naming the album (and author), for lists of reviews
 * of many albums; `blind`: blindness() of blind-first.js — a review of an album it hides
 * shows who wrote it and when, and a prompt to rate the album instead of the rating,
 * the text and the likes (one's own reviews always show).
 */
export function reviewItem(r, { showAlbum = null, blind = null } = {}) {
  const me = session.current()?.user.id === r.userId;
  const hidden = !me && blind?.(r.albumId);
  return h(
    'li',
    { class: `review${me ? ' review--mine' : ''}${hidden ? ' review--hidden' : ''}`, 'data-review-id': r.id },
    h(
      'div',
      { class: 'review__head' },
      showAlbum,
      showAlbum ? null : h('a', { href: `/users/${encodeURIComponent(r.userId)}`, class: 'review__author' }, r.username),
      me ? h('span', { class: 'tag' }, 'you') : null,
      hidden ? null : stars(r.rating),
      h('span', { class: 'muted small' }, timeEl(r.createdAt, fmtDate), r.updatedAt !== r.createdAt ? ' · edited' : ''),
    ),
    hidden
      ? h('p', { class: 'review__text' }, ratePrompt(r.albumId, 'Rate it first to read this review'))
      : [r.reviewText ? reviewText(r) : null, h('div', { class: 'review__foot' }, likeButton(r), discussButton(r))],
  );
}

/** "Discuss": opens the review's thread in the album's room (logged in only). */
function discussButton(r) {
  if (!session.current()) return null;
  const button = h('button', { type: 'button', class: 'link-btn review__discuss' }, 'Discuss in the room');
  button.addEventListener('click', () =>
    busy(button, async () => {
      try {
        await discussReview(r);
      } catch (err) {
        button.textContent = `Could not open the thread: ${err.message}`;
      }
    }),
  );
  return button;
}
