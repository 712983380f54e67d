// Shows whether this tab holds the unlocked identity keys, with the professional's safety number, and
// offers to unlock them with the password when it does not (a tab opened fresh, or a second tab of the
// same session: the wrapping key lives in one tab's sessionStorage). Pages with [data-tac-key-status]
// get it by themselves; the workspace page waits on keysUnlocked() before it reads anything.
import * as c from './crypto.js';
import { unlock, unlockWithPassword } from './keystore.js';

let box = document.querySelector('[data-tac-key-status]');
let onUnlocked = () => {};

function showUnlocked(identity) {
  const fp = c.fingerprint(identity.signPublic, identity.boxPublic);
  box.replaceChildren();
  const p = document.createElement('p');
  p.className = 'govuk-body';
  p.textContent = 'Your encryption keys are unlocked in this tab. Your safety number: ';
  const digits = document.createElement('strong');
  digits.className = 'tac-safety-number';
  digits.dataset.tacSafetyNumber = '';
  digits.textContent = c.safetyNumber(fp);
  p.append(digits);
  box.append(p);
  box.dataset.state = 'unlocked';
  onUnlocked(identity);
}

function showLocked(reason) {
  box.replaceChildren();
  const form = document.createElement('form');
  form.noValidate = true;
  const label = document.createElement('label');
  label.className = 'govuk-label';
  label.htmlFor = 'unlock-password';
  label.textContent = reason;
  const input = document.createElement('input');
  input.className = 'govuk-input govuk-!-width-one-half';
  input.id = 'unlock-password';
  input.type = 'password';
  input.autocomplete = 'current-password';
  const button = document.createElement('button');
  button.className = 'govuk-button govuk-!-margin-top-2';
  button.type = 'submit';
  button.textContent = 'Unlock';
  const group = document.createElement('div');
  group.className = 'govuk-form-group';
  group.append(label, input);
  form.append(group, button);
  box.append(form);
  box.dataset.state = 'locked';
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      showUnlocked((await unlockWithPassword(input.value)).identity);
    } catch {
      label.textContent = 'That password did not unlock your keys. Try again.';
      input.focus();
    }
  });
}

function check() {
  unlock().then(({ identity }) => showUnlocked(identity)).catch((error) => {
    showLocked(error.message === 'locked'
      ? 'Enter your password to unlock your encryption keys in this tab'
      : `Your keys could not be unlocked (${error.message}). Enter your password to try again`);
  });
}

// Resolves with the identity once this tab's keys are unlocked, asking for the password in `where` first
// if they are not.
export function keysUnlocked(where) {
  box = where;
  return new Promise((resolve) => { onUnlocked = resolve; check(); });
}

if (box) check();
