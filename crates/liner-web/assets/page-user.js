// A profile: username, member since, review count and average, followers and following
// (with a Follow button for others), their lists, and their reviews (newest first,
// "more" paging), each with the album's title from the catalogue. On one's own profile:
// the blind-first setting (album scores and reviews hidden until one has rated them);
// with it on, their reviews of albums one has not rated show only a prompt to rate it.

import { REVIEWS, albumsById, api, query } from './api.js';
import { blindness } from './blind-first.js';
import { cover, failure, fmtDate, fmtScore, h, loading, mount, setTitle } from './dom.js';
import { listsSection } from './lists.js';
import { reviewItem } from './page-album.js';
import * as session from './session.js';
import { blindFirst, setBlindFirst } from './settings.js';
import { followButton } from './social.js';

export function render(main, userId) {
  setTitle('Profile');
  const head = h('section', { class: 'panel profile' }, loading());
  const list = h('ol', { class: 'reviews reviews--with-album', id: 'user-reviews' });
  const more = h('button', { type: 'button', class: 'btn btn--ghost', hidden: true }, 'More reviews');
  const status = h('div', { role: 'status' });
  const lists = h('section', { class: 'panel', 'aria-labelledby': 'user-lists-heading' });
  listsSection(lists, userId);
  mount(main, head, lists, h('section', { class: 'panel', 'aria-labelledby': 'user-reviews-heading' }, h('h2', { id: 'user-reviews-heading' }, 'Reviews'), status, list, more));

  (async function loadProfile() {
    try {
      const p = await api(`${REVIEWS}/users/profile/${encodeURIComponent(userId)}`);
      setTitle(p.username);
      const followers = h('dd', { id: 'profile-followers' }, p.followers.toLocaleString());
      const follow = followButton(userId, (n) => (followers.textContent = n.toLocaleString()));
      mount(
        head,
        h('div', { class: 'avatar', 'aria-hidden': 'true' }, [...p.username][0].toUpperCase()),
        h(
          'div',
          {},
          h('div', { class: 'profile__name' }, h('h1', { id: 'profile-name' }, p.username), follow),
          h('p', { class: 'muted' }, `Member since ${fmtDate(p.createdAt)} · `, h('a', { href: `/users/${encodeURIComponent(userId)}/likes`, id: 'profile-likes' }, 'Liked reviews')),
          h(
            'dl',
            { class: 'profile__stats' },
            h('div', {}, h('dt', {}, 'Reviews'), h('dd', { id: 'profile-count' }, p.reviewCount.toLocaleString())),
            h('div', {}, h('dt', {}, 'Average rating'), h('dd', { id: 'profile-average' }, fmtScore(p.averageRating))),
            h('div', {}, h('dt', {}, 'Followers'), followers),
            h('div', {}, h('dt', {}, 'Following'), h('dd', { id: 'profile-following' }, p.following.toLocaleString())),
          ),
          session.current()?.user.id === userId ? blindToggle() : null,
        ),
      );
    } catch (err) {
      mount(head, err.status === 404 ? h('h1', {}, 'No such user') : failure(err, loadProfile));
    }
  })();

  let cursor = null;
  async function page() {
    if (!cursor) mount(status, loading());
    try {
      const res = await api(`${REVIEWS}/reviews/user/${encodeURIComponent(userId)}${query({ limit: 20, cursor })}`);
      const [albums, blind] = await Promise.all([albumsById(res.items.map((r) => r.albumId)), blindness()]);
      mount(status, res.total ? null : h('p', { class: 'empty' }, 'No reviews yet.'));
      list.append(...res.items.map((r, i) => reviewItem(r, { showAlbum: albumLink(r.albumId, albums[i]), blind })));
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(status, failure(err, page));
    }
  }
  more.addEventListener('click', page);
  page();
}

/** The blind-first switch on one's own profile, saved as soon as it changes. */
function blindToggle() {
  const box = h('input', { type: 'checkbox', id: 'blind-first', disabled: true });
  const status = h('span', { class: 'muted small', role: 'status' });
  blindFirst().then((on) => {
    box.checked = on;
    box.disabled = false;
  });
  box.addEventListener('change', async () => {
    box.disabled = true;
    try {
      box.checked = await setBlindFirst(box.checked);
      status.textContent = 'Saved.';
    } catch (err) {
      box.checked = !box.checked;
      status.textContent = err.message;
    } finally {
      box.disabled = false;
    }
  });
  return h(
    'p',
    { class: 'blind-setting' },
    box,
    ' ',
    h('label', { for: 'blind-first' }, 'Blind-first: hide an album\'s score and reviews until I have rated it'),
    ' ',
    status,
  );
}

export function albumLink(albumId, album) {
  return h(
    'span',
    { class: 'review__album' },
    cover(album ?? { id: albumId, title: albumId }, 'xs'),
    h('a', { href: `/albums/${encodeURIComponent(albumId)}` }, album ? album.title : albumId),
    album ? h('span', { class: 'muted' }, ` ${album.artist}`) : null,
  );
}

/** The album of a review and who wrote it, for lists of many people's reviews. */
export function albumByAuthor(r, album) {
  return h(
    'span',
    {},
    albumLink(r.albumId, album),
    h('span', { class: 'muted' }, ' by '),
    h('a', { href: `/users/${encodeURIComponent(r.userId)}`, class: 'review__author' }, r.username),
  );
}
