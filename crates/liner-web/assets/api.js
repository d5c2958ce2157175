// The one way the client talks to the server: fetch on the same origin, JSON both ways,
// the bearer token on writes, and errors in the API shape turned into ApiError. A 401
// on a request that carried the token means the session is over (session.expire).

import * as session from './session.js';

export const REVIEWS = '/api/users-reviews';
export const FORUMS = '/api/forums';
export const CATALOG = '/api/catalog';

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The request field a 422 message names ("rating: must be…", "missing field `rating`"). */
  get field() {
    const m = /^([A-Za-z][A-Za-z0-9_]*):/.exec(this.message) ?? /`([A-Za-z][A-Za-z0-9_]*)`/.exec(this.message);
    return m ? m[1] : null;
  }
}

/** `?a=1&b=2` from an object, leaving out null, undefined and empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * `expire: false` for background reads (one's settings): a refused token is then left
 * for the person's next action to report, instead of logging them out on page load.
 */
export async function api(path, { method = 'GET', body, auth = method !== 'GET', expire = auth } = {}) {
  const headers = { accept: 'application/json' };
  if (auth) {
    const s = session.current();
    if (!s) throw new ApiError(401, 'login_required', 'Log in to do that.');
    headers.authorization = `Bearer ${s.token}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach Liner. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data?.error ?? {};
    if (res.status === 401 && expire) session.expire();
    const retry = res.headers.get('retry-after');
    const message = err.message ?? `The server answered ${res.status}.`;
    throw new ApiError(res.status, err.code ?? `http_${res.status}`, retry ? `${message} (try again in ${retry} s)` : message, err);
  }
  return data;
}

const albums = new Map();

/** A catalogue album by id (cached for the page's life), or null when the catalogue has none. */
export function album(id) {
  if (!albums.has(id)) {
    const p = api(`${CATALOG}/albums/${encodeURIComponent(id)}`).catch((e) => {
      albums.delete(id);
      if (e.status === 404) return null;
      throw e;
    });
    albums.set(id, p);
  }
  return albums.get(id);
}

export function rememberAlbum(a) {
  albums.set(a.id, Promise.resolve(a));
}

/** Albums by id, in parallel; unknown ones (or a catalogue that is down) as null. */
export function albumsById(ids) {
  return Promise.all(ids.map((id) => album(id).catch(() => null)));
}
