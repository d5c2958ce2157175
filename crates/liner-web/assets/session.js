// Who is logged in: the token and user from POST /users/login, kept in localStorage so
// a reload or a second tab stays logged in. A token that cannot be read, has run out,
// or that the server refused (401) is dropped, and the person is told to log in again.

const KEY = 'liner.session';
const listeners = new Set();
let expired = false;

/** The `exp` of a JWT in milliseconds, or null when the token cannot be read. */
export function tokenExpiry(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

function read() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    return s && typeof s.token === 'string' && s.user && typeof s.user.id === 'string' ? s : null;
  } catch {
    return null;
  }
}

/** The logged-in `{token, user:{id, username}}`, or null. */
export function current() {
  const s = read();
  if (!s) {
    if (localStorage.getItem(KEY) !== null) expire();
    return null;
  }
  const exp = tokenExpiry(s.token);
  if (exp === null || exp <= Date.now()) {
    expire();
    return null;
  }
  return s;
}

export function save(token, user) {
  localStorage.setItem(KEY, JSON.stringify({ token, user: { id: user.id, username: user.username } }));
  expired = false;
  notify();
}

/** Logging out on purpose. */
export function clear() {
  localStorage.removeItem(KEY);
  expired = false;
  notify();
}

/** The token is no good any more: forget it and say so. */
export function expire() {
  localStorage.removeItem(KEY);
  if (!expired) {
    expired = true;
    notify();
  }
}

export function isExpired() {
  return expired;
}

export function dismissExpired() {
  expired = false;
  notify();
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function notify() {
  for (const fn of listeners) fn();
}

// Another tab logged in or out.
window.addEventListener('storage', (e) => {
  if (e.key === KEY) notify();
});
