// Small DOM helpers: build elements (text always as text nodes, never HTML, so nothing
// a user wrote can run as markup), form fields with their error line, album covers.

/** h('a', {href, class, on: {click}}, ...children): an element. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [type, fn] of Object.entries(v)) el.addEventListener(type, fn);
    else if (k in el && !k.includes('-') && k !== 'list' && k !== 'form') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let counter = 0;
export function uid(prefix = 'id') {
  counter += 1;
  return `${prefix}-${counter}`;
}

export function setTitle(text) {
  document.title = text ? `${text} · Liner` : 'Liner — rate albums, talk live';
}

const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export function fmtDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : dateFormat.format(d);
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : timeFormat.format(d);
}

export function timeEl(iso, format = fmtDate) {
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, format(iso));
}

export function fmtScore(x, digits = 2) {
  return x === null || x === undefined ? '–' : Number(x).toFixed(digits);
}

export function plural(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/** A visually hidden text, for screen readers. */
export function srOnly(text) {
  return h('span', { class: 'visually-hidden' }, text);
}

/** A cover stand-in: a gradient picked from the id and the title's initials (no images). */
export function cover(album, size = 'md') {
  const key = album?.id ?? '';
  let hash = 0;
  for (const ch of key) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const title = album?.title ?? '?';
  const initials = title
    .split(/\s+/)
    .filter((w) => /\p{L}|\p{N}/u.test(w))
    .slice(0, 2)
    .map((w) => [...w.replace(/^[^\p{L}\p{N}]+/u, '')][0] ?? '')
    .join('')
    .toUpperCase();
  return h('div', { class: `cover cover--${size} cover--c${hash % 12}`, 'aria-hidden': 'true' }, h('span', {}, initials || '♪'));
}

/** A labelled form field with its own error line (filled from the server's 422 message). */
export function field(label, input, { hint } = {}) {
  if (!input.id) input.id = uid('field');
  const error = h('p', { class: 'field-error', id: `${input.id}-error`, hidden: true });
  const hintEl = hint ? h('p', { class: 'field-hint', id: `${input.id}-hint` }, hint) : null;
  input.setAttribute('aria-describedby', [hintEl?.id, error.id].filter(Boolean).join(' '));
  const labelEl = input.tagName === 'FIELDSET' ? null : h('label', { for: input.id }, label);
  return h('div', { class: 'field' }, labelEl, input, hintEl, error);
}

/** Shows (or with no message clears) the error line of a field made by `field`. */
export function setFieldError(input, message) {
  const error = document.getElementById(`${input.id}-error`);
  if (!error) return;
  error.textContent = message ?? '';
  error.hidden = !message;
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** A form-level error box; `show(message)` / `show(null)`. */
export function errorBox() {
  const el = h('div', { class: 'form-error', role: 'alert', hidden: true });
  return {
    el,
    show(message, ...extra) {
      mount(el, message ?? '', ...extra);
      el.hidden = !message;
    },
  };
}

/**
 * Puts an API error where it belongs: next to the field its message names (`fields`
 * maps request field names to inputs), else in the form's error box.
 */
export function showApiError(err, fields, box) {
  for (const input of Object.values(fields)) setFieldError(input, null);
  const input = err.field ? fields[err.field] : null;
  if (input) {
    setFieldError(input, err.message);
    box.show(null);
    const group = input.tagName === 'FIELDSET';
    (group ? (input.querySelector('input:checked') ?? input.querySelector('input')) : input)?.focus();
  } else {
    box.show(err.message);
  }
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

/** An error in place of content, with a way to try again. */
export function failure(err, retry) {
  return h(
    'div',
    { class: 'failure', role: 'alert' },
    h('p', {}, err?.message ?? String(err)),
    retry ? h('button', { type: 'button', class: 'btn btn--ghost', on: { click: retry } }, 'Try again') : null,
  );
}

/** A busy state for a submit button while its request runs. */
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
