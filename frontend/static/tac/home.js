// Home: answer invitations, and show each workspace's child name (decrypted on this device).
import { postJSON, showErrors } from './api.js';
import { fetchPosts, latestDetails, loadWorkspace, openPost } from './session.js';

for (const item of document.querySelectorAll('[data-tac-invitation]')) {
  for (const button of item.querySelectorAll('[data-tac-respond]')) {
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await postJSON(`/api/v1/workspaces/${item.dataset.tacInvitation}/membership/${button.dataset.tacRespond}`, {});
        window.location.reload();
      } catch (error) {
        button.disabled = false;
        showErrors([{ field: 'main-content', message: error.message }]);
      }
    });
  }
}

for (const row of document.querySelectorAll('[data-tac-workspace-row]')) {
  if (!row.querySelector('a')) continue; // not active yet: no keys
  (async () => {
    const { keys, signKeys } = await loadWorkspace(row.dataset.tacWorkspaceRow);
    const details = latestDetails((await fetchPosts(row.dataset.tacWorkspaceRow, 0, 'details'))
      .map((p) => openPost(p, keys, signKeys)));
    if (details) row.querySelector('[data-tac-child-name]').textContent = ` ${details.body.name || ''}`;
  })().catch(() => { /* the row still links to the workspace, which explains any problem */ });
}
