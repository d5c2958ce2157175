// Adding an album to the catalogue (logged in). A duplicate (409) links to the album
// that is already there.

import { CATALOG, api, rememberAlbum } from './api.js';
import { busy, errorBox, field, h, mount, setTitle, showApiError } from './dom.js';
import { loginUrl, navigate } from './nav.js';
import * as session from './session.js';

export function render(main) {
  setTitle('Add an album');
  if (!session.current()) {
    return mount(
      main,
      h('section', { class: 'panel narrow' }, h('h1', {}, 'Add an album'), h('p', { class: 'login-prompt' }, h('a', { href: loginUrl() }, 'Log in'), ' to add albums to the catalogue.')),
    );
  }
  const title = h('input', { id: 'album-title', name: 'title' });
  const artist = h('input', { id: 'album-artist', name: 'artist' });
  const year = h('input', { id: 'album-year', name: 'year', inputmode: 'numeric' });
  const genres = h('input', { id: 'album-genres', name: 'genres', placeholder: 'jazz, hard-bop' });
  const mbid = h('input', { id: 'album-mbid', name: 'mbid', placeholder: 'optional' });
  const box = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn' }, 'Add album');
  const form = h(
    'form',
    { class: 'stack-form', novalidate: true },
    box.el,
    field('Title', title),
    field('Artist', artist),
    field('Year', year),
    field('Genres', genres, { hint: 'Genre ids separated by commas: lowercase letters, digits and “-”.' }),
    field('MusicBrainz release-group id', mbid),
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      const body = { title: title.value.trim(), artist: artist.value.trim() };
      if (year.value.trim()) body.year = /^\d+$/.test(year.value.trim()) ? Number(year.value.trim()) : year.value.trim();
      const g = genres.value.split(',').map((x) => x.trim()).filter(Boolean);
      if (g.length) body.genres = g;
      if (mbid.value.trim()) body.mbid = mbid.value.trim();
      try {
        const album = await api(`${CATALOG}/albums`, { method: 'POST', body });
        rememberAlbum(album);
        navigate(`/albums/${encodeURIComponent(album.id)}`);
      } catch (err) {
        if (err.status === 409 && err.details.existingId) {
          return box.show('This album is already in the catalogue: ', h('a', { href: `/albums/${encodeURIComponent(err.details.existingId)}`, id: 'existing-album' }, 'go to it'), '.');
        }
        showApiError(err, { title, artist, year, genres, mbid }, box);
      }
    });
  });
  mount(main, h('section', { class: 'panel narrow' }, h('h1', {}, 'Add an album'), h('p', { class: 'muted' }, 'Can’t find a record? Add it, then rate it.'), form));
}
