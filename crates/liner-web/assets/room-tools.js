// What a room's members can do to its messages besides sending, and how room events
// change the log. Everyone: edit their own message for 15 minutes (over the chat
// socket), delete their own, report others'. Moderators (the room's creator and the
// admins; the server says who, GET /rooms/{id}/moderation): delete any message, mute
// or kick a member, see who is muted and unmute them, set slow mode, read and resolve
// reports (REST). Room events (edit, delete, mute, unmute, kick, slowmode) arrive in seq
// order with the messages and are applied here: new text and "(edited)", tombstones
// ("message deleted"), one-line notices, and the moderators' list of running mutes
// (read once with the moderation state, then kept by the events, so a mute set by
// another moderator shows too). Also the "alice is typing…" line, and threads: a line quoting a review
// renders as its card with "Reply in thread", a reply links back to it.

import { FORUMS, api } from './api.js';
import { busy, fmtTime, h, mount, timeEl } from './dom.js';

export const EDIT_WINDOW_MS = 15 * 60 * 1000;
const TYPING_SHOWN_MS = 5000;
const MUTE_SECS = 600;
const SLOW_MODE_CHOICES = [0, 5, 10, 30, 60, 300];

const roomPath = (ctx, rest = '') => `${FORUMS}/rooms/${encodeURIComponent(ctx.room.id)}${rest}`;

/**
 * A message of the log. `ctx`: { room, me, ratingsHidden, moderator, chat (the
 * connection, once there), pendingEdits (clientMsgId → li), showError(text) }.
 */
export function messageEl(m, ctx) {
  const li = h('li', { class: `msg${m.userId === ctx.me?.id ? ' msg--mine' : ''}`, 'data-seq': String(m.seq), 'data-id': m.id, id: `m-${m.id}` });
  li.msg = { ...m };
  renderMessage(li, ctx);
  return li;
}

function renderMessage(li, ctx) {
  const m = li.msg;
  const edited = m.editedAt && !m.deleted ? h('span', { class: 'msg__edited', title: new Date(m.editedAt).toLocaleString() }, '(edited)') : null;
  const text = m.deleted ? h('p', { class: 'msg__text msg__text--deleted' }, 'message deleted') : h('p', { class: 'msg__text' }, m.message);
  li.classList.toggle('msg--deleted', Boolean(m.deleted));
  // Album rooms: the author's rating of the album when they sent it (absent: unrated,
  // or hidden from a blind-first reader who has not rated it).
  const rating = m.authorRating != null && !ctx.ratingsHidden ? h('span', { class: 'tag msg__rating', title: 'Their rating of this album' }, `★ ${Number(m.authorRating).toFixed(1)}`) : null;
  const author = h('a', { href: `/users/${encodeURIComponent(m.userId)}`, class: 'msg__author' }, m.username);
  li.classList.toggle('msg--thread', Boolean(m.review));
  mount(
    li,
    h('div', { class: 'msg__meta' }, author, m.review ? h('span', { class: 'muted small' }, 'opened a thread') : null, rating, timeEl(m.sentAt, fmtTime), edited, actions(li, ctx)),
    m.threadId ? threadLink(m.threadId) : null,
    m.review && !m.deleted ? quoteCard(m, ctx) : text,
  );
}

/** A thread's opening line: the quoted review, and a way to reply in its thread. */
function quoteCard(m, ctx) {
  const r = m.review;
  const reply = ctx.me && !ctx.readonly ? h('button', { type: 'button', class: 'btn btn--ghost btn--small msg__reply', on: { click: () => ctx.replyTo?.(m.id, r.username) } }, 'Reply in thread') : null;
  return h(
    'figure',
    { class: 'msg__quote' },
    h('figcaption', {}, h('a', { href: `/users/${encodeURIComponent(r.userId)}` }, r.username), '’s review ', ctx.ratingsHidden ? null : h('span', { class: 'tag' }, `★ ${Number(r.rating).toFixed(1)}`)),
    // A blind-first reader who has not rated the album reads neither the rating nor the text.
    h('blockquote', { class: 'msg__text' }, ctx.ratingsHidden ? 'Rate the album first to read this review.' : m.message || 'A rating without words.'),
    reply,
  );
}

