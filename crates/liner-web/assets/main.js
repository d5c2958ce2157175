// The client-side router: every path outside /api/ loads index.html, and this module
// renders the page the path names. Links on the same origin are followed without a
// reload (history.pushState); the header shows who is logged in, and a banner says
// when a session has expired.

import { h, mount, setTitle } from './dom.js';
import { ROUTE_EVENT, here, loginUrl, navigate } from './nav.js';
import * as session from './session.js';
import * as home from './page-home.js';
import * as search from './page-search.js';
import * as album from './page-album.js';
import * as addAlbum from './page-add-album.js';
import * as user from './page-user.js';
import * as auth from './page-auth.js';
import * as room from './page-room.js';
import * as feed from './page-feed.js';
import * as list from './page-list.js';
import * as likes from './page-likes.js';

const ROUTES = [
  [/^\/$/, home.render],
  [/^\/search$/, search.renderSearch],
  [/^\/genres$/, search.renderGenres],
  [/^\/genres\/([^/]+)$/, search.renderGenre],
  [/^\/albums\/new$/, addAlbum.render],
  [/^\/albums\/([^/]+)$/, album.render],
  [/^\/users\/([^/]+)$/, user.render],
  [/^\/users\/([^/]+)\/likes$/, likes.render],
  [/^\/rooms\/([^/]+)$/, room.render],
  [/^\/feed$/, feed.render],
  [/^\/lists\/([^/]+)$/, list.render],
  [/^\/login$/, auth.renderLogin],
  [/^\/signup$/, auth.renderSignup],
];

const main = document.getElementById('main');
let cleanup = null;
let firstRender = true;

function notFound(el) {
  setTitle('Not found');
  mount(
    el,
    h('section', { class: 'panel narrow' }, h('h1', {}, 'Nothing here'), h('p', {}, 'This page does not exist. ', h('a', { href: '/' }, 'Go home'), '.')),
  );
}

function render() {
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  main.replaceChildren();
  let page = notFound;
  let args = [];
  for (const [pattern, fn] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      page = fn;
      try {
        args = m.slice(1).map(decodeURIComponent);
      } catch {
        page = notFound;
      }
      break;
    }
  }
  cleanup = page(main, ...args, params);
  renderNav();
  const q = document.getElementById('header-q');
  if (q && document.activeElement !== q) q.value = path === '/search' ? (params.get('q') ?? '') : '';
  if (!firstRender) {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  firstRender = false;
}

function renderNav() {
  const s = session.current();
  const nav = document.getElementById('site-nav');
  const links = [h('a', { href: '/genres' }, 'Genres')];
  if (s) {
    links.push(
      h('a', { href: '/feed' }, 'Feed'),
      h('a', { href: '/albums/new' }, 'Add album'),
      h('a', { href: `/users/${encodeURIComponent(s.user.id)}`, class: 'nav-user' }, s.user.username),
      h('button', { type: 'button', class: 'btn btn--ghost btn--small', on: { click: logOut } }, 'Log out'),
    );
  } else {
    links.push(h('a', { href: loginUrl() }, 'Log in'), h('a', { href: '/signup', class: 'btn btn--small' }, 'Sign up'));
  }
  mount(nav, links);
  for (const a of nav.querySelectorAll('a')) {
    if (a.pathname === location.pathname) a.setAttribute('aria-current', 'page');
  }
  renderNotice();
}

function renderNotice() {
  const notice = document.getElementById('notice');
  if (!session.isExpired()) return mount(notice);
  mount(
    notice,
    h(
      'div',
      { class: 'notice' },
      h('p', {}, h('strong', {}, 'Your session expired.'), ' Log in again to keep rating and chatting.'),
      h('a', { class: 'btn btn--small', href: loginUrl(), id: 'session-expired-login' }, 'Log in again'),
      h('button', { type: 'button', class: 'btn btn--ghost btn--small', on: { click: () => session.dismissExpired() } }, 'Dismiss'),
    ),
  );
}

function logOut() {
  session.clear();
  navigate('/');
}

// Same-origin links navigate in place; new tabs, downloads and /api/ links stay normal.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
  if (a.pathname.startsWith('/api/') || (a.hash && a.pathname + a.search === here())) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});

document.querySelector('.header-search')?.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = new FormData(e.target).get('q')?.toString().trim() ?? '';
  navigate(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
});

window.addEventListener('popstate', render);
window.addEventListener(ROUTE_EVENT, render);
session.onChange(renderNav);
session.current(); // drops an unreadable or expired token before the first page
render();
