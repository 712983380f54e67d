// What every workspace page needs: this tab's identity, and a workspace's verified record.
import * as c from './crypto.js';
import { getJSON } from './api.js';
import { unlock } from './keystore.js';
import { authorSignKeys, openPost, verifyWorkspace } from './workspace.js';

let unlocked = null;

export async function identity() {
  if (!unlocked) unlocked = unlock();
  try {
    return await unlocked;
  } catch (error) {
    unlocked = null;
    throw error;
  }
}

export async function loadWorkspace(id) {
  const { identity: me, record } = await identity();
  const detail = await getJSON(`/api/v1/workspaces/${id}`);
  const keys = verifyWorkspace(detail, me);
  return { me, record, detail, keys, signKeys: authorSignKeys(detail.author_keys || []) };
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

// The child's details: the newest "details" post this member can open.
export function latestDetails(opened) {
  const details = opened.filter((p) => p.kind === 'details' && p.body);
  return details.length ? details[details.length - 1] : null;
}

export { c, openPost };
