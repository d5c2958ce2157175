// The logged-in person's own settings (GET/PUT /users/me/settings), read once per
// session and page life. Today one: blind-first — album pages ask for `blind=true`, so
// the score and reviews stay hidden until the person has rated the album.

import { REVIEWS, api } from './api.js';
import * as session from './session.js';

let cached = null; // { token, promise }

/** Whether the logged-in person wants albums hidden until they rate them (false when logged out). */
export function blindFirst() {
  const s = session.current();
  if (!s) return Promise.resolve(false);
  if (cached?.token !== s.token) {
    const promise = api(`${REVIEWS}/users/me/settings`, { auth: true, expire: false })
      .then((r) => r.blindFirst === true)
      .catch(() => false);
    cached = { token: s.token, promise };
  }
  return cached.promise;
}

export async function setBlindFirst(on) {
  const r = await api(`${REVIEWS}/users/me/settings`, { method: 'PUT', body: { blindFirst: on } });
  cached = { token: session.current()?.token, promise: Promise.resolve(r.blindFirst === true) };
  return r.blindFirst === true;
}
