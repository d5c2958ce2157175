// The reviews a person liked (GET /users/{id}/likes), the latest like first, "more"
// paging with the server's cursor; linked from their profile. For a blind-first reader,
// reviews of albums they have not rated show only a prompt to rate it (blind-first.js).

import { REVIEWS, albumsById, api, query } from './api.js';
import { blindness } from './blind-first.js';
import { failure, h, loading, mount, setTitle } from './dom.js';
import { reviewItem } from './page-album.js';
import { albumByAuthor } from './page-user.js';
import { applyLiked } from './social.js';

export function render(main, userId) {
  setTitle('Liked reviews');
  const list = h('ol', { class: 'reviews reviews--with-album', id: 'liked-reviews' });
  const more = h('button', { type: 'button', class: 'btn btn--ghost', id: 'more-liked', hidden: true }, 'More reviews');
  const status = h('div', { role: 'status' }, loading());
  const back = h('a', { href: `/users/${encodeURIComponent(userId)}` }, 'Back to the profile');
  mount(main, h('section', { class: 'panel', 'aria-labelledby': 'liked-heading' }, h('h1', { id: 'liked-heading' }, 'Liked reviews'), h('p', {}, back), status, list, more));
  let cursor = null;
  async function page() {
    try {
      const res = await api(`${REVIEWS}/users/${encodeURIComponent(userId)}/likes${query({ limit: 20, cursor })}`);
      const [albums, blind] = await Promise.all([albumsById(res.items.map((r) => r.albumId)), blindness()]);
      const empty = !res.items.length && !cursor;
      mount(status, empty ? h('p', { class: 'empty' }, 'No liked reviews yet.') : null);
      list.append(...res.items.map((r, i) => reviewItem(r, { showAlbum: albumByAuthor(r, albums[i]), blind })));
      applyLiked(list, res.items);
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(status, err.status === 404 ? h('p', {}, 'No such user.') : failure(err, page));
    }
  }
  more.addEventListener('click', page);
  page();
}
