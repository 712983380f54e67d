// A workspace's thread as a reader assembles it from verified posts: the twin of tacprotocol/record.py
// (docs/crypto.md, "The post chain" and "Who may change what"). The server orders and numbers posts and
// may delete, replay, renumber or reorder them; each signed header names the newest post its author had
// seen, so gaps, changes, reordering and replays are found, and state is applied in signed causal order
// by whoever may make each change (an action's status by actions.js's rule, the twin of tacprotocol/actions.py;
// a concern's rating by its author or the lead of the change's epoch).
import { RULES, change as actionChange } from './actions.js';
import * as c from './crypto.js';
import { TrustError, openPost } from './workspace.js';

export const CONTENT_KINDS = new Set(['concern', 'action', 'update', 'decision', 'details', 'history_shared']);

function rawHash(payload) {
  try { return c.postHash(c.fromB64(payload.header), c.fromB64(payload.nonce), c.fromB64(payload.ciphertext)); } catch { return null; }
}

function rawEpoch(payload) {
  try { return c.postHeaderParse(c.fromB64(payload.header)).epoch; } catch { return null; }
}

// Parents sort first (a parent's rank is at most its child's, and its depth less); for an honest server,
// whose posts follow earlier numbers, rank is the post's own number: the server's order.
const causalOrder = (a, b) => (a.rank - b.rank) || (a.depth - b.depth) || (a.opened.header.clientTimeMs - b.opened.header.clientTimeMs) || (a.seq - b.seq);

export class Record {
  constructor(keys, { reference = null, nameOf = (id) => id } = {}) {
    this.keys = keys;
    this.reference = reference;
    this.nameOf = nameOf;
    this.entries = [];
    this.byId = new Map();
    this.bySeq = new Map();
    this.byHash = new Map();
    this.children = new Map();
    this.warnings = [];
    this.problems = [];
    this.last = null; // { seq, hash } of the newest verified post: what the next post follows
  }

  get(postId) { return this.byId.get(postId) || null; }

  postsInEpoch(epoch) { return this.entries.filter((e) => e.epoch === epoch).length; }

  latestDetails() {
    const found = this.entries.filter((e) => e.opened && e.kind === 'details' && !e.retractedBy);
    return found.length ? found[found.length - 1] : null;
  }

  // Add a post in the order the server sent it. Returns the entries whose display changed.
  add(payload) {
    const seq = Number.isSafeInteger(payload.seq) && payload.seq > 0 ? payload.seq : 0;
    const entry = {
      seq, postId: String(payload.post_id || ''), payload, opened: null, refused: null, hash: rawHash(payload), epoch: rawEpoch(payload),
      notes: [], depth: 0, rank: 0, status: '', statusBy: null, owner: null, acks: new Map(), events: [], body: null, retractedBy: null,
      // A concern's rating now (the signed one until a rating change), and the rating changes applied, in
      // causal order: { old, new, reason, by, clientTimeMs, entry }.
      rag: '', ratings: [],
      // For an action_status or rating_change post: why the rule refused it where it stands in causal order
      // (not applied).
      ignored: null,
      // Every change that reached this post, applied or not, and the notes resolve() wrote (rewritten each
      // time it runs, since a post arriving late can move a change to another point in the order).
      received: [], resolvedNotes: [],
      get kind() { return this.opened ? this.opened.header.kind : String(payload.kind || ''); },
      get author() { return this.opened ? this.opened.header.authorId : null; },
      get header() { return this.opened ? this.opened.header : null; },
    };
    try {
      entry.opened = openPost(payload, this.keys, { detailsReference: this.reference });
    } catch (error) {
      if (!(error instanceof TrustError)) throw error;
      entry.refused = error.message;
      if (entry.epoch !== null && !this.keys.manifests.has(entry.epoch)) {
        this.problem(`The server sent post #${seq} from a key epoch it has not shown this device: it may be hiding a change of keys. Posting is stopped until this is resolved.`);
      }
    }
    const before = this.entries.length ? this.entries[this.entries.length - 1] : null;
    if (before && seq <= before.seq) entry.notes.push(`The server sent #${seq} after #${before.seq}: out of order`);
    const first = this.byId.get(entry.postId);
    if (entry.opened && first && first.opened) {
      this.warnings.push(`The server sent post #${first.seq} again as #${seq}: it is shown once.`);
      entry.notes.push(`A copy of #${first.seq}`);
      entry.refused = `a replayed copy of #${first.seq}`;
      entry.opened = null;
      this.store(entry, false);
      return [entry];
    }
    this.checkGap(before, entry);
    if (entry.opened) {
      this.checkChain(entry);
      if (entry.opened.timeNote) entry.notes.push(entry.opened.timeNote[0].toUpperCase() + entry.opened.timeNote.slice(1));
    }
    const changed = this.store(entry, Boolean(entry.opened));
    if (entry.opened) {
      this.last = { seq: entry.seq, hash: entry.hash };
      const target = this.apply(entry);
      if (target) changed.push(target);
    }
    return [entry, ...changed];
  }

