// A room's live connection: WebSocket to /api/forums/connect, kept alive across drops.
//
// Guarantees to the page (the server does its part: every message has a per-room `seq`,
// gap-free, and `since=N` replays everything after N):
// - nothing lost, nothing doubled: the page only ever appends `seq = last + 1`-ordered
//   messages it has not shown; on a drop it reconnects with `since=<last shown seq>`;
// - a sent message is shown at once as pending, keyed by a client id; it is resent with
//   the same id after a reconnect until acked (the server stores it once per id);
// - a drop is visible ("reconnecting…"), with growing back-off, and going offline closes
//   the socket at once (browsers may keep a dead socket open for minutes) and waits
//   for the network to come back.
// - room events (edit, delete, mute, unmute, kick, slowmode) are sequenced like messages:
//   they share the room's `seq`, so they go through the same "only seq > last" gate and
//   a reconnect replays them too; `typing` is not sequenced and passes straight through.
// The page gets events through `on*` callbacks; it never touches the socket.

import { FORUMS, api } from './api.js';
import * as session from './session.js';

const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000];
const CLOSE_ROOM_CLOSED = 4410;
const CLOSE_KICKED = 4403;
/** Frames that carry a room `seq` besides `message`. */
const ROOM_EVENTS = new Set(['edit', 'delete', 'mute', 'unmute', 'kick', 'slowmode']);
/** At most one `typing` frame per this long (the server passes on one per 3 s). */
const TYPING_EVERY_MS = 2500;

/** A random UUID, also where crypto.randomUUID is missing (plain-HTTP pages on another host). */
export function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export class ChatConnection {
  /**
   * `handlers`: onState(state, detail), onMessage(frame), onEvent(frame) (a room event),
   * onAck(clientMsgId, seq), onError(frame), onPresence(frame), onTyping(frame).
   * States: connecting, live, reconnecting, offline, closed (the room), kicked (by a
   * moderator), expired (the token), stopped (left the page).
   */
  constructor(roomId, lastSeq, handlers) {
    this.roomId = roomId;
    this.lastSeq = lastSeq;
    this.h = handlers;
    this.pending = new Map(); // clientMsgId → { text, threadId }, in send order
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.state = null;
    this.lastTyping = 0;
    this.onOffline = () => this.drop('offline');
    this.onOnline = () => this.reconnectNow();
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  setState(state, detail) {
    this.state = state;
    this.h.onState?.(state, detail);
  }

  connect() {
    clearTimeout(this.timer);
    const s = session.current();
    if (!s) return this.setState('expired');
    if (!navigator.onLine) return this.setState('offline');
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = new URLSearchParams({ roomId: this.roomId, userId: s.user.id, token: s.token, since: String(this.lastSeq) });
    const ws = new WebSocket(`${proto}//${location.host}${FORUMS}/connect?${q}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.setState('live');
      for (const [clientMsgId, line] of this.pending) this.transmit(clientMsgId, line);
    };
    ws.onmessage = (e) => {
      if (this.ws === ws) this.receive(e.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (e.code === CLOSE_ROOM_CLOSED) return this.finish('closed');
      if (e.code === CLOSE_KICKED) return this.finish('kicked');
      if (this.state === 'closed' || this.state === 'stopped' || this.state === 'kicked') return;
      this.afterDrop(opened);
    };
  }

  /** Why a socket ended, when the browser cannot say (a refused handshake is just 1006). */
  async afterDrop(opened) {
    if (!opened) {
      if (!session.current()) return this.setState('expired');
      try {
        const room = await api(`${FORUMS}/rooms/${encodeURIComponent(this.roomId)}`);
        if (!room.active) return this.finish('closed');
      } catch {
        // Unreachable too: keep trying below.
      }
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.state === 'stopped' || this.state === 'closed' || this.state === 'kicked') return;
    if (!navigator.onLine) return this.setState('offline');
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.setState('reconnecting', { inMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.state === 'stopped' || this.state === 'closed' || this.state === 'kicked' || this.ws) return;
    this.attempt = Math.max(this.attempt, 1);
    this.connect();
  }

  /** Closes the socket on our side and goes on as after any drop (`offline`: wait for the network). */
  drop(reason) {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    if (this.state === 'stopped' || this.state === 'closed') return;
    if (reason === 'offline') this.setState('offline');
    else this.scheduleReconnect();
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === 'message' || ROOM_EVENTS.has(frame.type)) {
      // Already shown (a replay overlapping what came live): skip.
      if (frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
      if (frame.type === 'message') this.h.onMessage?.(frame);
      else this.h.onEvent?.(frame);
      return;
    }
    switch (frame.type) {
      case 'ack':
        if (this.pending.delete(frame.clientMsgId)) this.h.onAck?.(frame.clientMsgId, frame.seq);
        break;
      case 'error':
        if (frame.clientMsgId) this.pending.delete(frame.clientMsgId);
        this.h.onError?.(frame);
        break;
      case 'presence':
        this.h.onPresence?.(frame);
        break;
      case 'typing':
        this.h.onTyping?.(frame);
        break;
      case 'closed':
        this.finish('closed');
        break;
      default:
    }
  }

  /**
   * Shows at once as pending (the page does that on return) and sends when connected;
   * `threadId`: a reply in that review's thread.
   */
  send(text, threadId = null) {
    const clientMsgId = newClientMsgId();
    const line = { text, threadId };
    this.pending.set(clientMsgId, line);
    if (this.ws?.readyState === WebSocket.OPEN) this.transmit(clientMsgId, line);
    return clientMsgId;
  }

  transmit(clientMsgId, { text, threadId }) {
    const s = session.current();
    if (!s) return this.finish('expired');
    const frame = { roomId: this.roomId, userId: s.user.id, message: text, clientMsgId };
    if (threadId) frame.threadId = threadId;
    this.ws.send(JSON.stringify(frame));
  }

  /** Rewrites one of our messages; the `edit` event comes back like a message. Returns its client id. */
  edit(messageId, message) {
    const clientMsgId = newClientMsgId();
    if (this.ws?.readyState !== WebSocket.OPEN) return null;
    this.ws.send(JSON.stringify({ type: 'edit', roomId: this.roomId, messageId, message, clientMsgId }));
    return clientMsgId;
  }

  /** Tells the room we are typing, at most once per TYPING_EVERY_MS. */
  typing() {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS || this.ws?.readyState !== WebSocket.OPEN) return;
    this.lastTyping = now;
    this.ws.send(JSON.stringify({ type: 'typing', roomId: this.roomId }));
  }

  /** Forgets a message the page gave up on (after an error frame). */
  discard(clientMsgId) {
    this.pending.delete(clientMsgId);
  }

  finish(state) {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.setState(state);
  }

  stop() {
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    this.finish('stopped');
  }
}
