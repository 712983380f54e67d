// End-to-end primitives shared with Python (tacprotocol/crypto.py). libsodium only.
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

// --- workspaces: epoch keys, manifests, post envelopes (twins of crypto.py; docs/crypto.md) ----------

const LABEL_EPOCH_WRAP = enc.encode('tac.epoch.wrap.v1\0');
const LABEL_EPOCH_COMMIT = enc.encode('tac.epoch.commit.v1\0');
const LABEL_MANIFEST = enc.encode('tac.manifest.v2\0');
const LABEL_POST_HEADER = enc.encode('tac.post.header.v2\0');
const LABEL_POST_SIG = enc.encode('tac.post.sig.v1\0');
const LABEL_CUSTODIAN_ID = enc.encode('tac.custodian.v2\0');
const LABEL_CUSTODIAN_SIGN = enc.encode('tac.custodian.sign.v1\0');
const LABEL_CUSTODIAN_ROTATE = enc.encode('tac.custodian.rotate.v1\0');
const LABEL_INVITE = enc.encode('tac.invite.v2\0');
const LABEL_KEY_CONFIRM = enc.encode('tac.key.confirm.v1\0');
const LABEL_LEAD_APPOINT = enc.encode('tac.lead.appoint.v1\0');
const LABEL_STATE_KEY = enc.encode('tac.state.key.v1\0');
const LABEL_STATE = enc.encode('tac.state.v1\0');
const LABEL_STATE_SIG = enc.encode('tac.state.sig.v1\0');
export const ZERO_ID = '00000000-0000-0000-0000-000000000000';
export const ZERO_HASH = new Uint8Array(32);
export const INVITE_NONCE_BYTES = 16;
// Bodies are padded before encryption so a ciphertext's length tells only a bucket.
export const POST_PAD_BLOCK = 256;
export const DETAILS_PAD_BLOCK = 16 * 1024;
export const STATE_PAD_BLOCK = 1024;
// Signed times and sequence numbers must be exact JavaScript numbers.
export const MAX_TIME_MS = Number.MAX_SAFE_INTEGER;

function u32be(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function u16be(n) {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, n);
  return out;
}

