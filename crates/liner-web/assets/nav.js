// Client-side navigation: push a URL and let the router (main.js) render it. Kept apart
// from the router so that pages can navigate without importing it (no import cycle).

export const ROUTE_EVENT = 'liner:route';

export function navigate(url, { replace = false } = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  window.dispatchEvent(new Event(ROUTE_EVENT));
}

/** The current path and query, for "come back here after logging in". */
export function here() {
  return location.pathname + location.search;
}

export function loginUrl(next = here()) {
  return `/login?next=${encodeURIComponent(next)}`;
}