/** "↳ in the thread on ann's review" above a reply, linking to the opening line. */
function threadLink(threadId) {
  const opener = document.getElementById(`m-${threadId}`)?.msg;
  const label = opener?.review ? `in the thread on ${opener.review.username}’s review` : 'in a thread';
  return h('a', { class: 'msg__thread small', href: `#m-${threadId}` }, `↳ ${label}`);
}

/** Re-renders every message's buttons (after learning whether we moderate the room). */
export function refreshActions(log, ctx) {
  for (const li of log.querySelectorAll('li[data-id]')) if (li.msg) renderMessage(li, ctx);
}

function actions(li, ctx) {
  const m = li.msg;
  const me = ctx.me;
  if (!me || m.deleted || ctx.readonly) return null;
  const mine = m.userId === me.id;
  const btn = (label, cls, fn) => h('button', { type: 'button', class: `link-btn msg__action ${cls}`, on: { click: fn } }, label);
  const list = [];
  if (mine && !m.review && Date.now() - Date.parse(m.sentAt) < EDIT_WINDOW_MS) list.push(btn('Edit', 'msg__edit', () => startEdit(li, ctx)));
  if (mine || ctx.moderator) list.push(btn('Delete', 'msg__delete', () => remove(li, ctx)));
  if (!mine) list.push(btn('Report', 'msg__report', () => startReport(li, ctx)));
  if (ctx.moderator && !mine && m.userId !== ctx.room.createdBy) {
    list.push(btn('Mute 10 min', 'msg__mute', () => moderate(ctx, 'PUT', `/mutes/${encodeURIComponent(m.userId)}`, { seconds: MUTE_SECS })));
    list.push(btn('Kick', 'msg__kick', () => moderate(ctx, 'POST', '/kicks', { userId: m.userId })));
  }
  return h('span', { class: 'msg__actions' }, list);
}

/** A moderator's REST call; true when it was done, else the error is shown and false. */
async function moderate(ctx, method, rest, body) {
  try {
    await api(roomPath(ctx, rest), { method, body });
    return true;
  } catch (err) {
    ctx.showError(err.message);
    return false;
  }
}

function remove(li, ctx) {
  return moderate(ctx, 'DELETE', `/messages/${encodeURIComponent(li.msg.id)}`);
}

function startEdit(li, ctx) {
  const input = h('textarea', { class: 'msg__edit-input', rows: 2, 'aria-label': 'Edit message' });
  input.value = li.msg.message;
  const cancel = () => renderMessage(li, ctx);
  const form = h(
    'form',
    { class: 'msg__edit-form' },
    input,
    h('div', { class: 'msg__edit-buttons' }, h('button', { type: 'submit', class: 'btn btn--small msg__save' }, 'Save'), h('button', { type: 'button', class: 'link-btn', on: { click: cancel } }, 'Cancel')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || text === li.msg.message) return cancel();
    const clientMsgId = ctx.chat?.edit(li.msg.id, text);
    if (!clientMsgId) return ctx.showError('Not connected; try again in a moment.');
    ctx.pendingEdits.set(clientMsgId, li);
    li.msg = { ...li.msg, message: text };
    renderMessage(li, ctx);
    li.classList.add('msg--saving');
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') cancel();
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  li.querySelector('.msg__text').replaceWith(form);
  input.focus();
}

function startReport(li, ctx) {
  const reason = h('input', { class: 'msg__report-reason', maxlength: 500, placeholder: 'What is wrong with it?', 'aria-label': 'Reason' });
  const error = h('span', { class: 'msg__error', role: 'alert' });
  const form = h('form', { class: 'msg__report-form' }, reason, h('button', { type: 'submit', class: 'btn btn--small' }, 'Report'), h('button', { type: 'button', class: 'link-btn', on: { click: () => form.remove() } }, 'Cancel'), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api(roomPath(ctx, `/messages/${encodeURIComponent(li.msg.id)}/reports`), { method: 'POST', body: { reason: reason.value } });
      mount(form, h('span', { class: 'muted small' }, 'Reported to the moderators. Thank you.'));
    } catch (err) {
      error.textContent = err.message;
    }
  });
  li.append(form);
  reason.focus();
}

