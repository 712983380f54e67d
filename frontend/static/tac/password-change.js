// Password change: the same private keys are re-sealed under a new wrapping key, so nothing needs
// re-keying. The current password proves itself by deriving the current auth key.
import * as c from './crypto.js';
import { clearErrors, passwordProblems, postJSON, setBusy, showErrors } from './api.js';
import { myKeys, rememberWrapKey } from './keystore.js';

const form = document.querySelector('form[data-tac-password-change]');
const current = form.querySelector('#current-password');
const password = form.querySelector('#password');
const confirmation = form.querySelector('#password-confirm');
const button = form.querySelector('button[type=submit]');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearErrors();
  const problems = passwordProblems(password.value, confirmation.value);
  if (!current.value) problems.unshift({ field: 'current-password', message: 'Enter your current password' });
  if (problems.length) { showErrors(problems); return; }
  setBusy(button, true, 'Changing your password…');
  try {
    await c.ready();
    const record = await myKeys();
    const oldSalt = c.fromB64(record.salt);
    const old = c.deriveKeys(current.value, oldSalt, record.opslimit, record.memlimit);
    const identity = c.identityUnwrap(
      c.fromB64(record.wrapped_secret), old.wrapKey,
      c.identityWrapAd(record.public_id, oldSalt, record.opslimit, record.memlimit),
    );
    const { opslimit, memlimit } = form.dataset;
    const salt = c.newSalt();
    const fresh = c.deriveKeys(password.value, salt, Number(opslimit), Number(memlimit));
    const wrapped = c.identityWrap(
      identity, fresh.wrapKey, c.identityWrapAd(record.public_id, salt, Number(opslimit), Number(memlimit)),
    );
    const answer = await postJSON(form.action, {
      current_auth_key: c.toHex(old.authKey),
      auth_key: c.toHex(fresh.authKey),
      salt: c.toB64(salt),
      opslimit: Number(opslimit),
      memlimit: Number(memlimit),
      wrapped_secret: c.toB64(wrapped),
    });
    rememberWrapKey(fresh.wrapKey);
    window.location.assign(answer.redirect);
  } catch (error) {
    setBusy(button, false);
    const message = /did not open/.test(error.message) ? 'Your current password is wrong' : error.message;
    showErrors([{ field: 'current-password', message }]);
  }
});
