// Ratings: the half-star input (a radio group 0.5…5.0, so arrow keys, screen readers and
// form semantics come for free) and the read-only star display.

import { h, srOnly, uid } from './dom.js';

export const STEPS = [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5];

export function fmtRating(r) {
  return Number(r).toFixed(1);
}

/** ★★★½ with a spoken "3.5 out of 5". */
export function stars(rating, { size = 'sm' } = {}) {
  if (rating === null || rating === undefined) return h('span', { class: 'stars stars--none' }, 'unrated');
  const full = Math.floor(rating);
  const glyphs = '★'.repeat(full) + (rating - full >= 0.5 ? '½' : '');
  return h(
    'span',
    { class: `stars stars--${size}` },
    h('span', { 'aria-hidden': 'true' }, glyphs),
    srOnly(`${fmtRating(rating)} out of 5`),
  );
}

/**
 * The rating control. Returns the <fieldset> (id `id`), with `.value` (a number or
 * null) readable and settable.
 */
export function ratingInput({ id = uid('rating'), legend = 'Rating', value = null } = {}) {
  const name = `${id}-value`;
  const shown = h('output', { class: 'rating-input__value', 'aria-hidden': 'true' });
  const halves = h('div', { class: 'rating-input__stars' });
  const labels = [];
  for (const step of STEPS) {
    const inputId = `${id}-${String(step).replace('.', '_')}`;
    const input = h('input', { type: 'radio', name, id: inputId, value: String(step), class: 'rating-input__radio' });
    const label = h(
      'label',
      { for: inputId, class: `rating-input__half rating-input__half--${step % 1 ? 'left' : 'right'}` },
      srOnly(`${fmtRating(step)} ${step === 1 ? 'star' : 'stars'}`),
    );
    label.addEventListener('mouseenter', () => paint(step));
    labels.push(label);
    halves.append(input, label);
  }
  halves.addEventListener('mouseleave', () => paint(current()));
  halves.addEventListener('change', () => paint(current()));
  const fieldset = h(
    'fieldset',
    { class: 'rating-input', id },
    h('legend', {}, legend),
    h('div', { class: 'rating-input__row' }, halves, shown),
  );

  function current() {
    const checked = fieldset.querySelector('input:checked');
    return checked ? Number(checked.value) : null;
  }
  function paint(v) {
    labels.forEach((label, i) => label.classList.toggle('is-on', v !== null && STEPS[i] <= v));
    shown.textContent = v === null ? 'not rated' : `${fmtRating(v)} / 5`;
  }
  Object.defineProperty(fieldset, 'value', {
    get: current,
    set(v) {
      for (const input of fieldset.querySelectorAll('input')) input.checked = v !== null && Number(input.value) === v;
      paint(current());
    },
  });
  fieldset.value = value;
  return fieldset;
}
