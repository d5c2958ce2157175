// The community parts of a review and a profile: the like button (one like per person,
// the count beside it), text marked as a spoiler hidden until asked for, and the follow
// button. The album page is one cached answer for every reader, so it carries no
// "liked by me": `applyLiked` asks GET /reviews/liked for the reviews shown.

import { REVIEWS, api, query } from './api.js';
import { busy, h, srOnly, uid } from './dom.js';
import { loginUrl, navigate } from './nav.js';
import * as session from './session.js';

/** The review's text; a spoiler stays hidden behind a button until clicked. */
export function reviewText(r) {
  const text = h('p', { class: 'review__text', id: uid('review-text') }, r.reviewText);
  if (!r.spoiler) return text;
  text.hidden = true;
  const reveal = h(
    'button',
    { type: 'button', class: 'btn btn--ghost btn--small spoiler-reveal', 'aria-expanded': 'false', 'aria-controls': text.id },
    'Contains spoilers — show',
  );
  reveal.addEventListener('click', () => {
    text.hidden = false;
    reveal.remove();
  });
  return h('div', { class: 'review__body' }, reveal, text);
}

function setLiked(button, liked, likes) {
  button.setAttribute('aria-pressed', String(liked));
  if (likes !== undefined) button.querySelector('.like__count').textContent = likes.toLocaleString();
}

/** A like button with the count; `likedByMe` (when the answer had it) sets its state. */
export function likeButton(r) {
  const button = h(
    'button',
    { type: 'button', class: 'like', 'aria-pressed': String(r.likedByMe === true), 'data-review-id': r.id },
    h('span', { class: 'like__heart', 'aria-hidden': 'true' }, '♥'),
    srOnly('Like'),
    ' ',
    h('span', { class: 'like__count' }, (r.likes ?? 0).toLocaleString()),
  );
  button.addEventListener('click', () => {
    if (!session.current()) return navigate(loginUrl());
    const liked = button.getAttribute('aria-pressed') === 'true';
    busy(button, async () => {
      try {
        const res = await api(`${REVIEWS}/reviews/${encodeURIComponent(r.id)}/like`, { method: liked ? 'DELETE' : 'PUT' });
        setLiked(button, res.likedByMe, res.likes);
      } catch (err) {
        button.title = err.message;
      }
    });
  });
  return button;
}

/** Sets the like buttons under `root` for the logged-in person (reviews from a shared page). */
export async function applyLiked(root, reviews) {
  if (!session.current() || !reviews.length) return;
  try {
    const res = await api(`${REVIEWS}/reviews/liked${query({ ids: reviews.map((r) => r.id).join(',') })}`, { auth: true });
    const liked = new Set(res.ids);
    for (const r of reviews) {
      const button = root.querySelector(`.like[data-review-id="${CSS.escape(r.id)}"]`);
      if (button) setLiked(button, liked.has(r.id));
    }
  } catch {
    // The buttons still work; they just start unpressed.
  }
}

/** Follow / Following for another person's profile; `onCount(n)` gets their follower count. */
export function followButton(userId, onCount) {
  const button = h('button', { type: 'button', class: 'btn btn--small', id: 'follow', 'aria-pressed': 'false', hidden: true }, 'Follow');
  const s = session.current();
  if (!s || s.user.id === userId) return button;
  const show = (state) => {
    button.hidden = false;
    button.setAttribute('aria-pressed', String(state.followedByMe));
    button.textContent = state.followedByMe ? 'Following' : 'Follow';
    button.classList.toggle('btn--ghost', state.followedByMe);
    onCount(state.followers);
  };
  const path = `${REVIEWS}/users/${encodeURIComponent(userId)}/follow`;
  api(path, { auth: true }).then(show, () => {});
  button.addEventListener('click', () => {
    const following = button.getAttribute('aria-pressed') === 'true';
    busy(button, () => api(path, { method: following ? 'DELETE' : 'PUT' }).then(show, (err) => (button.title = err.message)));
  });
  return button;
}
