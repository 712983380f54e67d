// Opening a workspace: a new id and first epoch key made here, wrapped for the lead and the custodian,
// with the child's details as the first (encrypted, signed) post.
import * as c from './crypto.js';
import { clearErrors, getJSON, postJSON, setBusy, showErrors } from './api.js';
import { identity } from './session.js';
import { epochBundle, memberKey, nhsNumberValid, sealPost } from './workspace.js';

const form = document.querySelector('form[data-tac-new-workspace]');
const value = (id) => form.querySelector(`#${id}`).value.trim();

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const problems = [];
  if (!value('child-name')) problems.push({ field: 'child-name', message: "Enter the child's name" });
  if (value('child-nhs') && !nhsNumberValid(value('child-nhs'))) {
    problems.push({ field: 'child-nhs', message: 'Enter a valid NHS number: 10 digits, with a correct check digit' });
  }
  if (problems.length) { showErrors(problems); return; }
  const button = form.querySelector('button[type=submit]');
  setBusy(button, true, 'Opening…');
  try {
    await c.ready();
    const { identity: me, record } = await identity();
    const card = await getJSON('/api/v1/me');
    const custodian = await getJSON('/api/v1/custodian');
    const workspaceId = crypto.randomUUID();
    const { epochKey, payload } = epochBundle({
      lead: me, workspaceId, epoch: 1, prevManifestHash: c.ZERO_HASH,
      members: [memberKey(card, 'lead')], custodianPublic: c.fromB64(custodian.box_public),
    });
    const details = sealPost({
      identity: me, authorId: record.public_id, workspaceId, epoch: 1, epochKey, kind: 'details',
      body: {
        name: value('child-name'), dob: value('child-dob'), nhs_number: value('child-nhs').replace(/\s+/g, ''),
        address: value('child-address'), family: value('child-family'), notes: value('child-notes'),
      },
    });
    await postJSON('/api/v1/workspaces', { id: workspaceId, epoch: payload, details });
    window.location.assign(`/workspaces/${workspaceId}/`);
  } catch (error) {
    setBusy(button, false);
    showErrors([{ field: 'child-name', message: error.message }]);
  }
});