  // After the backlog: the newest post this professional's devices saw must still be there.
  checkMemory(memory) {
    if (!memory || !memory.seq) return;
    const newest = this.entries.length ? this.entries[this.entries.length - 1].seq : 0;
    if (newest < memory.seq) {
      this.problem(`Your devices saw posts up to #${memory.seq} here, but the server now shows only up to #${newest}: posts have been withheld or deleted. Posting is stopped.`);
    } else if (memory.post && this.bySeq.has(memory.seq) && (!this.bySeq.get(memory.seq).hash || c.toB64(this.bySeq.get(memory.seq).hash) !== memory.post)) {
      this.problem(`Post #${memory.seq} is not the post your devices saw under that number: the record has been changed. Posting is stopped.`);
    }
  }

  problem(text) { if (!this.problems.includes(text)) this.problems.push(text); }

  store(entry, link) {
    entry.rank = entry.seq;
    this.entries.push(entry);
    if (!this.bySeq.has(entry.seq)) this.bySeq.set(entry.seq, entry);
    const known = this.byId.get(entry.postId);
    if (!known || (entry.opened && !known.opened)) this.byId.set(entry.postId, entry);
    const changed = [];
    if (!link || !entry.hash) return changed;
    const key = (h) => c.toB64(h);
    this.byHash.set(key(entry.hash), entry);
    const prev = key(entry.opened.header.prevHash);
    const parent = this.byHash.get(prev);
    const linked = Boolean(parent) && parent !== entry;
    entry.depth = linked ? parent.depth + 1 : 0;
    entry.rank = linked ? Math.max(entry.seq, parent.rank) : entry.seq;
    if (!this.children.has(prev)) this.children.set(prev, []);
    this.children.get(prev).push(entry);
    // Posts that arrived before the one they follow (the server reordered them): fix their place.
    const stack = [entry];
    const moved = new Set();
    while (stack.length) {
      const node = stack.pop();
      for (const child of this.children.get(key(node.hash)) || []) {
        if (child !== node && (child.depth <= node.depth || child.rank < node.rank)) {
          child.depth = Math.max(child.depth, node.depth + 1);
          child.rank = Math.max(child.rank, node.rank);
          moved.add(child);
          stack.push(child);
        }
      }
    }
    for (const child of moved) {
      const target = this.byId.get(child.opened.header.targetId);
      if (target) { this.resolve(target); changed.push(target); }
    }
    return changed;
  }

  held(low, high) {
    for (let n = Math.max(low, 1); n <= high; n += 1) if (!this.keys.epochKeys.has(n)) return false;
    return true;
  }

  epochBefore(seq) {
    const earlier = this.entries.filter((e) => e.seq < seq && e.epoch !== null);
    return earlier.length ? earlier[earlier.length - 1].epoch : 1;
  }

