// Home: search, this week's chart (scores joined with catalogue titles), live rooms,
// and the newest albums in the catalogue. For a blind-first person a charted album they
// have not rated keeps its place but shows a prompt to rate it instead of its score
// (blind-first.js): the order is what a chart is, the number is what would sway them.

import { CATALOG, FORUMS, REVIEWS, albumsById, api, rememberAlbum } from './api.js';
import { blindness, ratePrompt } from './blind-first.js';
import { cover, failure, fmtScore, h, loading, mount, plural, setTitle } from './dom.js';
import { navigate } from './nav.js';
import { roomLabel } from './page-room.js';

const PERIODS = [
  ['week', 'This week'],
  ['month', 'This month'],
  ['year', 'This year'],
  ['all', 'All time'],
];

export function render(main) {
  setTitle(null);
  const chart = h('div', { class: 'chart-body' }, loading());
  const rooms = h('div', {}, loading());
  const fresh = h('div', {}, loading());
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Chart period' });
  let period = 'week';
  const heading = h('h2', { id: 'chart-heading' }, 'Top albums this week');
  for (const [value, label] of PERIODS) {
    tabs.append(
      h('button', {
        type: 'button',
        class: 'tab',
        'aria-pressed': String(value === period),
        text: label,
        on: {
          click: (e) => {
            period = value;
            for (const b of tabs.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
            heading.textContent = `Top albums ${label.toLowerCase().replace('all time', 'of all time')}`;
            loadChart(chart, period);
          },
        },
      }),
    );
  }
  mount(
    main,
    h(
      'section',
      { class: 'hero' },
      h('h1', {}, 'Rate albums. Talk about them live.'),
      h('p', { class: 'hero__lede' }, 'Find a record, give it stars, and join the room where people are listening right now.'),
      searchForm(),
    ),
    h(
      'div',
      { class: 'home-grid' },
      h('section', { class: 'panel', 'aria-labelledby': 'chart-heading' }, h('div', { class: 'panel__head' }, heading, tabs), chart),
      h(
        'aside',
        { class: 'home-side' },
        h('section', { class: 'panel', 'aria-labelledby': 'rooms-heading' }, h('h2', { id: 'rooms-heading' }, 'Live rooms'), rooms),
      ),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'fresh-heading' }, h('h2', { id: 'fresh-heading' }, 'New in the catalogue'), fresh),
  );
  loadChart(chart, period);
  loadRooms(rooms);
  loadFresh(fresh);
}

function searchForm() {
  const input = h('input', { type: 'search', name: 'q', id: 'home-q', placeholder: 'Kind of Blue, Radiohead, Aphex…', autocomplete: 'off' });
  return h(
    'form',
    { class: 'hero-search', role: 'search', action: '/search', method: 'get', on: { submit: submitSearch } },
    h('label', { for: 'home-q', class: 'visually-hidden' }, 'Search albums and artists'),
    input,
    h('button', { type: 'submit', class: 'btn' }, 'Search'),
  );
}

function submitSearch(e) {
  e.preventDefault();
  const q = new FormData(e.target).get('q')?.toString().trim() ?? '';
  navigate(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
}

async function loadChart(el, period) {
  mount(el, loading());
  try {
    const [chart, blind] = await Promise.all([api(`${REVIEWS}/charts?period=${period}&limit=10`), blindness()]);
    const albums = await albumsById(chart.items.map((i) => i.albumId));
    if (chart.items.length === 0) {
      return mount(el, h('p', { class: 'empty' }, 'No ratings in this period yet. Find an album and be the first.'));
    }
    mount(
      el,
      h(
        'ol',
        { class: 'chart' },
        chart.items.map((item, i) => chartRow(item, albums[i], i + 1, blind(item.albumId))),
      ),
    );
  } catch (err) {
    mount(el, failure(err, () => loadChart(el, period)));
  }
}

function chartRow(item, album, rank, hidden) {
  const href = `/albums/${encodeURIComponent(item.albumId)}`;
  return h(
    'li',
    { class: 'chart__row', 'data-album-id': item.albumId },
    h('span', { class: 'chart__rank', 'aria-hidden': 'true' }, String(rank)),
    cover(album ?? { id: item.albumId, title: item.albumId }, 'sm'),
    h(
      'div',
      { class: 'chart__what' },
      h('a', { href, class: 'chart__title' }, album?.title ?? item.albumId),
      h('span', { class: 'muted' }, album ? `${album.artist}${album.year ? ` · ${album.year}` : ''}` : 'not in the catalogue'),
    ),
    h(
      'div',
      { class: 'chart__score' },
      hidden
        ? ratePrompt(item.albumId)
        : [h('span', { class: 'score-pill', title: 'Weighted score' }, fmtScore(item.score?.weighted)), h('span', { class: 'muted small' }, plural(item.total, 'rating'))],
    ),
  );
}

async function loadRooms(el) {
  try {
    const rooms = await api(`${FORUMS}/rooms`);
    if (rooms.length === 0) return mount(el, h('p', { class: 'empty' }, 'No open rooms. Open one from an album page.'));
    rooms.sort((a, b) => b.online - a.online);
    const albums = await albumsById(rooms.slice(0, 12).map((r) => r.albumId).filter(Boolean));
    const byId = new Map(albums.filter(Boolean).map((a) => [a.id, a]));
    mount(
      el,
      h(
        'ul',
        { class: 'room-list' },
        rooms.slice(0, 12).map((r) =>
          h(
            'li',
            {},
            h('a', { href: `/rooms/${encodeURIComponent(r.id)}` }, roomLabel(r, byId.get(r.albumId))),
            h('span', { class: `online-badge${r.online ? ' is-live' : ''}` }, `${r.online} online`),
          ),
        ),
      ),
    );
  } catch (err) {
    mount(el, failure(err, () => loadRooms(el)));
  }
}

async function loadFresh(el) {
  try {
    const page = await api(`${CATALOG}/albums?limit=12`);
    page.items.forEach(rememberAlbum);
    if (page.items.length === 0) return mount(el, h('p', { class: 'empty' }, 'The catalogue is empty.'));
    mount(el, albumGrid(page.items));
  } catch (err) {
    mount(el, failure(err, () => loadFresh(el)));
  }
}

/** Cards of albums, shared with search and genre pages. */
export function albumGrid(albums) {
  return h('ul', { class: 'album-grid' }, albums.map(albumCard));
}

export function albumCard(a) {
  return h(
    'li',
    { class: 'album-card' },
    cover(a, 'md'),
    h('a', { href: `/albums/${encodeURIComponent(a.id)}`, class: 'album-card__title' }, a.title),
    h('span', { class: 'album-card__artist' }, a.artist),
    a.year ? h('span', { class: 'muted small' }, String(a.year)) : null,
  );
}
