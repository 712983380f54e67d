// The workspace page: the live thread, the composer, the team. Everything a professional wrote is
// decrypted and verified here and rendered with textContent, never as HTML.
import { clearErrors, getJSON, postJSON, setBusy, showErrors } from './api.js';
import { Live } from './live.js';
import { c, fetchPosts, latestDetails, loadWorkspace, openPost } from './session.js';
import { dayToIso, epochBundle, inviteVerifies, memberKey, sealPost } from './workspace.js';

const root = document.querySelector('[data-tac-workspace]');
const WS = root.dataset.tacWorkspace;
const ME = root.dataset.tacMe;
const $ = (selector, scope = document) => scope.querySelector(selector);
const CATEGORY = Object.fromEntries([...document.querySelectorAll('#concern-category option')].map((o) => [o.value, o.textContent]));
const KIND_LABEL = { concern: 'Concern', action: 'Action', update: 'Update', decision: 'Decision', details: "Child's details" };
const RAG_CLASS = { red: 'govuk-tag--red', amber: 'govuk-tag--orange', green: 'govuk-tag--green' };

const state = { detail: null, keys: null, signKeys: null, me: null, posts: new Map(), order: [], lastHash: c.ZERO_HASH, members: new Map() };
const live = new Live();

function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function button(label, onClick, extra = 'govuk-button--secondary') {
  const b = el('button', { className: `govuk-button ${extra}`, text: label, attrs: { type: 'button' } });
  b.addEventListener('click', onClick);
  return b;
}

function fail(error, field = 'post-text') {
  showErrors([{ field, message: error.message || String(error) }]);
}

function who(publicId) {
  const m = state.members.get(publicId);
  return m ? { name: m.name, agency: m.agency } : { name: 'Former member', agency: '' };
}

// --- loading and key maintenance --------------------------------------------------------------------

async function refresh() {
  const loaded = await loadWorkspace(WS);
  Object.assign(state, { detail: loaded.detail, keys: loaded.keys, signKeys: loaded.signKeys, me: loaded.me });
  state.members = new Map(loaded.detail.members.map((m) => [m.id, m]));
  renderTeam();
  return loaded;
}

const isLead = () => state.detail && state.detail.lead === ME;

// The lead's device starts a new epoch when someone accepted an invitation, left, or on the 30-day /
// 500-post schedule. Only members whose invitation this lead signed are admitted: a member the server
// added on its own has no such signature and is left out.
async function rotate({ remove = null, newLead = null } = {}) {
  const d = state.detail;
  const custodian = await getJSON('/api/v1/custodian');
  const lead = newLead || ME;
  // Active members only as the signed record already lists them; newcomers only with an invitation
  // signed by someone who was lead (by the key the record lists for them).
  const current = state.keys.manifests.get(state.keys.currentEpoch);
  const leads = new Set([...state.keys.manifests.values()].flatMap((m) => m.members.filter((x) => x.role === 'lead').map((x) => x.publicId)));
  const signKeyOf = (id) => [...state.signKeys.entries()].filter(([k]) => k.startsWith(`${id}|`)).map(([, v]) => v);
  const members = [];
  for (const m of d.members) {
    if (m.id === remove) continue;
    const role = m.id === lead ? 'lead' : (m.role === 'lead' ? 'member' : m.role);
    if (m.state === 'active' && current.members.some((x) => x.publicId === m.id)) {
      members.push(memberKey(m, role));
    } else if (m.state === 'accepted' && m.invite_signature && leads.has(m.invited_by)
        && signKeyOf(m.invited_by).some((k) => inviteVerifies(k, WS, memberKey(m, m.role), m.role, m.invite_signature))) {
      members.push(memberKey(m, role));
    }
  }
  const epoch = d.current_epoch + 1;
  const { epochKey, payload } = epochBundle({
    lead: state.me, workspaceId: WS, epoch, prevManifestHash: state.keys.manifestHashes.get(d.current_epoch),
    members, custodianPublic: c.fromB64(custodian.box_public),
  });
  await postJSON(`/api/v1/workspaces/${WS}/epochs`, { epoch: payload, remove, new_lead: newLead });
  // Members who join from this epoch on must still see the child's details: carry them over.
  const details = latestDetails([...state.posts.values()]);
  if (details) {
    const post = sealPost({ identity: state.me, authorId: ME, workspaceId: WS, epoch, epochKey, kind: 'details',
      body: details.body, prevHash: state.lastHash });
    await postJSON(`/api/v1/workspaces/${WS}/posts`, post);
  }
  await refresh();
}

