// Sign-in: the password is turned into an auth key and a wrapping key here; only the auth key is sent.
// The password input has no name attribute, so even a failure of this script cannot post it.
import * as c from './crypto.js';
import { clearErrors, postJSON, setBusy, showErrors } from './api.js';
import { forget, rememberWrapKey } from './keystore.js';

const form = document.querySelector('form[data-tac-sign-in]');
const email = form.querySelector('#email');
const password = form.querySelector('#password');
const authKey = form.querySelector('input[name=auth_key]');
const button = form.querySelector('button[type=submit]');

forget(); // a fresh sign-in page holds no key from an earlier session

form.addEventListener('submit', async (event) => {
  if (authKey.value) return; // second pass: the key is in place, let the form post
  event.preventDefault();
  const problems = [];
  if (!email.value.trim()) problems.push({ field: 'email', message: 'Enter your email address' });
  if (!password.value) problems.push({ field: 'password', message: 'Enter your password' });
  if (problems.length) { showErrors(problems); return; }
  clearErrors();
  setBusy(button, true, 'Signing in…');
  try {
    await c.ready();
    const params = await postJSON('/accounts/api/v1/prelogin', { email: email.value.trim() });
    const keys = c.deriveKeys(password.value, c.fromB64(params.salt), params.opslimit, params.memlimit);
    authKey.value = c.toHex(keys.authKey);
    rememberWrapKey(keys.wrapKey);
    password.value = '';
    form.submit();
  } catch (error) {
    setBusy(button, false);
    showErrors([{ field: 'email', message: error.message }]);
  }
});