/** An edit of ours was refused: back to the text as the server has it. */
export function editFailed(ctx, clientMsgId, message) {
  const li = ctx.pendingEdits.get(clientMsgId);
  if (!li) return false;
  ctx.pendingEdits.delete(clientMsgId);
  li.classList.remove('msg--saving');
  ctx.showError(`Not edited: ${message}`);
  return true;
}

const who = (u) => u?.username ?? u?.userId ?? 'someone';

/** Applies a room event to the log: edits and tombstones in place, the rest as notices. */
export function applyEvent(log, e, ctx) {
  const target = e.messageId ? log.querySelector(`li[data-id="${CSS.escape(e.messageId)}"]`) : null;
  if (e.type === 'edit' || e.type === 'delete') {
    for (const [id, li] of ctx.pendingEdits) if (li === target) ctx.pendingEdits.delete(id);
    if (!target?.msg) return;
    target.classList.remove('msg--saving');
    target.msg = e.type === 'edit' ? { ...target.msg, message: e.message, editedAt: e.sentAt } : { ...target.msg, message: '', deleted: true };
    renderMessage(target, ctx);
    return;
  }
  const mine = e.target?.userId === ctx.me?.id;
  const text = {
    mute: () => `${mine ? 'You were' : `${who(e.target)} was`} muted by ${e.username} until ${fmtTime(e.until)}`,
    unmute: () => `${mine ? 'You' : who(e.target)} can talk again`,
    kick: () => `${mine ? 'You were' : `${who(e.target)} was`} removed from the room by ${e.username}`,
    slowmode: () => slowModeNotice(e),
  }[e.type];
  if (e.type === 'slowmode') ctx.setSlowMode?.(e.seconds, e.automatic);
  if (e.type === 'mute') ctx.mutes?.add(e.target, e.until);
  if (e.type === 'unmute') ctx.mutes?.remove(e.target?.userId);
  if (text) log.append(h('li', { class: 'msg msg--notice', 'data-seq': String(e.seq), 'data-event': e.type }, text()));
}

/** What a `slowmode` event says: set by a moderator, or switched by the room's own pace. */
function slowModeNotice(e) {
  if (e.automatic) {
    return e.seconds > 0
      ? `The room is busy: slow mode switched on by itself, one message every ${e.seconds} s`
      : 'The room has calmed down: slow mode is off';
  }
  return e.seconds > 0 ? `Slow mode: one message every ${e.seconds} s (set by ${e.username})` : `Slow mode is off (${e.username})`;
}

/** The "alice is typing…" line: each name shows for a few seconds after its last `typing`. */
export function typingLine(el) {
  const typing = new Map(); // userId → { name, timer }
  const render = () => {
    const names = [...typing.values()].map((t) => t.name);
    el.textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
  };
  const clear = (userId) => {
    const t = typing.get(userId);
    if (!t) return;
    clearTimeout(t.timer);
    typing.delete(userId);
    render();
  };
  return {
    show(frame) {
      clearTimeout(typing.get(frame.userId)?.timer);
      typing.set(frame.userId, { name: frame.username, timer: setTimeout(() => clear(frame.userId), TYPING_SHOWN_MS) });
      render();
    },
    clear,
  };
}

/**
 * Moderators' controls, from the room's moderation state (GET …/moderation): slow mode,
 * the running mutes (`ctx.mutes`, which applyEvent keeps current) and the open reports.
 */
