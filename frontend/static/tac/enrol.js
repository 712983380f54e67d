// Choosing a password for a new account (invitation) or after a forgotten one (reset): the browser
// makes new identity keys, seals the private halves under the wrapping key and sends only public keys,
// the auth key and the sealed box. A reset also sends the security code (a TOTP code or a backup code)
// when the page asks for one: the emailed link alone does not reset an account that has 2FA.
import * as c from './crypto.js';
import { clearErrors, passwordProblems, postJSON, setBusy, showErrors } from './api.js';
import { rememberWrapKey } from './keystore.js';

const form = document.querySelector('form[data-tac-enrol]');
const password = form.querySelector('#password');
const confirmation = form.querySelector('#password-confirm');
const code = form.querySelector('#otp-token');
const button = form.querySelector('button[type=submit]');
const CODE_MISSING = 'Enter the security code from your authenticator app, or one of your backup codes';

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const problems = passwordProblems(password.value, confirmation.value);
  if (code && !code.value.trim()) problems.push({ field: 'otp-token', message: CODE_MISSING });
  if (problems.length) { showErrors(problems); return; }
  setBusy(button, true, 'Creating your keys…');
  try {
    await c.ready();
    const { userId, opslimit, memlimit } = form.dataset;
    const { keys, payload } = c.keyEnrolment(password.value, userId, Number(opslimit), Number(memlimit));
    const answer = await postJSON(form.action, code ? { ...payload, otp_token: code.value.trim() } : payload);
    rememberWrapKey(keys.wrapKey);
    window.location.assign(answer.redirect);
  } catch (error) {
    setBusy(button, false);
    showErrors([{ field: error.code === 'otp_refused' ? 'otp-token' : 'password', message: error.message }]);
  }
});