  checkGap(before, entry) {
    if (entry.epoch === null) return;
    const start = before ? before.seq + 1 : 1;
    const low = before && before.epoch !== null ? before.epoch : 1;
    if (entry.seq > start && this.held(low, entry.epoch)) {
      const missing = entry.seq - 1 === start ? `#${start}` : `#${start} to #${entry.seq - 1}`;
      this.warnings.push(`Posts ${missing} are missing: the server has not shown them, although this device holds the keys they were made with.`);
    }
    if (before && before.epoch !== null && entry.epoch < before.epoch) {
      entry.notes.push(`From key epoch ${entry.epoch}, after a post from epoch ${before.epoch}: the server changed the order`);
    }
  }

  checkChain(entry) {
    const h = entry.opened.header;
    if (h.prevSeq === 0) {
      if (!c.sameBytes(h.prevHash, c.ZERO_HASH)) entry.notes.push("It names a previous post's hash but no number");
      return;
    }
    if (h.prevSeq >= entry.seq) {
      entry.notes.push(`Its author wrote it after #${h.prevSeq}, which the server numbered after it: the order was changed`);
      return;
    }
    const seen = this.bySeq.get(h.prevSeq);
    if (seen) {
      if (!seen.hash || !c.sameBytes(seen.hash, h.prevHash)) {
        entry.notes.push(`Its author wrote it after a post numbered #${h.prevSeq}, but the server's #${h.prevSeq} is a different post: the record was changed or renumbered`);
      }
    } else if (this.held(this.epochBefore(h.prevSeq), h.epoch)) {
      entry.notes.push(`Its author wrote it after #${h.prevSeq}, which the server has not shown: a post may have been deleted`);
    }
  }

  // Returns the target whose state changed, if any.
  apply(entry) {
    const h = entry.opened.header;
    if (CONTENT_KINDS.has(h.kind)) {
      entry.body = entry.opened.body;
      entry.rag = h.rag;
      if (h.kind === 'action') {
        entry.status = 'open';
        entry.owner = h.ownerId;
        if (!['', 'open'].includes(h.status)) entry.notes.push(`It was signed as ${h.status}, but a new action is open: it is shown as open`);
      }
      return null;
    }
    const target = this.byId.get(h.targetId);
    if (!target || !target.opened) { entry.notes.push('It refers to a post this device has not been shown'); return null; }
    if (!CONTENT_KINDS.has(target.kind)) { entry.notes.push('It refers to a post that cannot be changed'); return null; }
    const who = this.nameOf(h.authorId);
    if ((h.kind === 'edit' || h.kind === 'retraction') && h.authorId !== target.opened.header.authorId) {
      target.notes.push(`${h.kind === 'edit' ? 'An edit' : 'A retraction'} signed by ${who}, who did not write this post, was ignored`);
      entry.notes.push(`Ignored: only the author of #${target.seq} may make its ${h.kind}`);
      return target;
    }
    if (h.kind === 'action_status' && target.kind !== 'action') { entry.notes.push('A status change for a post that is not an action was ignored'); return null; }
    if (h.kind === 'rating_change') {
      if (target.kind !== 'concern') { entry.notes.push('A rating change for a post that is not a concern was ignored'); return null; }
      // Who may is fixed by the post itself (its author, its epoch's lead), wherever it stands in order.
      if (h.authorId !== target.opened.header.authorId && h.authorId !== this.leadOf(h.epoch)) {
        target.notes.push(`A rating change signed by ${who}, who neither raised this concern nor leads the workspace, was ignored`);
        entry.notes.push(`Ignored: only the author of #${target.seq} or the lead professional may change its rating`);
        return target;
      }
    }
    if (h.kind === 'acknowledgement' && target.acks.has(h.authorId)) return null; // one line per member
    // A status change is judged in resolve(): whether the rule allows it depends on where it stands in
    // causal order, which a post that arrives later can still change.
    target.received.push(entry);
    this.resolve(target);
    return target;
  }