export function moderationBar(ctx, { slowModeSecs, mutes }) {
  const select = h('select', { id: 'slow-mode', 'aria-label': 'Slow mode' }, SLOW_MODE_CHOICES.map((s) => h('option', { value: String(s) }, s === 0 ? 'Slow mode off' : `Slow mode ${s} s`)));
  select.value = String(SLOW_MODE_CHOICES.includes(slowModeSecs) ? slowModeSecs : 0);
  select.addEventListener('change', () => moderate(ctx, 'PUT', '/slow-mode', { seconds: Number(select.value) }));
  const muted = h('ul', { class: 'mutes', id: 'mutes', 'aria-label': 'Muted' });
  ctx.mutes = mutesList(ctx, muted);
  for (const m of mutes) ctx.mutes.add(m, m.until);
  const list = h('ul', { class: 'reports', id: 'reports' });
  const load = h('button', { type: 'button', class: 'btn btn--ghost btn--small', id: 'reports-load' }, 'Open reports');
  load.addEventListener('click', () => showReports(ctx, list));
  return h('div', { class: 'mod-bar', id: 'mod-bar' }, select, h('h3', { class: 'mod-bar__heading' }, 'Muted'), muted, load, list);
}

/**
 * The running mutes in `el`, each with its end and an "Unmute" button: `add({userId,
 * username}, until)` (a new mute replaces the end of one running) and `remove(userId)`.
 * A mute leaves the list when it ends by itself, too.
 */
function mutesList(ctx, el) {
  const running = new Map(); // userId → { username, until, timer }
  const render = () => {
    if (running.size === 0) return mount(el, h('li', { class: 'muted small' }, 'Nobody is muted.'));
    const byName = [...running.entries()].sort((a, b) => a[1].username.localeCompare(b[1].username));
    mount(el, byName.map(([userId, m]) => muteItem(userId, m)));
  };
  const muteItem = (userId, m) => {
    const unmute = h('button', { type: 'button', class: 'link-btn mutes__unmute', 'aria-label': `Unmute ${m.username}` }, 'Unmute');
    unmute.addEventListener('click', () =>
      busy(unmute, async () => {
        if (await moderate(ctx, 'DELETE', `/mutes/${encodeURIComponent(userId)}`)) remove(userId);
      }),
    );
    return h('li', { 'data-user-id': userId }, h('span', { class: 'mutes__name' }, m.username), ' ', h('span', { class: 'muted small' }, 'until ', timeEl(m.until, fmtTime)), ' ', unmute);
  };
  const remove = (userId) => {
    clearTimeout(running.get(userId)?.timer);
    if (running.delete(userId)) render();
  };
  const add = (user, until) => {
    const left = Date.parse(until) - Date.now();
    clearTimeout(running.get(user.userId)?.timer);
    running.delete(user.userId);
    if (left > 0) running.set(user.userId, { username: who(user), until, timer: setTimeout(() => remove(user.userId), left) });
    render();
  };
  render();
  return { add, remove };
}

async function showReports(ctx, list) {
  try {
    const reports = await api(roomPath(ctx, '/reports?status=open'), { auth: true });
    if (reports.length === 0) return mount(list, h('li', { class: 'muted small' }, 'No open reports.'));
    mount(
      list,
      reports.map((r) => {
        const resolve = h('button', { type: 'button', class: 'link-btn' }, 'Resolve');
        const li = h('li', {}, h('p', { class: 'small' }, h('strong', {}, r.message.username), ': ', r.message.deleted ? h('em', {}, 'message deleted') : r.message.message), h('p', { class: 'muted small' }, `${r.reporterName}: ${r.reason}`), resolve);
        resolve.addEventListener('click', async () => {
          await moderate(ctx, 'POST', `/reports/${encodeURIComponent(r.id)}/resolve`);
          li.remove();
        });
        return li;
      }),
    );
  } catch (err) {
    mount(list, h('li', { class: 'field-error' }, err.message));
  }
}
