// End-to-end primitives shared with Python (tacclient/crypto.py). libsodium only.
// Every function has a twin in crypto.py; tests/vectors/crypto.json proves both give identical bytes.
import sodium from '/static/vendor/libsodium/libsodium-wrappers.mjs';

export const SALT_BYTES = 16;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;

const enc = new TextEncoder();
const LABEL_AUTH = enc.encode('tac.kdf.auth.v1');
const LABEL_WRAP = enc.encode('tac.kdf.wrap.v1');
const LABEL_IDENTITY_WRAP = enc.encode('tac.identity.wrap.v1\0');
const LABEL_IDENTITY_BINDING = enc.encode('tac.identity.binding.v1\0');
const LABEL_FINGERPRINT = enc.encode('tac.fingerprint.v1\0');

export async function ready() {
  await sodium.ready;
  return sodium;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export const toB64 = (bytes) => sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
export const fromB64 = (text) => sodium.from_base64(text, sodium.base64_variants.ORIGINAL);
export const toHex = (bytes) => sodium.to_hex(bytes);
export const fromHex = (text) => sodium.from_hex(text);
export const randomBytes = (n) => sodium.randombytes_buf(n);

export function uuidBytes(uuid) {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error('not a UUID');
  return sodium.from_hex(hex.toLowerCase());
}

export function normalisePassword(password) {
  // NFKC, as in Python: the same password typed on a phone or a clinical PC gives the same bytes.
  return enc.encode(password.normalize('NFKC'));
}

// Argon2id(password, salt) -> master; keyed BLAKE2b(master, label) -> auth key and wrapping key.
export function deriveKeys(password, salt, opslimit, memlimit) {
  if (salt.length !== SALT_BYTES) throw new Error('salt must be 16 bytes');
  const master = sodium.crypto_pwhash(
    KEY_BYTES, normalisePassword(password), salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
  const keys = {
    authKey: sodium.crypto_generichash(KEY_BYTES, LABEL_AUTH, master),
    wrapKey: sodium.crypto_generichash(KEY_BYTES, LABEL_WRAP, master),
  };
  sodium.memzero(master);
  return keys;
}

export const newSalt = () => sodium.randombytes_buf(SALT_BYTES);

// An identity: Ed25519 signing seed and X25519 secret, 32 bytes each.
export function identityFromSecrets(signSeed, boxSecret) {
  const sign = sodium.crypto_sign_seed_keypair(signSeed);
  return {
    signSeed,
    boxSecret,
    signPublic: sign.publicKey,
    signPrivate: sign.privateKey,
    boxPublic: sodium.crypto_scalarmult_base(boxSecret),
  };
}

export function identityGenerate() {
  return identityFromSecrets(sodium.randombytes_buf(KEY_BYTES), sodium.randombytes_buf(KEY_BYTES));
}

export function sign(identity, message) {
  return sodium.crypto_sign_detached(message, identity.signPrivate);
}

export function verify(signPublic, message, signature) {
  try {
    return sodium.crypto_sign_verify_detached(signature, message, signPublic);
  } catch {
    return false;
  }
}

export function identityBindingMessage(userId, boxPublic) {
  return concat(LABEL_IDENTITY_BINDING, uuidBytes(userId), boxPublic);
}

export function identityBindingSignature(identity, userId) {
  return sign(identity, identityBindingMessage(userId, identity.boxPublic));
}

export function identityBindingVerify(userId, signPublic, boxPublic, signature) {
  return verify(signPublic, identityBindingMessage(userId, boxPublic), signature);
}

function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

export function identityWrapAd(userId, salt, opslimit, memlimit) {
  return concat(LABEL_IDENTITY_WRAP, uuidBytes(userId), salt, u64be(opslimit), u64be(memlimit));
}

export function identityWrap(identity, wrapKey, ad, nonce = null) {
  const n = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    concat(identity.signSeed, identity.boxSecret), ad, null, n, wrapKey,
  );
  return concat(n, sealed);
}

export function identityUnwrap(blob, wrapKey, ad) {
  let secrets;
  try {
    secrets = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null, blob.subarray(NONCE_BYTES), ad, blob.subarray(0, NONCE_BYTES), wrapKey,
    );
  } catch {
    throw new Error('the identity keys did not open with this password');
  }
  return identityFromSecrets(secrets.slice(0, KEY_BYTES), secrets.slice(KEY_BYTES));
}

export function fingerprint(signPublic, boxPublic) {
  return sodium.crypto_generichash(KEY_BYTES, concat(LABEL_FINGERPRINT, signPublic, boxPublic));
}

// Thirty digits in six groups: each 5-byte chunk as a big-endian integer modulo 100000.
export function safetyNumber(fp) {
  const groups = [];
  for (let i = 0; i < 30; i += 5) {
    let n = 0n;
    for (const byte of fp.subarray(i, i + 5)) n = (n << 8n) | BigInt(byte);
    groups.push(String(n % 100000n).padStart(5, '0'));
  }
  return groups.join(' ');
}

// What a new account, or a reset password, sends: everything the server needs and nothing secret.
export function keyEnrolment(password, userId, opslimit, memlimit) {
  const salt = newSalt();
  const keys = deriveKeys(password, salt, opslimit, memlimit);
  const identity = identityGenerate();
  const wrapped = identityWrap(identity, keys.wrapKey, identityWrapAd(userId, salt, opslimit, memlimit));
  return {
    keys,
    identity,
    payload: {
      auth_key: toHex(keys.authKey),
      salt: toB64(salt),
      opslimit,
      memlimit,
      wrapped_secret: toB64(wrapped),
      sign_public: toB64(identity.signPublic),
      box_public: toB64(identity.boxPublic),
      binding_signature: toB64(identityBindingSignature(identity, userId)),
    },
  };
}
