// The one websocket of a page: reconnects with back-off, resubscribes from the last sequence it saw (so
// it receives exactly what it missed, in order), and re-sends unanswered posts with the same id (the
// server stores a post once, however often it arrives). When the session ends (signed out in another tab,
// everywhere, or for inactivity) it stops for good and fails what is pending with the reason.
import { SIGNED_OUT, sessionStatus } from './api.js';

export { SIGNED_OUT };
const NOT_ENTITLED = 4403;

export class Live extends EventTarget {
  constructor() {
    super();
    this.subscriptions = new Map(); // workspace id -> last seq seen
    this.pending = new Map(); // frame id -> { frame, resolve, reject }
    this.backoff = 500;
    this.closedForGood = false;
    this.connect();
  }

  connect() {
    const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
    let opened = false;
    this.socket = new WebSocket(`${scheme}://${window.location.host}/ws/`);
    this.socket.addEventListener('open', () => {
      opened = true;
      this.backoff = 500;
      this.emit('status', { connected: true });
      for (const [workspace, seq] of this.subscriptions) this.send({ type: 'subscribe', workspace, after_seq: seq });
      for (const { frame } of this.pending.values()) this.send(frame);
    });
    this.socket.addEventListener('message', (event) => this.receive(JSON.parse(event.data)));
    this.socket.addEventListener('close', (event) => {
      if (this.closedForGood) return;
      this.emit('status', { connected: false, code: event.code });
      if (event.code === NOT_ENTITLED) {
        this.end(this.endReason || SIGNED_OUT);
        return;
      }
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, 15000);
      if (opened) { setTimeout(() => this.connect(), delay); return; }
      // Refused before it opened: perhaps the session ended while the socket was down.
      // (The refusal reaches the page only as an abnormal close, never as 4403.)
      sessionStatus().then((answer) => {
        if (answer && answer.ended) this.end(this.endReason || SIGNED_OUT);
        else if (!this.closedForGood) setTimeout(() => this.connect(), delay);
      });
    });
  }

  // The session is over: no reconnecting, and every post still waiting fails with `reason`.
  end(reason = SIGNED_OUT) {
    if (this.closedForGood) return;
    this.closedForGood = true;
    this.endReason = reason;
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    this.emit('status', { connected: false, ended: true, reason });
  }

  send(frame) {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  subscribe(workspace, afterSeq) {
    this.subscriptions.set(workspace, afterSeq);
    this.send({ type: 'subscribe', workspace, after_seq: afterSeq });
  }

  // Resolves with the server's { seq, post_id, created } once the post is stored; rejects with its reason.
  post(workspace, post) {
    const id = post.post_id;
    const frame = { type: 'post.create', id, workspace, post };
    return new Promise((resolve, reject) => {
      if (this.closedForGood) { reject(new Error(this.endReason || SIGNED_OUT)); return; }
      this.pending.set(id, { frame, resolve, reject });
      this.send(frame);
    });
  }

  receive(frame) {
    if (frame.type === 'post.created') {
      this.receivePost(frame.workspace, frame.post);
      return;
    }
    if (frame.type === 'posts') {
      // What was missed (after subscribing, or a gap), in order, several posts to a frame.
      for (const post of frame.posts) this.receivePost(frame.workspace, post);
      return;
    }
    if (frame.type === 'post.accepted' || (frame.type === 'error' && this.pending.has(frame.id))) {
      const p = this.pending.get(frame.id);
      if (!p) return;
      this.pending.delete(frame.id);
      if (frame.type === 'error') {
        const error = new Error(frame.reason);
        error.code = frame.code;
        p.reject(error);
      } else p.resolve(frame);
      return;
    }
    if (frame.type === 'session.revoked') this.endReason = SIGNED_OUT;
    this.emit(frame.type, frame);
  }

  receivePost(workspace, post) {
    const seen = this.subscriptions.get(workspace) ?? 0;
    if (post.seq <= seen) return; // already shown
    this.subscriptions.set(workspace, post.seq);
    this.emit('post', { type: 'post.created', workspace, post });
  }
}
