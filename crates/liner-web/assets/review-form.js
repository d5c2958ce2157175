// Writing, editing and deleting one's own review of an album. Nothing is checked here
// that the server checks: a missing rating or a too-long text goes to the server, and
// its 422 message is shown next to the field it names. Every save or delete tells
// own-reviews.js, whose list of one's reviews is what blind-first goes by elsewhere.

import { REVIEWS, api } from './api.js';
import { busy, errorBox, field, h, mount, setFieldError, showApiError } from './dom.js';
import { loginUrl } from './nav.js';
import { ownReviews, ownReviewsChanged } from './own-reviews.js';
import { ratingInput } from './rating.js';
import * as session from './session.js';

const TEXT_LIMIT = 10000;

/** The user's review of `albumId`, if any. */
export async function findOwnReview(albumId) {
  try {
    return (await ownReviews()).get(albumId) ?? null;
  } catch {
    return null; // the form still works: a duplicate POST answers 409 with the review's id
  }
}

/** The form in `el`; `onChange()` runs after every save or delete. */
export function reviewForm(el, albumId, existing, onChange) {
  if (!session.current()) {
    return mount(el, h('p', { class: 'login-prompt' }, h('a', { href: loginUrl() }, 'Log in'), ' or ', h('a', { href: '/signup' }, 'sign up'), ' to rate this album.'));
  }
  let review = existing;
  const rating = ratingInput({ id: 'review-rating', legend: 'Your rating', value: review?.rating ?? null });
  const text = h('textarea', { id: 'review-text', name: 'reviewText', rows: 5, placeholder: 'What did you hear? (optional)' });
  text.value = review?.reviewText ?? '';
  const spoiler = h('input', { type: 'checkbox', id: 'review-spoiler', name: 'spoiler', checked: review?.spoiler === true });
  const counter = h('span', { class: 'counter', 'aria-live': 'off' });
  const countChars = () => {
    const n = [...text.value].length;
    counter.textContent = `${n.toLocaleString()} / ${TEXT_LIMIT.toLocaleString()}`;
    counter.classList.toggle('is-over', n > TEXT_LIMIT);
  };
  text.addEventListener('input', countChars);
  countChars();
  const box = errorBox();
  const status = h('p', { class: 'form-status', role: 'status' });
  const save = h('button', { type: 'submit', class: 'btn', id: 'review-save' });
  const del = h('button', { type: 'button', class: 'btn btn--danger', id: 'review-delete' }, 'Delete review');
  const fields = { rating, reviewText: text };
  const heading = h('h2', { id: 'your-review-heading' });
  function refresh() {
    heading.textContent = review ? 'Your review' : 'Rate this album';
    save.textContent = review ? 'Save changes' : 'Post review';
    del.hidden = !review;
    del.textContent = 'Delete review';
    delete del.dataset.confirm;
  }
  refresh();

  const form = h(
    'form',
    { class: 'review-form', 'aria-labelledby': 'your-review-heading', novalidate: true },
    heading,
    box.el,
    field('Your rating', rating),
    field('Review', text),
    h('div', { class: 'review-form__meta' }, h('label', { class: 'check', for: 'review-spoiler' }, spoiler, ' Contains spoilers'), counter),
    h('div', { class: 'actions' }, save, del),
    status,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(save, submit);
  });
  del.addEventListener('click', () => {
    if (!del.dataset.confirm) {
      del.dataset.confirm = '1';
      del.textContent = 'Really delete?';
      return;
    }
    busy(del, remove);
  });

  async function submit() {
    status.textContent = '';
    const body = { reviewText: text.value, spoiler: spoiler.checked };
    if (rating.value !== null) body.rating = rating.value;
    try {
      if (review) {
        review = await api(`${REVIEWS}/reviews/${encodeURIComponent(review.id)}`, { method: 'PUT', body });
      } else {
        review = await api(`${REVIEWS}/reviews`, { method: 'POST', body: { albumId, ...body } });
      }
      for (const input of Object.values(fields)) setFieldError(input, null);
      box.show(null);
      status.textContent = 'Saved.';
      ownReviewsChanged();
      refresh();
      onChange();
    } catch (err) {
      if (err.status === 409 && err.details.existingId) {
        ownReviewsChanged(); // written elsewhere (another tab): what we kept is behind
        review = await api(`${REVIEWS}/reviews/${encodeURIComponent(err.details.existingId)}`).catch(() => null);
        if (review) {
          rating.value = review.rating;
          text.value = review.reviewText;
          spoiler.checked = review.spoiler === true;
          countChars();
          refresh();
          return box.show('You have already reviewed this album: edit your review here.');
        }
      }
      showApiError(err, fields, box);
    }
  }

  async function remove() {
    try {
      await api(`${REVIEWS}/reviews/${encodeURIComponent(review.id)}`, { method: 'DELETE' });
      review = null;
      rating.value = null;
      text.value = '';
      spoiler.checked = false;
      countChars();
      box.show(null);
      status.textContent = 'Review deleted.';
      ownReviewsChanged();
      refresh();
      onChange();
    } catch (err) {
      refresh();
      box.show(err.message);
    }
  }
  mount(el, form);
}