function bytesToUuid(bytes) {
  const h = sodium.to_hex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export const sameBytes = (a, b) => a.length === b.length && compareBytes(a, b) === 0;

export const hash32 = (data) => sodium.crypto_generichash(KEY_BYTES, data);
export const keyedHash32 = (key, data) => sodium.crypto_generichash(KEY_BYTES, data, key);
export const pad = (data, block) => sodium.pad(data, block);
export function unpad(data, block) {
  try {
    return sodium.unpad(data, block);
  } catch {
    throw new Error('the padding is not valid');
  }
}
export const epochKeyNew = () => sodium.randombytes_buf(KEY_BYTES);

export function epochKeyWrap(workspaceId, epoch, epochKey, recipientBoxPublic) {
  return sodium.crypto_box_seal(
    concat(LABEL_EPOCH_WRAP, uuidBytes(workspaceId), u32be(epoch), epochKey), recipientBoxPublic,
  );
}

export function epochKeyUnwrap(sealed, identity, workspaceId, epoch) {
  let plain;
  try {
    plain = sodium.crypto_box_seal_open(sealed, identity.boxPublic, identity.boxSecret);
  } catch {
    throw new Error('the epoch key is not wrapped for this key');
  }
  const prefix = concat(LABEL_EPOCH_WRAP, uuidBytes(workspaceId), u32be(epoch));
  if (plain.length !== prefix.length + KEY_BYTES || compareBytes(plain.subarray(0, prefix.length), prefix) !== 0) {
    throw new Error('the wrap is bound to another workspace or epoch');
  }
  return plain.slice(prefix.length);
}

export const epochKeyCommitment = (workspaceId, epoch, epochKey) => keyedHash32(
  epochKey, concat(LABEL_EPOCH_COMMIT, uuidBytes(workspaceId), u32be(epoch)),
);

export const custodianKeyId = (boxPublic, signPublic) => hash32(concat(LABEL_CUSTODIAN_ID, boxPublic, signPublic));

export function custodianIdentity(secret) {
  return identityFromSecrets(keyedHash32(secret, LABEL_CUSTODIAN_SIGN), secret);
}

export const custodianRotationStatement = (previousKeyId, boxPublic, signPublic, createdMs) => concat(
  LABEL_CUSTODIAN_ROTATE, previousKeyId, boxPublic, signPublic, u64be(createdMs),
);

// wraps: array of [memberId, sealed]
export function wrapsHash(wraps, custodianWrap) {
  const sorted = [...wraps].sort((x, y) => compareBytes(uuidBytes(x[0]), uuidBytes(y[0])));
  const parts = [u32be(sorted.length)];
  for (const [memberId, sealed] of sorted) parts.push(uuidBytes(memberId), u32be(sealed.length), sealed);
  parts.push(u32be(custodianWrap.length), custodianWrap);
  return hash32(concat(...parts));
}

export const ROLE_CODES = { lead: 1, member: 2, oversight: 3, deputy: 4 };
const MEMBER_BYTES = 16 + 32 + 32 + 1;

// members: array of { publicId, signPublic, boxPublic, role }
export function manifestBytes({ workspaceId, epoch, prevManifestHash, members, custodianId, wrapsDigest, keyCommitment, createdMs }) {
  const ordered = [...members].sort((x, y) => compareBytes(uuidBytes(x.publicId), uuidBytes(y.publicId)));
  const parts = [
    LABEL_MANIFEST, uuidBytes(workspaceId), u32be(epoch), prevManifestHash, u64be(createdMs), custodianId,
    wrapsDigest, keyCommitment, u16be(ordered.length),
  ];
  for (const m of ordered) parts.push(uuidBytes(m.publicId), m.signPublic, m.boxPublic, Uint8Array.of(ROLE_CODES[m.role]));
  return concat(...parts);
}

export function manifestParse(data) {
  const fixed = LABEL_MANIFEST.length + 16 + 4 + 32 + 8 + 32 + 32 + 32 + 2;
  if (data.length < fixed || compareBytes(data.subarray(0, LABEL_MANIFEST.length), LABEL_MANIFEST) !== 0) {
    throw new Error('not an epoch manifest (version 2)');
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = LABEL_MANIFEST.length;
  const workspaceId = bytesToUuid(data.subarray(at, at + 16));
  const epoch = view.getUint32(at + 16);
  const prevManifestHash = data.slice(at + 20, at + 52);
  const createdMs = Number(view.getBigUint64(at + 52));
  const custodianId = data.slice(at + 60, at + 92);
  const wrapsDigest = data.slice(at + 92, at + 124);
  const keyCommitment = data.slice(at + 124, at + 156);
  const count = view.getUint16(at + 156);
  at += 158;
  if (data.length !== at + count * MEMBER_BYTES) throw new Error("the manifest's member list has the wrong length");
  const roles = Object.fromEntries(Object.entries(ROLE_CODES).map(([k, v]) => [v, k]));
  const members = [];
  for (let i = 0; i < count; i += 1) {
    const chunk = data.subarray(at + i * MEMBER_BYTES, at + (i + 1) * MEMBER_BYTES);
    if (!(chunk[80] in roles)) throw new Error('unknown role code in the manifest');
    const signPublic = chunk.slice(16, 48);
    const boxPublic = chunk.slice(48, 80);
    members.push({
      publicId: bytesToUuid(chunk.subarray(0, 16)), signPublic, boxPublic, fingerprint: fingerprint(signPublic, boxPublic),
      role: roles[chunk[80]],
    });
  }
  for (let i = 1; i < members.length; i += 1) {
    if (compareBytes(uuidBytes(members[i - 1].publicId), uuidBytes(members[i].publicId)) >= 0) {
      throw new Error('manifest members must be sorted and distinct');
    }
  }
  return { workspaceId, epoch, prevManifestHash, createdMs, custodianId, wrapsDigest, keyCommitment, members };
}

export function inviteStatement(workspaceId, memberId, memberFingerprint, role, epoch, nonce) {
  if (nonce.length !== INVITE_NONCE_BYTES) throw new Error('an invitation nonce is 16 bytes');
  return concat(LABEL_INVITE, uuidBytes(workspaceId), uuidBytes(memberId), memberFingerprint,
    Uint8Array.of(ROLE_CODES[role]), u32be(epoch), nonce);
}

export const keyConfirmationStatement = (confirmerId, subjectId, subjectFingerprint, confirmedMs) => concat(
  LABEL_KEY_CONFIRM, uuidBytes(confirmerId), uuidBytes(subjectId), subjectFingerprint, u64be(confirmedMs),
);

// What two custodians sign (the custodian key's Ed25519 half) when a lead has gone and no deputy remains:
// after epoch `epoch`, whose manifest hashes to `manifestHash`, this member with this key leads. It names
// one manifest, so it starts one epoch and cannot be replayed on a later record.
export function leadAppointmentStatement(workspaceId, epoch, manifestHash, appointeeId, appointeeFingerprint, createdMs) {
  return concat(LABEL_LEAD_APPOINT, uuidBytes(workspaceId), u32be(epoch), manifestHash, uuidBytes(appointeeId),
    appointeeFingerprint, u64be(createdMs));
}

// --- the saved state (twin of crypto.py's state_*) ----------------------------------------------------

export const stateKey = (identity, userId) => keyedHash32(identity.boxSecret, concat(LABEL_STATE_KEY, uuidBytes(userId)));
const stateAd = (userId, version) => concat(LABEL_STATE, uuidBytes(userId), u64be(version));
const stateSignedMessage = (userId, version, blob) => concat(LABEL_STATE_SIG, uuidBytes(userId), u64be(version), hash32(blob));

export function stateSeal(identity, userId, version, plaintext, nonce = null) {
  const n = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    pad(plaintext, STATE_PAD_BLOCK), stateAd(userId, version), null, n, stateKey(identity, userId),
  );
  const blob = concat(n, sealed);
  return { blob, signature: sign(identity, stateSignedMessage(userId, version, blob)) };
}

export function stateOpen(identity, userId, version, blob, signature) {
  if (!verify(identity.signPublic, stateSignedMessage(userId, version, blob), signature)) {
    throw new Error('the saved state is not signed by this identity');
  }
  let padded;
  try {
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null, blob.subarray(NONCE_BYTES), stateAd(userId, version), blob.subarray(0, NONCE_BYTES), stateKey(identity, userId),
    );
  } catch {
    throw new Error('the saved state did not open with this identity');
  }
  return unpad(padded, STATE_PAD_BLOCK);
}

