// Search results (/search?q=), the genre list (/genres) and one genre (/genres/<id>),
// all over GET /api/catalog/albums with "more" paging through nextCursor.

import { CATALOG, api, query, rememberAlbum } from './api.js';
import { failure, h, loading, mount, plural, setTitle } from './dom.js';
import { navigate } from './nav.js';
import { albumGrid } from './page-home.js';
import { roomWidget } from './page-room.js';

export function renderSearch(main, params) {
  const q = params.get('q')?.trim() ?? '';
  setTitle(q ? `“${q}”` : 'Search');
  const input = h('input', { type: 'search', name: 'q', id: 'search-q', value: q, autocomplete: 'off' });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  mount(
    main,
    h(
      'section',
      { class: 'panel' },
      h('h1', {}, q ? `Albums matching “${q}”` : 'Search albums'),
      h(
        'form',
        { class: 'inline-form', role: 'search', action: '/search', method: 'get' },
        h('label', { for: 'search-q' }, 'Title or artist'),
        input,
        h('button', { type: 'submit', class: 'btn' }, 'Search'),
      ),
      results,
    ),
  );
  main.querySelector('form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = input.value.trim();
    navigate(value ? `/search?q=${encodeURIComponent(value)}` : '/search');
  });
  if (q) pagedAlbums(results, { q }, 'No album matches. Try fewer words, or add the album.');
  else mount(results, h('p', { class: 'muted' }, 'Type words of a title or an artist, e.g. “blue train”.'));
}

export function renderGenres(main) {
  setTitle('Genres');
  const list = h('div', {}, loading());
  mount(main, h('section', { class: 'panel' }, h('h1', {}, 'Genres'), list));
  (async function load() {
    try {
      const genres = await api(`${CATALOG}/genres`);
      if (genres.length === 0) return mount(list, h('p', { class: 'empty' }, 'No genres yet.'));
      mount(
        list,
        h(
          'ul',
          { class: 'genre-list' },
          genres.map((g) =>
            h(
              'li',
              {},
              h('a', { href: `/genres/${encodeURIComponent(g.id)}` }, g.name),
              h('span', { class: 'muted small' }, plural(g.albumCount, 'album')),
            ),
          ),
        ),
      );
    } catch (err) {
      mount(list, failure(err, load));
    }
  })();
}

export function renderGenre(main, genreId) {
  setTitle(genreId);
  const heading = h('h1', {}, genreId);
  const results = h('div', { class: 'results' });
  const room = h('div', { class: 'genre-room' });
  mount(
    main,
    h(
      'section',
      { class: 'panel' },
      h('p', { class: 'crumbs' }, h('a', { href: '/genres' }, 'Genres')),
      h('div', { class: 'panel__head' }, heading, room),
      results,
    ),
  );
  api(`${CATALOG}/genres`)
    .then((genres) => {
      const g = genres.find((x) => x.id === genreId);
      if (g) {
        heading.textContent = g.name;
        setTitle(g.name);
      }
      roomWidget(room, { roomType: 'genre', genreId }, g?.name ?? genreId);
    })
    .catch(() => roomWidget(room, { roomType: 'genre', genreId }, genreId));
  pagedAlbums(results, { genre: genreId }, 'No albums in this genre yet.');
}

/** Albums for `filter`, with a "More" button while the server has a nextCursor. */
function pagedAlbums(el, filter, emptyText) {
  mount(el, loading());
  const more = h('button', { type: 'button', class: 'btn btn--ghost', id: 'more-albums' }, 'More albums');
  let cursor = null;
  let first = true;
  async function page() {
    try {
      const res = await api(`${CATALOG}/albums${query({ ...filter, limit: 24, cursor })}`);
      res.items.forEach(rememberAlbum);
      if (first) {
        first = false;
        if (res.items.length === 0) return mount(el, h('p', { class: 'empty' }, emptyText, ' ', h('a', { href: '/albums/new' }, 'Add an album'), '.'));
        mount(el, albumGrid([]), more);
      }
      el.querySelector('.album-grid').append(...albumGrid(res.items).children);
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(el, failure(err, page));
    }
  }
  more.addEventListener('click', page);
  page();
}
