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
// The page gets events through `on*` callbacks; it never touches the socket.

import { FORUMS, api } from './api.js';
import * as session from './session.js';

const BACKOFF_MS = [250, 1000, 2000, 4000, 8000, 15000];
const CLOSE_ROOM_CLOSED = 4410;

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
   * `handlers`: onState(state, detail), onMessage(frame), onAck(clientMsgId, seq),
   * onError(frame), onPresence(frame). States: connecting, live, reconnecting,
   * offline, closed (the room), expired (the token), stopped (left the page).
   */
  constructor(roomId, lastSeq, handlers) {
    this.roomId = roomId;
    this.lastSeq = lastSeq;
    this.h = handlers;
    this.pending = new Map(); // clientMsgId → text, in send order
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.state = null;
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
      for (const [clientMsgId, text] of this.pending) this.transmit(clientMsgId, text);
    };
    ws.onmessage = (e) => {
      if (this.ws === ws) this.receive(e.data);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (e.code === CLOSE_ROOM_CLOSED) return this.finish('closed');
      if (this.state === 'closed' || this.state === 'stopped') return;
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
    if (this.state === 'stopped' || this.state === 'closed') return;
    if (!navigator.onLine) return this.setState('offline');
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.setState('reconnecting', { inMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.state === 'stopped' || this.state === 'closed' || this.ws) return;
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
    switch (frame.type) {
      case 'message':
        // Already shown (a replay overlapping what came live): skip.
        if (frame.seq <= this.lastSeq) return;
        this.lastSeq = frame.seq;
        this.h.onMessage?.(frame);
        break;
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
      case 'closed':
        this.finish('closed');
        break;
      default:
    }
  }

  /** Shows at once as pending (the page does that on return) and sends when connected. */
  send(text) {
    const clientMsgId = newClientMsgId();
    this.pending.set(clientMsgId, text);
    if (this.ws?.readyState === WebSocket.OPEN) this.transmit(clientMsgId, text);
    return clientMsgId;
  }

  transmit(clientMsgId, message) {
    const s = session.current();
    if (!s) return this.finish('expired');
    this.ws.send(JSON.stringify({ roomId: this.roomId, userId: s.user.id, message, clientMsgId }));
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