export const KIND_CODES = {
  concern: 1, action: 2, update: 3, decision: 4, details: 5, action_status: 10, acknowledgement: 11, edit: 12, retraction: 13,
  history_shared: 14, rating_change: 15,
};
export const RAG_CODES = { '': 0, green: 1, amber: 2, red: 3 };
export const STATUS_CODES = {
  '': 0, open: 1, done: 2, reopened: 3, cancelled: 4, accepted: 5, confirmed: 6, reassigned: 7,
};
const invert = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [v, k]));
const KINDS = invert(KIND_CODES);
const RAGS = invert(RAG_CODES);
const STATUSES = invert(STATUS_CODES);
export const HEADER_VERSION = 2;
const HEADER_LENGTH = LABEL_POST_HEADER.length + 1 + 16 + 4 + 16 + 16 + 32 + 8 + 3 + 48 + 4 + 8 + 32;

export function postHeaderBytes(h) {
  return concat(
    LABEL_POST_HEADER, Uint8Array.of(h.version ?? HEADER_VERSION), uuidBytes(h.workspaceId), u32be(h.epoch), uuidBytes(h.postId),
    uuidBytes(h.authorId), h.authorFingerprint, u64be(h.clientTimeMs),
    Uint8Array.of(KIND_CODES[h.kind], RAG_CODES[h.rag ?? ''], STATUS_CODES[h.status ?? '']),
    uuidBytes(h.parentId ?? ZERO_ID), uuidBytes(h.targetId ?? ZERO_ID), uuidBytes(h.ownerId ?? ZERO_ID),
    u32be(h.dueDay ?? 0), u64be(h.prevSeq ?? 0), h.prevHash ?? ZERO_HASH,
  );
}

