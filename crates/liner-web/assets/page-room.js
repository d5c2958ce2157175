// A room: its history (paging back with ?before=), the live chat (chat.js), who is
// here, who is typing, replying in a review's thread (`?thread=<id>` opens the page in
// that thread), and for its creator a way to close it; editing, reporting and
// moderating messages are in room-tools.js. In an album room the header shows how the
// room's posters rated the album, and each line its author's rating — neither for a
// blind-first person who has not rated it yet (blind-first.js). Also `roomWidget`, the
// "join / open a room" box that album and genre pages show, and `discussReview`, which
// opens a review's thread in its album's room (opening the room first when there is none).

import { FORUMS, album, api } from './api.js';
import { blindness, ratePrompt } from './blind-first.js';
import { ChatConnection } from './chat.js';
import { busy, failure, h, loading, mount, setTitle } from './dom.js';
import { loginUrl, navigate } from './nav.js';
import { applyEvent, editFailed, messageEl, moderationBar, refreshActions, typingLine } from './room-tools.js';
import * as session from './session.js';

const HISTORY_PAGE = 50;

/** A room's name: its own title, or for an untitled album room the album's title. */
export function roomLabel(room, album) {
  const untitled = room.albumId && room.title === `Album ${room.albumId}`;
  return untitled && album ? `${album.title} — ${album.artist}` : room.title;
}

/** Link to the active room of an album or genre, or a button that opens one. */
export async function roomWidget(el, target, title) {
  const q = new URLSearchParams({ roomType: target.roomType, ...(target.albumId ? { albumId: target.albumId } : { genreId: target.genreId }) });
  try {
    const rooms = await api(`${FORUMS}/rooms?${q}`);
    const room = rooms[0];
    if (room) {
      return mount(
        el,
        h('a', { class: 'btn btn--room', href: `/rooms/${encodeURIComponent(room.id)}`, id: 'room-link' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), `Join the room · ${room.online} online`),
      );
    }
    if (!session.current()) {
      return mount(el, h('p', { class: 'muted small' }, 'No room open. ', h('a', { href: loginUrl() }, 'Log in'), ' to open one.'));
    }
    const open = h('button', { type: 'button', class: 'btn btn--ghost', id: 'room-open' }, 'Open a listening room');
    const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
    open.addEventListener('click', () =>
      busy(open, async () => {
        try {
          const created = await api(`${FORUMS}/rooms`, { method: 'POST', body: { ...target, title: `${title}`.slice(0, 100) } });
          navigate(`/rooms/${encodeURIComponent(created.id)}`);
        } catch (err) {
          if (err.status === 409 && err.details.existingId) return navigate(`/rooms/${encodeURIComponent(err.details.existingId)}`);
          error.textContent = err.message;
          error.hidden = false;
        }
      }),
    );
    mount(el, open, error);
  } catch (err) {
    mount(el, h('p', { class: 'muted small' }, `Rooms are unavailable: ${err.message}`));
  }
}

/** The album's active room: the listed one, else a new one (or the one that won a race). */
async function albumRoom(albumId) {
  const rooms = await api(`${FORUMS}/rooms?${new URLSearchParams({ roomType: 'album', albumId })}`);
  if (rooms[0]) return rooms[0].id;
  try {
    return (await api(`${FORUMS}/rooms`, { method: 'POST', body: { roomType: 'album', albumId } })).id;
  } catch (err) {
    if (err.status === 409 && err.details.existingId) return err.details.existingId;
    throw err;
  }
}

/** "Discuss this review": its thread in the album's room (the first opener's, if any), then there. */
export async function discussReview(review) {
  const roomId = await albumRoom(review.albumId);
  const opener = await api(`${FORUMS}/rooms/${encodeURIComponent(roomId)}/threads`, { method: 'POST', body: { reviewId: review.id } });
  navigate(`/rooms/${encodeURIComponent(roomId)}?${new URLSearchParams({ thread: opener.id })}`);
}

const STATE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline — reconnecting when you are back online',
  closed: 'Room closed',
  expired: 'Session expired',
  kicked: 'Removed by a moderator',
  readonly: 'Read only',
};

