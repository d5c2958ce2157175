// One list, public: its name, owner, description and albums in order with their notes.
// Its owner can rename it and change its description, edit each album's note, move
// albums up and down (the whole new order is sent), remove them, and delete the list; albums are added from
// their own pages ("Add to a list").

import { REVIEWS, albumsById, api } from './api.js';
import { busy, cover, errorBox, failure, field, h, loading, mount, plural, setTitle, showApiError } from './dom.js';
import { navigate } from './nav.js';
import * as session from './session.js';

export function render(main, listId) {
  setTitle('List');
  const el = h('section', { class: 'panel' }, loading());
  mount(main, el);
  const path = `${REVIEWS}/lists/${encodeURIComponent(listId)}`;
  async function load() {
    try {
      show(await api(path));
    } catch (err) {
      mount(el, err.status === 404 ? h('h1', {}, 'No such list') : failure(err, load));
    }
  }
  async function show(list) {
    setTitle(list.name);
    const own = session.current()?.user.id === list.userId;
    const albums = await albumsById(list.items.map((i) => i.albumId));
    const order = list.items.map((i) => i.albumId);
    const change = (fn) => async () => {
      try {
        show(await fn());
      } catch (err) {
        mount(status, failure(err, load));
      }
    };
    const move = (from, to) => {
      const next = [...order];
      next.splice(to, 0, ...next.splice(from, 1));
      return change(() => api(`${path}/items`, { method: 'PUT', body: { albumIds: next } }));
    };
    const remove = (albumId) =>
      change(async () => {
        await api(`${path}/items/${encodeURIComponent(albumId)}`, { method: 'DELETE' });
        return api(path);
      });
    const status = h('div', { role: 'status' });
    const items = list.items.map((item, i) =>
      h(
        'li',
        { class: 'list-item', 'data-album-id': item.albumId },
        h('span', { class: 'list-item__pos', 'aria-hidden': 'true' }, item.position),
        cover(albums[i] ?? { id: item.albumId, title: item.albumId }, 'sm'),
        h(
          'div',
          { class: 'list-item__text' },
          h('a', { href: `/albums/${encodeURIComponent(item.albumId)}`, class: 'list-item__title' }, albums[i]?.title ?? item.albumId),
          albums[i] ? h('span', { class: 'muted' }, ` ${albums[i].artist}`) : null,
          item.note ? h('p', { class: 'list-item__note' }, item.note) : null,
          own ? noteEditor(`${path}/items/${encodeURIComponent(item.albumId)}`, item.note, albums[i]?.title ?? item.albumId, show) : null,
        ),
        own ? itemActions(i, order.length, albums[i]?.title ?? item.albumId, move, () => remove(item.albumId)) : null,
      ),
    );
    mount(
      el,
      h('p', { class: 'eyebrow' }, 'List'),
      h('h1', { id: 'list-name' }, list.name),
      h('p', { class: 'muted' }, 'by ', h('a', { href: `/users/${encodeURIComponent(list.userId)}`, id: 'list-owner' }, list.username), ` · ${plural(list.itemCount, 'album')}`),
      list.description ? h('p', { class: 'list-description' }, list.description) : null,
      status,
      items.length ? h('ol', { class: 'list-items', id: 'list-items' }, items) : h('p', { class: 'empty' }, own ? 'Add albums from their pages ("Add to a list").' : 'No albums yet.'),
      own ? editForm(path, list, show) : null,
      own ? deleteButton(path, list.userId) : null,
    );
  }
  load();
}

function itemActions(i, count, title, move, remove) {
  const button = (label, text, fn, disabled) =>
    h('button', { type: 'button', class: 'btn btn--ghost btn--small', 'aria-label': `${label} ${title}`, disabled, on: { click: (e) => busy(e.currentTarget, fn) } }, text);
  return h(
    'div',
    { class: 'list-item__actions' },
    button('Move up', '↑', move(i, i - 1), i === 0),
    button('Move down', '↓', move(i, i + 1), i === count - 1),
    button('Remove', 'Remove', remove(), false),
  );
}

/** "Edit note" for one album of one's list: a small form behind a button (PUT …/items/{albumId}). */
function noteEditor(itemPath, note, title, show) {
  const open = h('button', { type: 'button', class: 'btn btn--ghost btn--small note-edit', 'aria-label': `Edit note of ${title}` }, 'Edit note');
  const input = h('textarea', { class: 'note-input', name: 'note', rows: 2, maxlength: 1000, 'aria-label': `Note for ${title}` });
  input.value = note;
  const box = errorBox();
  const save = h('button', { type: 'submit', class: 'btn btn--small' }, 'Save note');
  const form = h('form', { class: 'note-form', hidden: true, novalidate: true }, box.el, input, save);
  open.addEventListener('click', () => {
    form.hidden = false;
    open.hidden = true;
    input.focus();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      try {
        show(await api(itemPath, { method: 'PUT', body: { note: input.value } }));
      } catch (err) {
        box.show(err.message);
      }
    });
  });
  return h('div', {}, open, form);
}

/** The owner's form for the list's name and description (PUT /lists/{id}). */
function editForm(path, list, show) {
  const name = h('input', { id: 'list-edit-name', name: 'name', maxlength: 100, required: true });
  const description = h('textarea', { id: 'list-edit-description', name: 'description', rows: 3 });
  name.value = list.name;
  description.value = list.description;
  const box = errorBox();
  const save = h('button', { type: 'submit', class: 'btn' }, 'Save list');
  const form = h('form', { class: 'list-edit', id: 'list-edit', novalidate: true }, h('h2', {}, 'Edit list'), box.el, field('Name', name), field('Description', description), save);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, async () => {
      try {
        show(await api(path, { method: 'PUT', body: { name: name.value, description: description.value } }));
      } catch (err) {
        showApiError(err, { name, description }, box);
      }
    });
  });
  return form;
}

function deleteButton(path, userId) {
  const del = h('button', { type: 'button', class: 'btn btn--danger', id: 'list-delete' }, 'Delete list');
  del.addEventListener('click', () => {
    if (!del.dataset.confirm) {
      del.dataset.confirm = '1';
      del.textContent = 'Really delete?';
      return;
    }
    busy(del, async () => {
      await api(path, { method: 'DELETE' });
      navigate(`/users/${encodeURIComponent(userId)}`);
    });
  });
  return h('div', { class: 'actions list-actions' }, del);
}
