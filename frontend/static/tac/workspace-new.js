// Opening a workspace: a new id and first epoch key made here, wrapped for the lead and the custodian key
// the deployment pinned (never one an API answer names); then the child's details as the first
// (encrypted, signed) post, bound to the workspace's id and the reference the server assigned.
import * as c from './crypto.js';
import { clearErrors, getJSON, postJSON, setBusy, showErrors } from './api.js';
import { custodianPin, identity } from './session.js';
import { MAX_TEXT_CHARS, MAX_TITLE_CHARS, epochBundle, memberKey, nhsNumberValid, sealPost } from './workspace.js';

const form = document.querySelector('form[data-tac-new-workspace]');
const value = (id) => form.querySelector(`#${id}`).value.trim();
// A workspace opened whose details were not stored yet: sent again, byte for byte, on the next try.
let pending = null;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const problems = [];
  if (!value('child-name')) problems.push({ field: 'child-name', message: "Enter the child's name" });
  if (value('child-nhs') && !nhsNumberValid(value('child-nhs'))) {
    problems.push({ field: 'child-nhs', message: 'Enter a valid NHS number: 10 digits, with a correct check digit' });
  }
  if (value('child-name').length > MAX_TITLE_CHARS) problems.push({ field: 'child-name', message: `The child's name must be ${MAX_TITLE_CHARS} characters or fewer` });
  for (const [id, what] of [['child-address', 'The address'], ['child-family', 'Family and household'], ['child-notes', 'Notes']]) {
    if (value(id).length > MAX_TEXT_CHARS) problems.push({ field: id, message: `${what} must be ${MAX_TEXT_CHARS.toLocaleString('en-GB')} characters or fewer` });
  }
  if (problems.length) { showErrors(problems); return; }
  const button = form.querySelector('button[type=submit]');
  setBusy(button, true, 'Opening…');
  try {
    await c.ready();
    if (!pending) {
      const { identity: me, record } = await identity();
      const card = await getJSON('/api/v1/me');
      const mine = memberKey(card, 'lead');
      if (!c.sameBytes(mine.signPublic, me.signPublic) || !c.sameBytes(mine.boxPublic, me.boxPublic)) {
        throw new Error('The server shows keys for you that are not your own. Nothing was sent.');
      }
      const pin = await custodianPin();
      const workspaceId = crypto.randomUUID();
      const { epochKey, payload } = epochBundle({
        lead: me, workspaceId, epoch: 1, prevManifestHash: c.ZERO_HASH, members: [mine], custodian: pin.current,
      });
      const created = await postJSON('/api/v1/workspaces', { id: workspaceId, epoch: payload });
      const details = sealPost({
        identity: me, authorId: record.public_id, workspaceId, epoch: 1, epochKey, kind: 'details',
        body: {
          name: value('child-name'), dob: value('child-dob'), nhs_number: value('child-nhs').replace(/\s+/g, ''),
          address: value('child-address'), family: value('child-family'), notes: value('child-notes'),
          workspace: workspaceId, reference: created.reference,
        },
      });
      pending = { workspaceId, reference: created.reference, details };
    }
    try {
      await postJSON(`/api/v1/workspaces/${pending.workspaceId}/posts`, pending.details);
    } catch (error) {
      const why = error.message.replace(/([^.])$/, '$1.');
      throw new Error(`Workspace ${pending.reference} is open, but the child's details were not saved. ${why} Press the button again to send them.`);
    }
    window.location.assign(`/workspaces/${pending.workspaceId}/`);
  } catch (error) {
    setBusy(button, false);
    showErrors([{ field: 'child-name', message: error.message }]);
  }
});
