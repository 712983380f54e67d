// What a professional's own clients remember, so the server cannot quietly forget it for them: the twin
// of tacclient/memory.py. `verified`: safety numbers they compared ({person: {fingerprint b64: ms}});
// `workspaces`: per workspace the first manifest's hash, the highest epoch and its manifest's hash, the
// newest post seen ({id: {first, epoch, manifest, seq, post}}). Kept encrypted and signed under the
// identity key on the server (GET/POST /api/v1/me/state) and in this browser's localStorage; copies are
// merged, never overwritten, since every fact only grows.
import * as c from './crypto.js';
import { getJSON, postJSON } from './api.js';

const STATE_VERSION = 1;
const te = new TextEncoder();
const td = new TextDecoder();
const localKey = (userId) => `tac.state.${userId}`;

export class Memory {
  constructor({ verified = {}, workspaces = {} } = {}) {
    this.verified = verified;
    this.workspaces = workspaces;
  }

  static fromJSON(data) {
    if (!data || data.v !== STATE_VERSION) throw new Error('not a saved state this client understands');
    return new Memory({ verified: data.verified || {}, workspaces: data.workspaces || {} });
  }

  toJSON() { return { v: STATE_VERSION, verified: this.verified, workspaces: this.workspaces }; }

  verifiedFingerprints() {
    return Object.fromEntries(Object.entries(this.verified).map(([pid, fps]) => [pid, Object.keys(fps)]));
  }

  hasVerified(publicId, fp) { return Boolean(this.verified[publicId] && c.toB64(fp) in this.verified[publicId]); }

  workspace(id) { return { ...(this.workspaces[id] || {}) }; }

  verify(publicId, fp, atMs) {
    const known = this.verified[publicId] || (this.verified[publicId] = {});
    if (c.toB64(fp) in known) return false;
    known[c.toB64(fp)] = atMs;
    return true;
  }

  remember(id, entry) { return this.merge(new Memory({ workspaces: { [id]: entry } })); }

  // Fold another copy in; returns the forks found (facts the copies disagree on).
  merge(other) {
    const forks = [];
    for (const [pid, fps] of Object.entries(other.verified)) {
      const mine = this.verified[pid] || (this.verified[pid] = {});
      for (const [fp, at] of Object.entries(fps)) mine[fp] = Math.min(at, mine[fp] ?? at);
    }
    for (const [id, theirs] of Object.entries(other.workspaces)) {
      const mine = this.workspaces[id] || (this.workspaces[id] = {});
      if (theirs.first) {
        if (mine.first && mine.first !== theirs.first) forks.push(`workspace ${id}: two different first manifests`);
        else mine.first = theirs.first;
      }
      if ((theirs.epoch || 0) > (mine.epoch || 0)) { mine.epoch = theirs.epoch; mine.manifest = theirs.manifest; }
      else if (theirs.epoch && theirs.epoch === mine.epoch && theirs.manifest !== mine.manifest) forks.push(`workspace ${id}: two different manifests for epoch ${theirs.epoch}`);
      if ((theirs.seq || 0) > (mine.seq || 0)) { mine.seq = theirs.seq; mine.post = theirs.post; }
      else if (theirs.seq && theirs.seq === mine.seq && theirs.post !== mine.post) forks.push(`workspace ${id}: two different posts numbered #${theirs.seq}`);
    }
    return forks;
  }

  seal(identity, userId, version) {
    const plain = te.encode(JSON.stringify(this.toJSON()));
    const { blob, signature } = c.stateSeal(identity, userId, version, plain);
    return { version, blob: c.toB64(blob), signature: c.toB64(signature) };
  }

  static open(identity, userId, saved) {
    const plain = c.stateOpen(identity, userId, saved.version, c.fromB64(saved.blob), c.fromB64(saved.signature));
    return Memory.fromJSON(JSON.parse(td.decode(plain)));
  }
}

// This tab's copy: loaded once, merged from the server and localStorage, saved as it grows.
export class MemoryStore {
  constructor(identity, userId) {
    this.identity = identity;
    this.userId = userId;
    this.memory = new Memory();
    this.version = 0;
    this.warnings = [];
    this.saving = Promise.resolve();
  }

  async load() {
    const saved = await getJSON('/api/v1/me/state');
    this.version = Number(saved.version) || 0;
    if (this.version) {
      try { this.warnings.push(...this.memory.merge(Memory.open(this.identity, this.userId, saved))); }
      catch { this.warnings.push('Your saved record of what your devices have seen was altered on the server: it was ignored.'); }
    }
    const local = localStorage.getItem(localKey(this.userId));
    if (local) {
      try { this.warnings.push(...this.memory.merge(Memory.open(this.identity, this.userId, JSON.parse(local)))); }
      catch { /* a copy from another identity (before a password reset): not ours any more */ }
    }
    return this;
  }

  // Save the merged state as the next version; on a race, merge the newer copy and try again.
  save() {
    this.saving = this.saving.then(async () => {
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const sealed = this.memory.seal(this.identity, this.userId, this.version + 1);
        try {
          await postJSON('/api/v1/me/state', sealed);
        } catch (error) {
          if (error.status !== 409) throw error;
          const saved = await getJSON('/api/v1/me/state');
          this.version = Number(saved.version) || 0;
          try { this.memory.merge(Memory.open(this.identity, this.userId, saved)); } catch { /* altered: ours wins */ }
          continue;
        }
        this.version += 1;
        localStorage.setItem(localKey(this.userId), JSON.stringify(sealed));
        return;
      }
      throw new Error('Your saved record kept changing while saving it. Reload the page.');
    });
    return this.saving;
  }

  // Merge what this page learnt about a workspace; saved only if something grew.
  async remember(workspaceId, entry) {
    const before = JSON.stringify(this.memory.workspace(workspaceId));
    const forks = this.memory.remember(workspaceId, entry);
    if (JSON.stringify(this.memory.workspace(workspaceId)) !== before) await this.save();
    return forks;
  }

  async verify(publicId, fp) {
    if (this.memory.verify(publicId, fp, Date.now())) await this.save();
  }
}
