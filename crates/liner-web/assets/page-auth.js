// Sign up and log in. After either, the person goes back where they came from (`?next=`).

import { REVIEWS, api } from './api.js';
import { busy, errorBox, field, h, mount, setTitle, showApiError } from './dom.js';
import { navigate } from './nav.js';
import * as session from './session.js';

/** Only a path on this site (never `//other.example`). */
function nextUrl(params) {
  const next = params.get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function renderLogin(main, params) {
  setTitle('Log in');
  const username = h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const box = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn btn--wide' }, 'Log in');
  const form = h(
    'form',
    { class: 'auth-form', novalidate: true },
    box.el,
    field('Username or email', username),
    field('Password', password),
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      try {
        await logIn(username.value.trim(), password.value);
        navigate(nextUrl(params), { replace: true });
      } catch (err) {
        showApiError(err, { username, password }, box);
      }
    });
  });
  mount(
    main,
    h(
      'section',
      { class: 'panel narrow' },
      h('h1', {}, 'Log in'),
      session.isExpired() ? h('p', { class: 'muted' }, 'Your session expired. Log in again to go on.') : null,
      form,
      h('p', { class: 'muted' }, 'New here? ', h('a', { href: `/signup?next=${encodeURIComponent(nextUrl(params))}` }, 'Create an account'), '.'),
    ),
  );
  username.focus();
}

export function renderSignup(main, params) {
  setTitle('Sign up');
  const username = h('input', { id: 'signup-username', name: 'username', autocomplete: 'username', required: true });
  const email = h('input', { id: 'signup-email', name: 'email', type: 'email', autocomplete: 'email', required: true });
  const password = h('input', { id: 'signup-password', name: 'password', type: 'password', autocomplete: 'new-password', required: true });
  const box = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn btn--wide' }, 'Create account');
  const form = h(
    'form',
    { class: 'auth-form', novalidate: true },
    box.el,
    field('Username', username, { hint: '3–32 letters, digits, “_”, “.” or “-”.' }),
    field('Email', email),
    field('Password', password, { hint: 'At least 8 characters.' }),
    submit,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      try {
        await api(`${REVIEWS}/users/register`, {
          method: 'POST',
          auth: false,
          body: { username: username.value.trim(), email: email.value.trim(), password: password.value },
        });
        await logIn(username.value.trim(), password.value);
        navigate(nextUrl(params), { replace: true });
      } catch (err) {
        showApiError(err, { username, email, password }, box);
      }
    });
  });
  mount(
    main,
    h(
      'section',
      { class: 'panel narrow' },
      h('h1', {}, 'Create your account'),
      h('p', { class: 'muted' }, 'Rate albums, write reviews, and chat in listening rooms.'),
      form,
      h('p', { class: 'muted' }, 'Already have an account? ', h('a', { href: `/login?next=${encodeURIComponent(nextUrl(params))}` }, 'Log in'), '.'),
    ),
  );
  username.focus();
}

async function logIn(username, password) {
  const res = await api(`${REVIEWS}/users/login`, { method: 'POST', auth: false, body: { username, password } });
  session.save(res.token, res.user);
}
