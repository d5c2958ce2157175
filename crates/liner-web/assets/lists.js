// Lists on other pages: "add this album to one of my lists" on the album page, and a
// person's lists on their profile (with a form for a new one on one's own).

import { REVIEWS, api, query } from './api.js';
import { busy, errorBox, failure, field, h, loading, mount, plural, showApiError } from './dom.js';
import { navigate } from './nav.js';
import * as session from './session.js';

/** The "Add to a list" form in `el` (shown only to a logged-in person with lists). */
export async function addToList(el, albumId) {
  const s = session.current();
  if (!s) return;
  let res;
  try {
    res = await api(`${REVIEWS}/users/${encodeURIComponent(s.user.id)}/lists?limit=100`);
  } catch {
    return;
  }
  el.hidden = false;
  if (!res.items.length) {
    const profile = h('a', { href: `/users/${encodeURIComponent(s.user.id)}` }, 'your profile');
    return mount(el, h('h2', {}, 'Lists'), h('p', { class: 'muted' }, 'Start a list on ', profile, ' to collect albums.'));
  }
  const select = h('select', { id: 'list-select' }, res.items.map((l) => h('option', { value: l.id }, l.name)));
  const note = h('input', { id: 'list-note', type: 'text', placeholder: 'Why it belongs (optional)' });
  const box = errorBox();
  const status = h('p', { class: 'form-status', role: 'status' });
  const add = h('button', { type: 'submit', class: 'btn', id: 'list-add' }, 'Add to list');
  const form = h(
    'form',
    { class: 'stack-form', novalidate: true, 'aria-labelledby': 'add-to-list-heading' },
    h('h2', { id: 'add-to-list-heading' }, 'Add to a list'),
    box.el,
    field('List', select),
    field('Note', note),
    h('div', { class: 'actions' }, add),
    status,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(add, async () => {
      status.textContent = '';
      try {
        const list = await api(`${REVIEWS}/lists/${encodeURIComponent(select.value)}/items`, { method: 'POST', body: { albumId, note: note.value } });
        box.show(null);
        note.value = '';
        mount(status, 'Added to ', h('a', { href: `/lists/${encodeURIComponent(list.id)}` }, list.name), '.');
      } catch (err) {
        showApiError(err, { note }, box);
      }
    });
  });
  mount(el, form);
}

/** A person's lists in `el`, newest first, with "New list" on one's own profile. */
export function listsSection(el, userId) {
  const own = session.current()?.user.id === userId;
  const items = h('ul', { class: 'list-links', id: 'user-lists' });
  const status = h('div', { role: 'status' }, loading());
  const more = h('button', { type: 'button', class: 'btn btn--ghost', hidden: true }, 'More lists');
  mount(el, h('h2', { id: 'user-lists-heading' }, 'Lists'), own ? newListForm() : null, status, items, more);
  let cursor = null;
  async function page() {
    try {
      const res = await api(`${REVIEWS}/users/${encodeURIComponent(userId)}/lists${query({ limit: 20, cursor })}`);
      mount(status, res.items.length || cursor ? null : h('p', { class: 'empty' }, 'No lists yet.'));
      items.append(
        ...res.items.map((l) =>
          h('li', {}, h('a', { href: `/lists/${encodeURIComponent(l.id)}` }, l.name), h('span', { class: 'muted small' }, plural(l.itemCount, 'album'))),
        ),
      );
      cursor = res.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      mount(status, failure(err, page));
    }
  }
  more.addEventListener('click', page);
  page();
}

function newListForm() {
  const name = h('input', { id: 'new-list-name', type: 'text', placeholder: 'Desert island records' });
  const box = errorBox();
  const create = h('button', { type: 'submit', class: 'btn btn--small', id: 'new-list-create' }, 'Create list');
  const form = h('form', { class: 'stack-form', novalidate: true }, box.el, field('New list', name), h('div', { class: 'actions' }, create));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(create, async () => {
      try {
        const list = await api(`${REVIEWS}/lists`, { method: 'POST', body: { name: name.value } });
        navigate(`/lists/${encodeURIComponent(list.id)}`);
      } catch (err) {
        showApiError(err, { name }, box);
      }
    });
  });
  return form;
}