export function postHeaderParse(data) {
  if (data.length !== HEADER_LENGTH || compareBytes(data.subarray(0, LABEL_POST_HEADER.length), LABEL_POST_HEADER) !== 0) {
    throw new Error('not a post header (version 2)');
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = LABEL_POST_HEADER.length;
  const take = (n) => { const chunk = data.subarray(at, at + n); at += n; return chunk; };
  const version = take(1)[0];
  if (version !== HEADER_VERSION) throw new Error(`unknown post header version ${version}`);
  const workspaceId = bytesToUuid(take(16));
  const epoch = view.getUint32(at); at += 4;
  const postId = bytesToUuid(take(16));
  const authorId = bytesToUuid(take(16));
  const authorFingerprint = take(32).slice();
  const time = view.getBigUint64(at); at += 8;
  if (time > BigInt(MAX_TIME_MS)) throw new Error("the post header's time is out of range");
  const [k, r, s] = take(3);
  if (!(k in KINDS) || !(r in RAGS) || !(s in STATUSES)) throw new Error('unknown code in post header');
  const parentId = bytesToUuid(take(16));
  const targetId = bytesToUuid(take(16));
  const ownerId = bytesToUuid(take(16));
  const dueDay = view.getUint32(at); at += 4;
  const prev = view.getBigUint64(at); at += 8;
  if (prev > BigInt(MAX_TIME_MS)) throw new Error("the post header's previous sequence number is out of range");
  const prevHash = take(32).slice();
  return {
    version, workspaceId, epoch, postId, authorId, authorFingerprint, clientTimeMs: Number(time), kind: KINDS[k], rag: RAGS[r],
    status: STATUSES[s], parentId, targetId, ownerId, dueDay, prevSeq: Number(prev), prevHash,
  };
}

export const padBlock = (kind) => (kind === 'details' ? DETAILS_PAD_BLOCK : POST_PAD_BLOCK);

export const postSignedMessage = (header, nonce, ciphertext) => concat(
  LABEL_POST_SIG, hash32(header), hash32(concat(nonce, ciphertext)),
);

export function postSeal(identity, header, body, epochKey, nonce = null) {
  const headerBytes = postHeaderBytes(header);
  const n = nonce ?? sodium.randombytes_buf(NONCE_BYTES);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(pad(body, padBlock(header.kind)), headerBytes, null, n, epochKey);
  return { header: headerBytes, nonce: n, ciphertext, signature: sign(identity, postSignedMessage(headerBytes, n, ciphertext)) };
}

export const postVerify = (authorSignPublic, header, nonce, ciphertext, signature) => verify(
  authorSignPublic, postSignedMessage(header, nonce, ciphertext), signature,
);

export function postOpen(header, nonce, ciphertext, epochKey) {
  const { kind } = postHeaderParse(header);
  let padded;
  try {
    padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, header, nonce, epochKey);
  } catch {
    throw new Error('the post did not open with this epoch key');
  }
  return unpad(padded, padBlock(kind));
}

export const postHash = (header, nonce, ciphertext) => hash32(concat(header, nonce, ciphertext));
