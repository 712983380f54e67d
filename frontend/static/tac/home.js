// Home: answer invitations, and show each workspace's child name and highest concern as this device
// verified them. The server's own summary (its current RAG) is shown only as the server's, and a
// difference is flagged: the server can change that column, not the signed posts.
import { clearErrors, postJSON, showErrors } from './api.js';
import { fetchPosts, loadWorkspace, openPost } from './session.js';

const RAG_ORDER = { '': 0, green: 1, amber: 2, red: 3 };
const RAG_LABEL = { '': 'None', green: 'Green', amber: 'Amber', red: 'Red' };

for (const item of document.querySelectorAll('[data-tac-invitation]')) {
  // An answer refused is shown at the invitation: the summary links to the button that was pressed.
  item.dataset.tacErrorGroup = '';
  for (const button of item.querySelectorAll('[data-tac-respond]')) {
    if (!button.id) button.id = `${button.dataset.tacRespond}-${item.dataset.tacInvitation}`;
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
    const concerns = opened(await fetchPosts(id, 0, 'concern'), keys, reference);
    const retracted = new Set(opened(await fetchPosts(id, 0, 'retraction'), keys, reference)
      .filter((r) => concerns.some((x) => x.header.postId === r.header.targetId && x.header.authorId === r.header.authorId))
      .map((r) => r.header.targetId));
    const verified = concerns.filter((x) => !retracted.has(x.header.postId)).map((x) => x.header.rag)
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
