// The feed: reviews by the people one follows, newest first, "more" paging with the
// server's opaque cursor (keyset: a review written meanwhile neither repeats nor hides one).
// For a blind-first person, reviews of albums they have not rated show only a prompt
// to rate the album (blind-first.js).

import { REVIEWS, albumsById, api, query } from './api.js';
import { blindness } from './blind-first.js';
import { failure, h, loading, mount, setTitle } from './dom.js';
import { loginUrl } from './nav.js';
import { reviewItem } from './page-album.js';
import { albumByAuthor } from './page-user.js';
import * as session from './session.js';

export function render(main) {
  setTitle('Feed');
  if (!session.current()) {
    return mount(main, h('section', { class: 'panel narrow' }, h('h1', {}, 'Your feed'), h('p', {}, h('a', { href: loginUrl() }, 'Log in'), ' to see reviews by the people you follow.')));
  }
  const list = h('ol', { class: 'reviews reviews--with-album', id: 'feed' });
  const more = h('button', { type: 'button', class: 'btn btn--ghost', id: 'more-feed', hidden: true }, 'More reviews');
  const status = h('div', { role: 'status' }, loading());
  mount(main, h('section', { class: 'panel', 'aria-labelledby': 'feed-heading' }, h('h1', { id: 'feed-heading' }, 'Your feed'), status, list, more));
  let cursor = null;
  async function page() {
    try {
      const res = await api(`${REVIEWS}/feed${query({ limit: 20, cursor })}`, { auth: true });
      const [albums, blind] = await Promise.all([albumsById(res.items.map((r) => r.albumId)), blindness()]);
      const empty = !res.items.length && !cursor;
      mount(status, empty ? h('p', { class: 'empty' }, 'Nothing yet: follow people from their profiles to see their reviews here.') : null);
      list.append(...res.items.map((r, i) => reviewItem(r, { showAlbum: albumByAuthor(r, albums[i]), blind })));
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(status, failure(err, page));
    }
  }
  more.addEventListener('click', page);
  page();
}