async function maintainKeys() {
  const d = state.detail;
  if (isLead()) {
    const waiting = d.members.some((m) => m.state === 'accepted');
    if (waiting || d.rotation_required || d.rotation_due) await rotate();
  }
  // A member who reset their password gets the epoch keys this device holds, wrapped for their new key.
  for (const need of state.detail.needs_rekey || []) {
    const card = state.members.get(need.member);
    const member = memberKey(card);
    const wraps = need.epochs.filter((n) => state.keys.epochKeys.has(n))
      .map((n) => ({ epoch: n, sealed: c.toB64(c.epochKeyWrap(WS, n, state.keys.epochKeys.get(n), member.boxPublic)) }));
    if (wraps.length) await postJSON(`/api/v1/workspaces/${WS}/rekey`, { member: need.member, wraps });
  }
}

// --- the team ---------------------------------------------------------------------------------------

function renderTeam() {
  const d = state.detail;
  const list = $('[data-tac-members]');
  list.replaceChildren();
  const warnings = [];
  const manifest = state.keys.manifests.get(state.keys.currentEpoch);
  for (const m of d.members) {
    if (!['active', 'invited', 'accepted'].includes(m.state)) continue;
    const fp = c.fromB64(m.fingerprint);
    const listed = manifest && manifest.members.find((x) => x.publicId === m.id);
    const verified = d.verified_keys[m.id];
    const changed = (verified && verified !== m.fingerprint) || (listed && c.toB64(listed.fingerprint) !== m.fingerprint) || m.needs_rekey;
    if (changed && m.id !== ME) warnings.push(`${m.name}'s safety number has changed. Check it with them before sharing anything new.`);
    const item = el('li', { attrs: { 'data-tac-member': m.id } }, [
      el('strong', { text: m.name }), el('br'),
      el('span', { className: 'govuk-body-s', text: `${m.job_title}, ${m.agency}` }), el('br'),
      el('span', { className: 'govuk-body-s', text: m.role === 'lead' ? 'Lead professional' : (m.state === 'active' ? 'Member' : (m.state === 'invited' ? 'Invited' : 'Accepted, waiting for keys')) }),
    ]);
    if (m.state === 'active') {
      item.append(el('br'), el('span', { className: 'govuk-body-s', text: 'Safety number: ' }),
        el('span', { className: 'govuk-body-s tac-safety-number', text: c.safetyNumber(fp), attrs: { 'data-tac-safety': m.id } }));
      if (m.id !== ME) {
        if (verified === m.fingerprint) item.append(el('br'), el('strong', { className: 'govuk-tag govuk-tag--green', text: 'Verified' }));
        else item.append(el('br'), button(`Mark ${m.name} as verified`, async () => {
          try { await postJSON(`/api/v1/workspaces/${WS}/verify-key`, { member: m.id, fingerprint: m.fingerprint }); await refresh(); } catch (e) { fail(e); }
        }));
      }
      if (isLead() && m.id !== ME) {
        item.append(button(`Remove ${m.name}`, () => act(() => rotate({ remove: m.id })), 'govuk-button--warning'),
          button(`Make ${m.name} the lead`, () => act(() => rotate({ newLead: m.id }))));
      }
    }
    if (changed && m.id !== ME) item.append(el('p', { className: 'govuk-body-s tac-post__problem', text: 'Safety number changed' }));
    list.append(item);
  }
  const box = $('[data-tac-warnings]');
  box.hidden = warnings.length === 0;
  $('[data-tac-warning-text]').textContent = warnings.join(' ');
  $('[data-tac-lead-only]').hidden = !isLead();
  $('[data-tac-member-only]').hidden = isLead();
  const owner = $('[data-tac-owner-select]');
  const chosen = owner.value || ME;
  owner.replaceChildren(...d.members.filter((m) => m.state === 'active')
    .map((m) => el('option', { text: m.id === ME ? `${m.name} (me)` : `${m.name}, ${m.agency}`, attrs: { value: m.id } })));
  owner.value = chosen;
}

async function act(fn) {
  clearErrors();
  try { await fn(); } catch (error) { fail(error); }
}