export function render(main, roomId) {
  setTitle('Room');
  mount(main, loading());
  let chat = null;
  let stopped = false;
  (async function load() {
    try {
      const [room, history] = await Promise.all([
        api(`${FORUMS}/rooms/${encodeURIComponent(roomId)}`),
        api(`${FORUMS}/rooms/${encodeURIComponent(roomId)}/messages?limit=${HISTORY_PAGE}`),
      ]);
      const [about, blind] = await Promise.all([room.albumId ? album(room.albumId).catch(() => null) : null, blindness()]);
      const ratingsHidden = Boolean(room.albumId) && blind(room.albumId);
      if (!stopped) chat = show(main, { ...room, title: roomLabel(room, about) }, history, ratingsHidden);
    } catch (err) {
      mount(main, err.status === 404 ? h('section', { class: 'panel narrow' }, h('h1', {}, 'No such room'), h('p', {}, h('a', { href: '/' }, 'See the live rooms'), '.')) : failure(err, load));
    }
  })();
  return () => {
    stopped = true;
    chat?.stop();
  };
}

function show(main, room, history, ratingsHidden) {
  setTitle(room.title);
  const me = session.current()?.user ?? null;
  const log = h('ol', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages' });
  const pendingList = h('ol', { class: 'messages messages--pending', id: 'pending', 'aria-label': 'Sending' });
  const scroller = h('div', { class: 'chat__scroller' });
  const earlier = h('button', { type: 'button', class: 'btn btn--ghost btn--small', id: 'earlier' }, 'Load earlier messages');
  const stateEl = h('span', { class: 'room-state', id: 'room-state', role: 'status' });
  const onlineEl = h('span', { class: 'online-badge is-live', id: 'room-online' });
  const people = h('ul', { class: 'people', id: 'people' });
  const composer = h('div', { class: 'composer-area' });
  const typingEl = h('p', { class: 'typing', id: 'typing', 'aria-live': 'polite' });
  const typing = typingLine(typingEl);
  const closeArea = h('div', {});
  const slowEl = h('span', { class: 'tag', id: 'slow-mode-badge', hidden: true });
  const modArea = h('div', { class: 'room__mod' });
  const splitEl = h('p', { class: 'muted small', id: 'rating-split', hidden: true });
  const present = new Map(); // userId → username
  const pendingEls = new Map(); // clientMsgId → li
  const ackedSeq = new Map(); // seq → li of our pending message, until its message frame arrives

  const about = room.albumId
    ? h('a', { href: `/albums/${encodeURIComponent(room.albumId)}` }, 'About the album')
    : h('a', { href: `/genres/${encodeURIComponent(room.genreId)}` }, `More ${room.genreId}`);
  mount(
    main,
    h(
      'section',
      { class: 'room', 'aria-labelledby': 'room-title' },
      h(
        'header',
        { class: 'room__head' },
        h('div', {}, h('p', { class: 'eyebrow' }, room.roomType === 'album' ? 'Album room' : 'Genre room'), h('h1', { id: 'room-title' }, room.title), h('p', { class: 'muted small' }, about), splitEl),
        h('div', { class: 'room__status' }, stateEl, onlineEl, slowEl, closeArea),
      ),
      h(
        'div',
        { class: 'room__body' },
        h('div', { class: 'chat' }, scroller, typingEl, composer),
        h('aside', { class: 'room__people', 'aria-labelledby': 'people-heading' }, h('h2', { id: 'people-heading' }, 'Here now'), people, modArea),
      ),
    ),
  );
  mount(scroller, earlier, log, pendingList);
  const ctx = {
    room,
    me,
    ratingsHidden,
    moderator: false,
    readonly: !me || !room.active,
    chat: null,
    pendingEdits: new Map(), // clientMsgId → li being edited
    showError: (text) => {
      composerError.textContent = text;
      composerError.hidden = false;
    },
    setSlowMode(seconds, automatic) {
      slowEl.textContent = automatic ? `Slow mode ${seconds} s (busy room)` : `Slow mode ${seconds} s`;
      slowEl.title = automatic ? 'Switched on by itself while the room is busy; it switches off when the room calms down' : '';
      slowEl.hidden = !(seconds > 0);
    },
  };
  ctx.setSlowMode(room.slowModeSecs ?? 0, room.slowModeAutomatic);
  if (ratingsHidden) {
    mount(splitEl, ratePrompt(room.albumId, 'Rate the album to see how this room rated it'));
    splitEl.hidden = false;
  } else if (room.albumId) {
    showSplit(splitEl, room.id);
  }

  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
  };
  let first = history[0]?.seq ?? null;
  earlier.hidden = history.length < HISTORY_PAGE || first === 1;
  log.append(...history.map((m) => messageEl(m, ctx)));
  const lastSeq = history.at(-1)?.seq ?? 0;
  requestAnimationFrame(toBottom);

  earlier.addEventListener('click', () =>
    busy(earlier, async () => {
      try {
        const older = await api(`${FORUMS}/rooms/${encodeURIComponent(room.id)}/messages?before=${first}&limit=${HISTORY_PAGE}`);
        const height = scroller.scrollHeight;
        log.prepend(...older.map((m) => messageEl(m, ctx)));
        scroller.scrollTop += scroller.scrollHeight - height;
        first = older[0]?.seq ?? first;
        earlier.hidden = older.length < HISTORY_PAGE || first === 1;
      } catch (err) {
        earlier.textContent = `Could not load: ${err.message}. Try again`;
      }
    }),
  );

  let online = room.online;
  function setOnline(n) {
    online = n;
    onlineEl.textContent = `${n} online`;
  }
  setOnline(room.online);
  function renderPeople() {
    const names = [...present.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    const items = names.map(([id, name]) =>
      h('li', {}, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), h('a', { href: `/users/${encodeURIComponent(id)}` }, name), id === me?.id ? h('span', { class: 'tag' }, 'you') : null),
    );
    // Presence frames name who joins and leaves after we did; the rest are counted only.
    const others = online - names.length;
    if (others > 0) items.push(h('li', { class: 'muted small' }, `and ${others} more`));
    mount(people, items);
  }

  function setState(state) {
    stateEl.textContent = STATE_TEXT[state] ?? state;
    stateEl.dataset.state = state;
    if (state === 'closed') {
      mount(composer, h('p', { class: 'notice-inline', id: 'room-closed' }, 'This room is closed. The conversation stays readable.'));
      mount(closeArea);
      present.clear();
      renderPeople();
    } else if (state === 'kicked') {
      mount(composer, h('p', { class: 'notice-inline', id: 'room-kicked' }, 'A moderator removed you from this room. ', h('a', { href: location.pathname }, 'Rejoin')));
    } else if (state === 'expired') {
      mount(composer, h('p', { class: 'notice-inline' }, 'Your session expired. ', h('a', { href: loginUrl() }, 'Log in again'), ' to chat.'));
    }
  }

  if (!room.active) {
    setState('closed');
    return null;
  }
  if (!me) {
    setState('readonly');
    mount(composer, h('p', { class: 'notice-inline' }, h('a', { href: loginUrl() }, 'Log in'), ' to join the conversation.'));
    return null;
  }

  const input = h('textarea', { id: 'chat-input', name: 'message', rows: 2, placeholder: `Message ${room.title}`, autocomplete: 'off' });
  const sendBtn = h('button', { type: 'submit', class: 'btn' }, 'Send');
  const composerError = h('p', { class: 'field-error', id: 'chat-input-error', role: 'alert', hidden: true });
  input.setAttribute('aria-describedby', 'chat-input-error');
  const form = h('form', { class: 'composer' }, h('label', { for: 'chat-input', class: 'visually-hidden' }, 'Message'), input, sendBtn);
  const replyBar = h('p', { class: 'reply-bar small', id: 'reply-bar', hidden: true });
  mount(composer, composerError, replyBar, form);
  // The thread our lines go to (null: the room itself); stays until closed with ✕.
  let thread = null;
  ctx.replyTo = (threadId, reviewer) => {
    thread = threadId;
    const leave = h('button', { type: 'button', class: 'link-btn', 'aria-label': 'Back to the room', on: { click: () => ctx.replyTo(null) } }, '✕');
    mount(replyBar, threadId ? [`Replying in the thread on ${reviewer ? `${reviewer}’s` : 'a'} review `, leave] : null);
    replyBar.hidden = !threadId;
    if (threadId) {
      document.getElementById(`m-${threadId}`)?.scrollIntoView({ block: 'center' });
      input.focus();
    }
  };
  const asked = new URLSearchParams(location.search).get('thread');
  if (asked) ctx.replyTo(asked, document.getElementById(`m-${asked}`)?.msg?.review?.username);
  input.addEventListener('input', () => chat?.typing());
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    composerError.hidden = true;
    send(text);
  });

  function send(text) {
    const keep = atBottom();
    const clientMsgId = chat.send(text, thread);
    const li = pendingEl(text, me);
    li.dataset.clientMsgId = clientMsgId;
    pendingEls.set(clientMsgId, li);
    pendingList.append(li);
    if (keep) toBottom();
  }

  if (room.createdBy === me.id) {
    const close = h('button', { type: 'button', class: 'btn btn--danger btn--small', id: 'room-close' }, 'Close room');
    close.addEventListener('click', () => {
      if (!close.dataset.confirm) {
        close.dataset.confirm = '1';
        close.textContent = 'Really close it?';
        return;
      }
      busy(close, async () => {
        try {
          await api(`${FORUMS}/rooms/${encodeURIComponent(room.id)}`, { method: 'DELETE' });
          chat.finish('closed');
        } catch (err) {
          close.textContent = 'Close room';
          delete close.dataset.confirm;
          composerError.textContent = err.message;
          composerError.hidden = false;
        }
      });
    });
    mount(closeArea, close);
  }

  const chat = new ChatConnection(room.id, lastSeq, {
    onState(state) {
      setState(state);
      if (state === 'live') {
        present.set(me.id, me.username);
        renderPeople();
      }
    },
    onMessage(m) {
      const keep = atBottom();
      typing.clear(m.userId);
      log.append(messageEl(m, ctx));
      const mine = ackedSeq.get(m.seq);
      if (mine) {
        mine.remove();
        ackedSeq.delete(m.seq);
      }
      if (keep || m.userId === me.id) toBottom();
    },
    onEvent(frame) {
      const keep = atBottom();
      applyEvent(log, frame, ctx);
      if (keep) toBottom();
    },
    onTyping(frame) {
      if (frame.userId !== me.id) typing.show(frame);
    },
    onAck(clientMsgId, seq) {
      const li = pendingEls.get(clientMsgId);
      pendingEls.delete(clientMsgId);
      if (!li) return;
      if (log.querySelector(`[data-seq="${seq}"]`)) return li.remove();
      li.classList.replace('msg--pending', 'msg--sent');
      li.querySelector('.msg__status').textContent = 'sent';
      ackedSeq.set(seq, li);
    },
    onError(frame) {
      if (frame.clientMsgId && editFailed(ctx, frame.clientMsgId, frame.message)) return;
      const li = frame.clientMsgId ? pendingEls.get(frame.clientMsgId) : null;
      if (!li) {
        composerError.textContent = frame.message;
        composerError.hidden = false;
        return;
      }
      pendingEls.delete(frame.clientMsgId);
      failed(li, frame.message);
    },
    onPresence(frame) {
      if (frame.joined) present.set(frame.joined.userId, frame.joined.username);
      if (frame.left && frame.left.userId !== me.id) present.delete(frame.left.userId);
      setOnline(frame.online);
      renderPeople();
    },
  });

  ctx.chat = chat;
  api(`${FORUMS}/rooms/${encodeURIComponent(room.id)}/moderation`, { auth: true })
    .then((m) => {
      ctx.setSlowMode(m.slowModeSecs, m.slowModeAutomatic);
      if (!m.moderator) return;
      ctx.moderator = true;
      refreshActions(log, ctx);
      mount(modArea, h('h2', {}, 'Moderation'), moderationBar(ctx, m));
    })
    .catch(() => {});

  function failed(li, message) {
    li.classList.replace('msg--pending', 'msg--failed');
    const text = li.querySelector('.msg__text').textContent;
    mount(
      li.querySelector('.msg__status'),
      h('span', { class: 'msg__error', role: 'alert' }, `Not sent: ${message}`),
      h('button', { type: 'button', class: 'link-btn', on: { click: () => { li.remove(); send(text); } } }, 'Retry'),
      h('button', { type: 'button', class: 'link-btn', on: { click: () => li.remove() } }, 'Dismiss'),
    );
  }
  return chat;
}

/** The header's rating split: how the room's posters rated the album (GET …/ratings). */
async function showSplit(el, roomId) {
  try {
    const s = await api(`${FORUMS}/rooms/${encodeURIComponent(roomId)}/ratings`);
    if (!s.available) return;
    el.textContent = `Loved it ${s.loved} · Mixed ${s.mixed} · Disliked ${s.disliked} · Unrated ${s.unrated}`;
    el.hidden = false;
  } catch {
    // No split is better than a broken header.
  }
}

function pendingEl(text, me) {
  return h(
    'li',
    { class: 'msg msg--mine msg--pending' },
    h('div', { class: 'msg__meta' }, h('span', { class: 'msg__author' }, me.username), h('span', { class: 'msg__status' }, 'sending…')),
    h('p', { class: 'msg__text' }, text),
  );
}
