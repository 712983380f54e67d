// Choosing a password for a new account (invitation) or after a forgotten one (reset): the browser
// makes new identity keys, seals the private halves under the wrapping key and sends only public keys,
// the auth key and the sealed box.
import * as c from './crypto.js';
import { clearErrors, passwordProblems, postJSON, setBusy, showErrors } from './api.js';
import { rememberWrapKey } from './keystore.js';

const form = document.querySelector('form[data-tac-enrol]');
const password = form.querySelector('#password');
const confirmation = form.querySelector('#password-confirm');
const button = form.querySelector('button[type=submit]');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const problems = passwordProblems(password.value, confirmation.value);
  if (problems.length) { showErrors(problems); return; }
  setBusy(button, true, 'Creating your keys…');
  try {
    await c.ready();
    const { userId, opslimit, memlimit } = form.dataset;
    const { keys, payload } = c.keyEnrolment(password.value, userId, Number(opslimit), Number(memlimit));
    const answer = await postJSON(form.action, payload);
    rememberWrapKey(keys.wrapKey);
    window.location.assign(answer.redirect);
  } catch (error) {
    setBusy(button, false);
    showErrors([{ field: 'password', message: error.message }]);
  }
});