  // Recompute a post's state from what reached it, in signed causal order: an action's status and owner
  // by actions.js's rule, a concern's rating, change after change.
  resolve(target) {
    target.received.sort(causalOrder);
    for (const e of [target, ...target.received]) {
      for (const n of e.resolvedNotes) { const i = e.notes.indexOf(n); if (i >= 0) e.notes.splice(i, 1); }
      e.resolvedNotes = [];
    }
    target.events = [];
    target.body = target.opened.body;
    target.retractedBy = null;
    target.acks = new Map();
    target.rag = target.opened.header.rag;
    target.ratings = [];
    let now = null;
    if (target.kind === 'action') { now = { status: 'open', owner: target.opened.header.ownerId }; target.statusBy = null; }
    for (const e of target.received) {
      const h = e.opened.header;
      if (h.kind === 'action_status') {
        const { after, refused } = this.statusChange(target, now, e);
        e.ignored = refused || null;
        if (!after) continue;
        now = after;
        target.statusBy = h.authorId;
      } else if (h.kind === 'rating_change') {
        e.ignored = this.ratingRefused(target, e) || null;
        if (e.ignored) continue;
        const { reason } = e.opened.body;
        target.ratings.push({ old: target.rag, new: h.rag, reason: typeof reason === 'string' ? reason : '', by: h.authorId, clientTimeMs: h.clientTimeMs, entry: e });
        target.rag = h.rag;
      } else if (h.kind === 'edit') target.body = e.opened.body;
      else if (h.kind === 'retraction') target.retractedBy = e;
      else if (h.kind === 'acknowledgement') {
        if (target.acks.has(h.authorId)) continue;
        target.acks.set(h.authorId, e);
      }
      target.events.push(e);
    }
    if (now) { target.status = now.status; target.owner = now.owner; }
  }

  // The lead professional when a change was made: the one its epoch's signed manifest names.
  leadOf(epoch) { return this.keys.manifests.has(epoch) ? this.keys.lead(epoch) : null; }

  // Why rating change `e` does not apply where it stands in causal order ('' if it does), with the notes
  // that say so. Who may make it was judged when it arrived (apply).
  ratingRefused(target, e) {
    const h = e.opened.header;
    let why;
    if (target.retractedBy) why = 'the concern was retracted: its rating no longer changes';
    else if (!h.rag) why = 'a rating change names the new rating';
    else if (h.rag === target.rag) why = `the concern is already ${h.rag}`;
    else return '';
    const note = (entry, text) => { entry.notes.push(text); entry.resolvedNotes.push(text); };
    note(target, `A change of rating to ${h.rag || 'none'} signed by ${this.nameOf(h.authorId)} (#${e.seq}) was ignored: ${why}`);
    note(e, `Ignored: ${why}`);
    return why;
  }

  // The action's state after status change `e` ({after} or {after: null, refused}), with the notes that
  // say so: the owner is the one at that point, the lead the one its epoch's manifest names.
  statusChange(target, now, e) {
    const h = e.opened.header;
    const lead = this.leadOf(h.epoch);
    const newOwner = h.ownerId === c.ZERO_ID ? null : h.ownerId;
    let result;
    if (target.retractedBy) result = { after: null, refused: 'the action was retracted: its status no longer changes' };
    else if (h.status === 'reassigned' && newOwner !== null && !this.keys.members(h.epoch).has(newOwner)) {
      result = { after: null, refused: 'a reassignment names a member of the workspace' };
    } else result = actionChange(now, { status: h.status, author: h.authorId, lead, newOwner });
    if (result.after) return { after: result.after, refused: '' };
    const who = this.nameOf(h.authorId);
    const note = (entry, text) => { entry.notes.push(text); entry.resolvedNotes.push(text); };
    const rule = Object.hasOwn(RULES, h.status) ? RULES[h.status] : null;
    if (rule && rule[1].join(',') === 'owner,lead' && h.authorId !== now.owner && h.authorId !== lead) {
      note(target, `A status change signed by ${who}, who neither owns this action nor leads the workspace, was ignored`);
      note(e, `Ignored: only the owner of #${target.seq} or the lead professional may change its status`);
    } else {
      note(target, `A change to ${h.status || 'no status'} signed by ${who} (#${e.seq}) was ignored: ${result.refused}`);
      note(e, `Ignored: ${result.refused}`);
    }
    return { after: null, refused: result.refused };
  }
}