$('form[data-tac-invite]').addEventListener('submit', async (event) => {
  event.preventDefault();
  const results = $('[data-tac-invite-results]');
  results.replaceChildren();
  const q = $('#invite-search').value.trim();
  if (q.length < 2) { showErrors([{ field: 'invite-search', message: 'Enter at least 2 letters of a name or agency' }]); return; }
  const { professionals } = await getJSON(`/api/v1/directory?q=${encodeURIComponent(q)}`);
  const current = new Set(state.detail.members.filter((m) => ['active', 'invited', 'accepted'].includes(m.state)).map((m) => m.id));
  if (!professionals.length) results.append(el('li', { className: 'govuk-body-s', text: 'Nobody found' }));
  for (const p of professionals) {
    const li = el('li', {}, [el('span', { text: `${p.name}, ${p.job_title}, ${p.agency} ` })]);
    if (current.has(p.id)) li.append(el('span', { className: 'govuk-body-s', text: '(already in the team)' }));
    else li.append(button(`Invite ${p.name}`, () => act(async () => {
      const member = memberKey(p, 'member');
      const statement = c.inviteStatement(WS, member.publicId, member.fingerprint, 'member');
      await postJSON(`/api/v1/workspaces/${WS}/members`, { member: p.id, role: 'member', invite_signature: c.toB64(c.sign(state.me, statement)) });
      results.replaceChildren(el('li', { className: 'govuk-body-s', text: `${p.name} is invited. They join when they accept.` }));
      await refresh();
    })));
    results.append(li);
  }
});

$('[data-tac-leave]').addEventListener('click', () => act(async () => {
  await postJSON(`/api/v1/workspaces/${WS}/membership/leave`, {});
  window.location.assign('/');
}));

// --- the thread -------------------------------------------------------------------------------------

function renderDetails() {
  const details = latestDetails([...state.posts.values()]);
  if (!details) return;
  const b = details.body;
  $('[data-tac-child-heading]').textContent = b.name || 'Team around the child';
  const rows = [['Name', b.name], ['Date of birth', b.dob], ['NHS number', b.nhs_number], ['Address', b.address], ['Family and household', b.family], ['Notes', b.notes]];
  $('[data-tac-details]').replaceChildren(...rows.filter(([, v]) => v).map(([k, v]) => el('div', { className: 'govuk-summary-list__row' }, [
    el('dt', { className: 'govuk-summary-list__key', text: k }), el('dd', { className: 'govuk-summary-list__value tac-post__text', text: v })])));
}

function mainText(post) {
  const b = post.currentBody || post.body || {};
  return post.kind === 'concern' ? (b.detail || '') : post.kind === 'action' ? (b.detail || '') : (b.text || '');
}

function renderPost(post) {
  let node = document.getElementById(`post-${post.postId}`);
  if (!node) {
    node = $('[data-tac-post-template]').content.firstElementChild.cloneNode(true);
    node.id = `post-${post.postId}`;
    node.dataset.tacPost = post.postId;
    $('[data-tac-thread]').append(node);
  }
  const h = post.header || {};
  const author = who(post.author);
  node.className = `tac-post${h.rag ? ` tac-post--${h.rag}` : ''}${post.retracted ? ' tac-post--retracted' : ''}`;
  node.dataset.kind = post.kind;
  $('[data-kind]', node).textContent = KIND_LABEL[post.kind] || post.kind;
  const rag = $('[data-rag]', node);
  rag.replaceChildren(...(h.rag ? [el('strong', { className: `govuk-tag ${RAG_CLASS[h.rag]}`, text: h.rag[0].toUpperCase() + h.rag.slice(1) })] : []));
  $('[data-author]', node).textContent = author.name;
  $('[data-agency]', node).textContent = author.agency;
  const time = $('[data-time]', node);
  time.dateTime = post.createdAt;
  time.textContent = new Date(post.createdAt).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
  $('[data-seq]', node).textContent = post.seq;
  const title = $('[data-title]', node);
  const body = post.currentBody || post.body || {};
  const titleText = post.kind === 'concern' ? (CATEGORY[body.category] || body.category || '') : (post.kind === 'action' ? body.title : '');
  title.hidden = !titleText;
  title.textContent = titleText || '';
  $('[data-text]', node).textContent = post.kind === 'details' ? "The child's details were recorded or updated." : mainText(post);
  const meta = $('[data-action-meta]', node);
  meta.hidden = post.kind !== 'action';
  if (post.kind === 'action') {
    const due = dayToIso(h.dueDay);
    const overdue = due && post.status === 'open' && due < new Date().toISOString().slice(0, 10);
    meta.textContent = `Owner: ${who(h.ownerId).name}${due ? ` · Due ${due}${overdue ? ' (overdue)' : ''}` : ''} · Status: ${post.status}`;
    meta.dataset.status = post.status;
  }
  const problem = $('[data-problem]', node);
  problem.hidden = !post.problem && !post.keyChanged;
  problem.textContent = post.problem ? `Warning: ${post.problem}` : (post.keyChanged ? `Signed with a new key for ${author.name}: check their safety number.` : '');
  const events = $('[data-events]', node);
  events.replaceChildren(...(post.events || []).map((e) => el('li', { text: e })));
  const buttons = $('[data-buttons]', node);
  buttons.replaceChildren();
  if (post.problem || post.kind === 'details' || post.retracted) return;
  if (post.author !== ME && !(post.ackedBy || new Set()).has(ME)) {
    buttons.append(button('Acknowledge', () => send('acknowledgement', {}, { targetId: post.postId })));
  }
  buttons.append(button('Reply', () => {
    $('[data-tac-reply-to]').value = post.postId;
    $('[data-tac-replying]').hidden = false;
    $('#post-text').focus();
  }));
  if (post.kind === 'action') {
    const mayChange = h.ownerId === ME || isLead() || post.author === ME;
    if (mayChange && ['open', 'reopened'].includes(post.status)) {
      buttons.append(button('Mark done', () => inline(node, 'Completion note', (note) => send('action_status', { note }, { targetId: post.postId, status: 'done' }))));
      buttons.append(button('Cancel action', () => inline(node, 'Why is it cancelled?', (note) => send('action_status', { note }, { targetId: post.postId, status: 'cancelled' }))));
    } else if (mayChange) {
      buttons.append(button('Reopen', () => inline(node, 'Why reopen it?', (note) => send('action_status', { note }, { targetId: post.postId, status: 'reopened' }))));
    }
  }
  if (post.author === ME) {
    buttons.append(button('Edit', () => inline(node, 'New text', (text) => {
      const edited = { ...(post.currentBody || post.body) };
      if (post.kind === 'concern' || post.kind === 'action') edited.detail = text; else edited.text = text;
      return send('edit', edited, { targetId: post.postId });
    }, mainText(post))));
    buttons.append(button('Retract', () => inline(node, 'Reason for retracting (the record is kept)', (reason) => send('retraction', { reason }, { targetId: post.postId }))));
  }
}

