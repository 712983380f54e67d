// Holds the wrapping key for this browser tab's session, and unlocks the identity keys with it.
//
// The wrapping key is derived at sign-in and kept in sessionStorage: it lives only as long as the tab's
// session, is never sent anywhere, and is cleared at sign-out. Pages fetch the sealed private keys from
// the server and open them here. A tab without the key (opened fresh) asks for the password again.
import * as c from './crypto.js';
import { getJSON } from './api.js';

const WRAP_KEY = 'tac.wrapKey';

export function rememberWrapKey(wrapKey) {
  sessionStorage.setItem(WRAP_KEY, c.toB64(wrapKey));
}

export function forget() {
  sessionStorage.removeItem(WRAP_KEY);
}

export function hasWrapKey() {
  return sessionStorage.getItem(WRAP_KEY) !== null;
}

export async function myKeys() {
  return getJSON('/accounts/api/v1/me/keys');
}

// Returns { identity, record } or throws if this tab has no key or the key does not open the box.
export async function unlock() {
  await c.ready();
  const stored = sessionStorage.getItem(WRAP_KEY);
  if (stored === null) throw new Error('locked');
  const record = await myKeys();
  const salt = c.fromB64(record.salt);
  const ad = c.identityWrapAd(record.public_id, salt, record.opslimit, record.memlimit);
  const identity = c.identityUnwrap(c.fromB64(record.wrapped_secret), c.fromB64(stored), ad);
  // The server's copy of the public keys must be the ones the private keys make.
  if (c.toB64(identity.signPublic) !== record.sign_public || c.toB64(identity.boxPublic) !== record.box_public) {
    throw new Error('the public keys on the server do not match your private keys');
  }
  return { identity, record };
}

export async function unlockWithPassword(password) {
  await c.ready();
  const record = await myKeys();
  const keys = c.deriveKeys(password, c.fromB64(record.salt), record.opslimit, record.memlimit);
  rememberWrapKey(keys.wrapKey);
  return unlock();
}
