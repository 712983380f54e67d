// What every workspace page needs: this tab's identity, what this professional's devices remember
// (memory.js), the deployment's custodian pin, and a workspace's verified record.
import * as c from './crypto.js';
import { getJSON } from './api.js';
import { unlock } from './keystore.js';
import { MemoryStore } from './memory.js';
import { TrustError, openPost, parsePin, verifyWorkspace } from './workspace.js';

// The custodian pin is a static file served with the scripts (messaging/custodian.py): never an API answer.
export const PIN_URL = '/static/tac/pins/custodian.json';

let unlocked = null;
let memory = null;
let pin = null;

export async function identity() {
  if (!unlocked) unlocked = unlock();
  try {
    return await unlocked;
  } catch (error) {
    unlocked = null;
    throw error;
  }
}

export async function memoryStore() {
  if (!memory) {
    memory = (async () => {
      const { identity: me, record } = await identity();
      return new MemoryStore(me, record.public_id).load();
    })();
  }
  try {
    return await memory;
  } catch (error) {
    memory = null;
    throw error;
  }
}

export async function custodianPin() {
  if (!pin) {
    pin = (async () => {
      const response = await fetch(PIN_URL, { cache: 'no-store', credentials: 'same-origin' });
      if (!response.ok) throw new TrustError(`the data controller's custodian key is not pinned on this site (${PIN_URL} answered ${response.status})`);
      return parsePin(await response.json());
    })();
  }
  try {
    return await pin;
  } catch (error) {
    pin = null;
    throw error;
  }
}

// The workspace's detail, checked: it must be the workspace asked for, and its record must verify
// against signed state and what this professional's devices saw before.
export async function loadWorkspace(id) {
  const { identity: me, record } = await identity();
  const detail = await getJSON(`/api/v1/workspaces/${id}`);
  if (detail.id !== id) throw new TrustError(`the server answered with another workspace than the one asked for (${id})`);
  if (detail.my_state !== 'active') return { me, record, detail, keys: null, store: null };
  const store = await memoryStore();
  const keys = verifyWorkspace(detail, me, {
    myId: record.public_id, memory: store.memory.workspace(id), verified: store.memory.verifiedFingerprints(), pin: await custodianPin(),
  });
  return { me, record, detail, keys, store };
}

export async function fetchPosts(id, after = 0, kind = null) {
  const posts = [];
  for (;;) {
    const page = await getJSON(`/api/v1/workspaces/${id}/posts?after=${after}&limit=1000${kind ? `&kind=${kind}` : ''}`);
    posts.push(...page.posts);
    if (page.posts.length < 1000) return posts;
    after = page.posts[page.posts.length - 1].seq;
  }
}

export { c, openPost };