let inlineCount = 0;
function inline(node, label, onSubmit, initial = '') {
  const existing = $('form.tac-inline', node);
  if (existing) existing.remove();
  inlineCount += 1;
  const id = `inline-${inlineCount}`;
  const textarea = el('textarea', { className: 'govuk-textarea', attrs: { id, rows: '2' } });
  textarea.value = initial;
  const form = el('form', { className: 'tac-inline', attrs: { novalidate: '' } }, [
    el('div', { className: 'govuk-form-group' }, [el('label', { className: 'govuk-label', text: label, attrs: { for: id } }), textarea]),
    el('button', { className: 'govuk-button', text: 'Save', attrs: { type: 'submit' } }),
  ]);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try { await onSubmit(textarea.value.trim()); form.remove(); } catch (error) { fail(error, id); }
  });
  $('article', node).append(form);
  textarea.focus();
}

const DONE_WORDS = { done: 'Marked done', reopened: 'Reopened', cancelled: 'Cancelled' };

function apply(post) {
  state.posts.set(post.postId, post);
  if (post.hash) state.lastHash = post.hash;
  const h = post.header || {};
  const author = who(post.author);
  const target = h.targetId && state.posts.get(h.targetId);
  if (post.kind === 'action') post.status = h.status || 'open';
  if (target && !post.problem) {
    target.events = target.events || [];
    if (post.kind === 'acknowledgement') {
      target.ackedBy = target.ackedBy || new Set();
      target.ackedBy.add(post.author);
      target.events.push(`Read and accepted by ${author.name}, ${author.agency}`);
    } else if (post.kind === 'action_status') {
      target.status = h.status;
      target.events.push(`${DONE_WORDS[h.status]} by ${author.name}${post.body.note ? `: ${post.body.note}` : ''}`);
    } else if (post.kind === 'edit') {
      target.currentBody = post.body;
      target.events.push(`Edited by ${author.name} (#${post.seq}; the earlier version is kept)`);
    } else if (post.kind === 'retraction') {
      target.retracted = true;
      target.events.push(`Retracted by ${author.name}: ${post.body.reason || 'no reason given'}`);
    }
    renderPost(target);
    return;
  }
  if (post.kind === 'details') {
    // A lead's device carries the details into each new key epoch; show only real changes in the thread.
    const before = [...state.posts.values()].filter((p) => p.kind === 'details' && p.body && p !== post);
    const previous = before[before.length - 1];
    renderDetails();
    if (previous && JSON.stringify(previous.body) === JSON.stringify(post.body)) return;
  }
  renderPost(post);
}

