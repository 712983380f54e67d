// Home: answer invitations, and show each workspace's child name and highest concern as this device
// verified them. The server's own summary (its current RAG) is shown only as the server's, and a
// difference is flagged: the server can change that column, not the signed posts.
import { clearErrors, getJSON, postJSON, showErrors } from './api.js';
import { el } from './dom.js';
import { Live } from './live.js';
import { followUnread } from './notifications.js';
import { Record } from './record.js';
import { fetchPosts, loadWorkspace, openPost } from './session.js';

const RAG_ORDER = { '': 0, green: 1, amber: 2, red: 3 };
const RAG_LABEL = { '': 'None', green: 'Green', amber: 'Amber', red: 'Red' };

for (const item of document.querySelectorAll('[data-tac-invitation]')) {
  // An answer refused is shown at the invitation: the summary links to the button that was pressed.
  item.dataset.tacErrorGroup = '';
  for (const button of item.querySelectorAll('[data-tac-respond]')) {
    if (!button.id) button.id = `${button.dataset.tacRespond}-${item.dataset.tacInvitation}`;
    button.disabled = false;
    button.addEventListener('click', async () => {
      button.disabled = true;
      clearErrors();
      try {
        await postJSON(`/api/v1/workspaces/${item.dataset.tacInvitation}/membership/${button.dataset.tacRespond}`, {});
        window.location.reload();
      } catch (error) {
        button.disabled = false;
        showErrors([{ field: button.id, message: error.message }]);
      }
    });
  }
}

function opened(payloads, keys, reference) {
  const out = [];
  for (const p of payloads) {
    try { out.push(openPost(p, keys, { detailsReference: reference })); } catch { /* unverified: not counted */ }
  }
  return out;
}

for (const row of document.querySelectorAll('[data-tac-workspace-row]')) {
  if (!row.querySelector('a')) continue; // not active yet: no keys
  const id = row.dataset.tacWorkspaceRow;
  const rag = row.querySelector('[data-tac-rag]');
  (async () => {
    const { keys } = await loadWorkspace(id);
    const reference = row.dataset.tacReference;
    const details = opened(await fetchPosts(id, 0, 'details'), keys, reference);
    if (details.length) row.querySelector('[data-tac-child-name]').textContent = ` ${details[details.length - 1].body.name || ''}`;
    // A concern's rating is the signed one, then its rating changes, as record.js applies them (by whom
    // the rule allows, in signed causal order); a retraction counts only from the concern's author.
    const record = new Record(keys, { reference });
    const posts = [];
    for (const kind of ['concern', 'retraction', 'rating_change']) posts.push(...await fetchPosts(id, 0, kind));
    for (const payload of posts.sort((a, b) => a.seq - b.seq)) record.add(payload);
    const concerns = record.entries.filter((e) => e.opened && e.kind === 'concern');
    const verified = concerns.filter((e) => !e.retractedBy).map((e) => e.rag)
      .reduce((a, b) => (RAG_ORDER[b] > RAG_ORDER[a] ? b : a), '');
    const server = rag.dataset.tacServerRag;
    rag.dataset.tacVerifiedRag = verified;
    rag.querySelector('[data-tac-rag-verified]').textContent = `${RAG_LABEL[verified]} (verified from ${concerns.length} signed concern${concerns.length === 1 ? '' : 's'})`;
    const note = rag.querySelector('[data-tac-rag-note]');
    note.hidden = server === verified;
    note.textContent = server === verified ? '' : `The server's summary says ${RAG_LABEL[server] || server}: it does not match the signed posts.`;
  })().catch((error) => {
    rag.querySelector('[data-tac-rag-note]').hidden = false;
    rag.querySelector('[data-tac-rag-note]').textContent = `Not verified: ${error.message}`;
  });
}

// --- My work: what is waiting for me, from the server's metadata (never content), kept current live ----

const work = document.querySelector('[data-tac-my-work]');

const STATUS_WORDS = { open: 'waiting for you to accept', accepted: 'accepted', reopened: 'reopened' };

function actionItem(a) {
  const tags = [];
  if (a.overdue) tags.push(el('strong', { className: 'govuk-tag govuk-tag--red', text: 'Overdue' }));
  else if (a.due_soon) tags.push(el('strong', { className: 'govuk-tag govuk-tag--yellow', text: 'Due soon' }));
  return el('li', { attrs: { 'data-tac-work-action': a.action } }, [
    el('a', { className: 'govuk-link', text: `Action #${a.seq} in ${a.reference}`, attrs: { href: `/workspaces/${a.workspace}/#post-${a.action}` } }),
    ` · ${a.due ? `due ${a.due}` : 'no due date'} · ${STATUS_WORDS[a.status] || a.status} `, ...tags,
  ]);
}

function concernItem(x) {
  return el('li', { attrs: { 'data-tac-work-concern': x.post } }, [
    el('strong', { className: `govuk-tag ${x.rag === 'red' ? 'govuk-tag--red' : 'govuk-tag--orange'}`, text: x.rag === 'red' ? 'Red' : 'Amber' }), ' ',
    el('a', { className: 'govuk-link', text: `Concern #${x.seq} in ${x.reference}`, attrs: { href: `/workspaces/${x.workspace}/#post-${x.post}` } }),
  ]);
}

function section(name, title, items, render) {
  if (!items.length) return [];
  return [
    el('h3', { className: 'govuk-heading-s', text: `${title} (${items.length})`, attrs: { 'data-tac-work-count': name } }),
    el('ul', { className: 'govuk-list govuk-list--spaced' }, items.map(render)),
  ];
}

let lastSummary = null;
function renderWork(w) {
  const parts = [
    ...section('actions', 'Actions you own', w.actions, actionItem),
    ...section('to_accept', 'Actions waiting for you to accept', w.to_accept, actionItem),
    ...section('concerns', "Concerns waiting for your agency's acknowledgement", w.concerns, concernItem),
  ];
  if (w.invitations) {
    parts.push(el('p', { className: 'govuk-body', text: `${w.invitations} invitation${w.invitations === 1 ? '' : 's'} to answer, above.`, attrs: { 'data-tac-work-count': 'invitations' } }));
  }
  if (!parts.length) parts.push(el('p', { className: 'govuk-body', text: 'Nothing is waiting for you.' }));
  work.replaceChildren(...parts);
  const summary = `${w.actions.length + w.to_accept.length} actions, ${w.concerns.length} concerns waiting for you`;
  if (lastSummary !== null && summary !== lastSummary) document.querySelector('[data-tac-my-work-announce]').textContent = `My work changed: ${summary}.`;
  lastSummary = summary;
}

let refreshing = null;
let again = false;
function refreshWork() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = getJSON('/api/v1/me/work').then(renderWork)
    .catch((error) => { work.replaceChildren(el('p', { className: 'govuk-body', text: `What is waiting for you could not be shown: ${error.message}` })); })
    .finally(() => { refreshing = null; if (again) { again = false; refreshWork(); } });
  return refreshing;
}

if (work) {
  refreshWork();
  // Any post in one of my workspaces may change what is waiting for me: ask again (at most one request
  // in flight). The subscriptions start after the newest post, so no backlog is sent.
  const live = new Live();
  followUnread(live);
  for (const row of document.querySelectorAll('[data-tac-workspace-row][data-tac-last-seq]')) {
    live.subscribe(row.dataset.tacWorkspaceRow, Number(row.dataset.tacLastSeq));
  }
  live.addEventListener('post', () => refreshWork());
  for (const type of ['membership.invited', 'membership.ended', 'membership.changed']) live.addEventListener(type, () => refreshWork());
}