async function receive(payload) {
  let post = openPost(payload, state.keys, state.signKeys);
  if (post.problem && post.header && (!state.keys.manifests.has(post.header.epoch) || !state.keys.epochKeys.has(post.header.epoch))) {
    await refresh(); // a new epoch or a new key since this page loaded
    post = openPost(payload, state.keys, state.signKeys);
  }
  apply(post);
}

async function send(kind, body, fields = {}) {
  clearErrors();
  if (state.detail.rotation_required && !isLead()) throw new Error('A member has left: wait for the lead professional to renew the keys.');
  const epoch = state.keys.currentEpoch;
  const post = sealPost({ identity: state.me, authorId: ME, workspaceId: WS, epoch, epochKey: state.keys.epochKeys.get(epoch),
    kind, body, prevHash: state.lastHash, ...fields });
  return live.post(WS, post);
}

// --- the composer -----------------------------------------------------------------------------------

const composer = $('form[data-tac-composer]');
function showKind() {
  const kind = composer.querySelector('input[name=kind]:checked').value;
  for (const part of composer.querySelectorAll('[data-tac-for]')) part.hidden = part.dataset.tacFor !== kind;
  $('[data-tac-text-label]').textContent = { concern: 'What is the concern?', action: 'Details (optional)', update: 'Update', decision: 'What was decided?' }[kind];
}
for (const radio of composer.querySelectorAll('input[name=kind]')) radio.addEventListener('change', showKind);
showKind();
$('[data-tac-cancel-reply]').addEventListener('click', () => { $('[data-tac-reply-to]').value = ''; $('[data-tac-replying]').hidden = true; });

composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const kind = composer.querySelector('input[name=kind]:checked').value;
  const text = $('#post-text').value.trim();
  const parentId = $('[data-tac-reply-to]').value || undefined;
  let body; let fields = { parentId };
  if (kind === 'concern') {
    if (!text) { showErrors([{ field: 'post-text', message: 'Describe the concern' }]); return; }
    body = { category: $('#concern-category').value, detail: text };
    fields.rag = composer.querySelector('input[name=rag]:checked').value;
  } else if (kind === 'action') {
    const title = $('#action-title').value.trim();
    if (!title) { showErrors([{ field: 'action-title', message: 'Say what needs doing' }]); return; }
    body = { title, detail: text };
    fields = { ...fields, ownerId: $('#action-owner').value, due: $('#action-due').value || '', status: 'open' };
  } else {
    if (!text) { showErrors([{ field: 'post-text', message: 'Write something to post' }]); return; }
    body = { text };
  }
  const submit = $('[data-tac-post-button]');
  setBusy(submit, true, 'Posting…');
  try {
    await send(kind, body, fields);
    composer.reset();
    $('[data-tac-reply-to]').value = '';
    $('[data-tac-replying]').hidden = true;
    showKind();
    renderTeam();
  } catch (error) {
    fail(error);
  } finally {
    setBusy(submit, false);
  }
});

// --- start ------------------------------------------------------------------------------------------

live.addEventListener('status', ({ detail }) => {
  $('[data-tac-connection]').textContent = detail.connected ? 'Live: new posts appear here as they are made.'
    : (live.closedForGood ? 'Your session has ended. Sign in again.' : 'Reconnecting…');
});
live.addEventListener('post', ({ detail }) => { if (detail.workspace === WS) receive(detail.post).catch(fail); });
live.addEventListener('epoch.created', ({ detail }) => { if (detail.workspace === WS) refresh().catch(fail); });
for (const type of ['membership.accepted', 'membership.changed', 'keys.added']) {
  live.addEventListener(type, ({ detail }) => {
    if (detail.workspace === WS) refresh().then(maintainKeys).catch(fail);
  });
}
live.addEventListener('membership.ended', ({ detail }) => {
  if (detail.workspace !== WS) return;
  composer.hidden = true;
  showErrors([{ field: 'main-content', message: 'You are no longer a member of this workspace.' }]);
});

(async () => {
  await refresh();
  for (const payload of await fetchPosts(WS)) apply(openPost(payload, state.keys, state.signKeys));
  await maintainKeys();
  live.subscribe(WS, Math.max(0, ...[...state.posts.values()].map((p) => p.seq)));
  if (state.detail.last_seq) postJSON(`/api/v1/workspaces/${WS}/read`, { seq: state.detail.last_seq }).catch(() => {});
})().catch((error) => fail(error, 'main-content'));
