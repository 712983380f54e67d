// Client-side workspace logic (twin of tacclient/workspace.py): verifying the chain of signed manifests,
// opening epoch keys, building epochs, sealing and opening posts. Inputs are the API's JSON.
import * as c from './crypto.js';

export class TrustError extends Error {}

const td = new TextDecoder();
const te = new TextEncoder();

export function memberKey(card, role) {
  const signPublic = c.fromB64(card.sign_public);
  const boxPublic = c.fromB64(card.box_public);
  if (!c.identityBindingVerify(card.id, signPublic, boxPublic, c.fromB64(card.binding_signature))) {
    throw new TrustError(`the keys of ${card.name || card.id} are not bound to their account`);
  }
  return { publicId: card.id, signPublic, boxPublic, fingerprint: c.fingerprint(signPublic, boxPublic), role: role ?? card.role };
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// Check every manifest (chained by hash, signed by the lead named in the one before) and open the epoch
// keys wrapped for this identity. Returns { manifests, manifestHashes, epochKeys, currentEpoch }.
export function verifyWorkspace(detail, identity) {
  const manifests = new Map();
  const manifestHashes = new Map();
  const epochKeys = new Map();
  const cards = [...(detail.members || []), ...(detail.author_keys || []).map((k) => ({ ...k, id: k.professional }))];
  let previous = null;
  let prevHash = c.ZERO_HASH;
  for (const e of detail.epochs) {
    const raw = c.fromB64(e.manifest);
    const m = c.manifestParse(raw);
    if (m.workspaceId !== detail.id || m.epoch !== e.number) throw new TrustError(`epoch ${e.number} is for another workspace`);
    if (!sameBytes(m.prevManifestHash, prevHash)) throw new TrustError(`epoch ${e.number} does not chain to the one before`);
    const leads = m.members.filter((x) => x.role === 'lead');
    if (leads.length !== 1) throw new TrustError(`epoch ${e.number} does not name one lead`);
    const expectedSigner = (previous || m).members.find((x) => x.role === 'lead').publicId;
    if (e.signed_by !== expectedSigner) throw new TrustError(`epoch ${e.number} was not signed by the lead of the time`);
    const signerPublic = c.fromB64(e.signer_sign_public);
    const listed = m.members.find((x) => x.publicId === e.signed_by);
    const signerCard = cards.find((k) => k.id === e.signed_by && k.sign_public === e.signer_sign_public);
    if (!listed || !signerCard || !sameBytes(c.fingerprint(signerPublic, c.fromB64(signerCard.box_public)), listed.fingerprint)) {
      throw new TrustError(`epoch ${e.number}'s signer key is not the one its manifest lists`);
    }
    if (!c.verify(signerPublic, raw, c.fromB64(e.manifest_signature))) throw new TrustError(`epoch ${e.number}'s signature does not verify`);
    manifests.set(m.epoch, m);
    prevHash = c.hash32(raw);
    manifestHashes.set(m.epoch, prevHash);
    previous = m;
    for (const wrap of e.my_wraps) {
      try {
        epochKeys.set(m.epoch, c.epochKeyUnwrap(c.fromB64(wrap.sealed), identity, detail.id, m.epoch));
        break;
      } catch { /* a wrap for an older key of mine: try the next */ }
    }
  }
  const currentEpoch = Math.max(0, ...manifests.keys());
  return { workspaceId: detail.id, manifests, manifestHashes, epochKeys, currentEpoch };
}

export function epochBundle({ lead, workspaceId, epoch, prevManifestHash, members, custodianPublic }) {
  const epochKey = c.epochKeyNew();
  const wraps = members.map((m) => [m.publicId, c.epochKeyWrap(workspaceId, epoch, epochKey, m.boxPublic)]);
  const custodianWrap = c.epochKeyWrap(workspaceId, epoch, epochKey, custodianPublic);
  const manifest = c.manifestBytes({
    workspaceId, epoch, prevManifestHash, members, custodianId: c.custodianKeyId(custodianPublic),
    wrapsDigest: c.wrapsHash(wraps, custodianWrap), createdMs: Date.now(),
  });
  return {
    epochKey,
    payload: {
      epoch,
      manifest: c.toB64(manifest),
      manifest_signature: c.toB64(c.sign(lead, manifest)),
      wraps: wraps.map(([member, sealed]) => ({ member, sealed: c.toB64(sealed) })),
      custodian_wrap: c.toB64(custodianWrap),
    },
  };
}

export function inviteSignature(lead, workspaceId, member, role) {
  return c.toB64(c.sign(lead, c.inviteStatement(workspaceId, member.publicId, member.fingerprint, role)));
}

export function inviteVerifies(leadSignPublic, workspaceId, member, role, signature) {
  return c.verify(leadSignPublic, c.inviteStatement(workspaceId, member.publicId, member.fingerprint, role), c.fromB64(signature));
}

export function dayNumber(isoDate) {
  return isoDate ? Math.round(Date.parse(`${isoDate}T00:00:00Z`) / 86400000) : 0;
}

export function dayToIso(day) {
  return day ? new Date(day * 86400000).toISOString().slice(0, 10) : '';
}

export function sealPost({ identity, authorId, workspaceId, epoch, epochKey, kind, body, parentId, targetId, rag, ownerId, due, status, prevHash, postId }) {
  const header = {
    workspaceId, epoch, postId: postId || crypto.randomUUID(), authorId,
    authorFingerprint: c.fingerprint(identity.signPublic, identity.boxPublic), clientTimeMs: Date.now(), kind,
    parentId, targetId, rag: rag || '', ownerId, dueDay: dayNumber(due), status: status || '', prevHash,
  };
  const sealed = c.postSeal(identity, header, te.encode(JSON.stringify(body)), epochKey);
  return {
    post_id: header.postId,
    header: c.toB64(sealed.header), nonce: c.toB64(sealed.nonce), ciphertext: c.toB64(sealed.ciphertext),
    signature: c.toB64(sealed.signature),
  };
}

// signKeys: Map "<id>|<fingerprint b64>" -> sign public key
export function authorSignKeys(authorKeys) {
  const out = new Map();
  for (const k of authorKeys) {
    const signPublic = c.fromB64(k.sign_public);
    const boxPublic = c.fromB64(k.box_public);
    if (c.identityBindingVerify(k.professional, signPublic, boxPublic, c.fromB64(k.binding_signature))) {
      out.set(`${k.professional}|${c.toB64(c.fingerprint(signPublic, boxPublic))}`, signPublic);
    }
  }
  return out;
}

// Verify and decrypt. Never throws: a post that fails is returned with `problem` set, to be shown as a
// warning rather than silently dropped.
export function openPost(payload, keys, signKeys) {
  const out = { seq: payload.seq, postId: payload.post_id, kind: payload.kind, createdAt: payload.created_at, author: payload.author };
  try {
    const headerBytes = c.fromB64(payload.header);
    const nonce = c.fromB64(payload.nonce);
    const ciphertext = c.fromB64(payload.ciphertext);
    const h = c.postHeaderParse(headerBytes);
    Object.assign(out, { header: h, kind: h.kind, author: h.authorId });
    if (h.workspaceId !== keys.workspaceId || h.postId !== payload.post_id) throw new TrustError('this post belongs to another workspace');
    const signPublic = signKeys.get(`${h.authorId}|${c.toB64(h.authorFingerprint)}`);
    if (!signPublic || !c.postVerify(signPublic, headerBytes, nonce, ciphertext, c.fromB64(payload.signature))) {
      throw new TrustError("the author's signature does not verify: this post may have been altered");
    }
    const manifest = keys.manifests.get(h.epoch);
    const listed = manifest && manifest.members.find((m) => m.publicId === h.authorId);
    if (!listed) throw new TrustError('its author is not in the signed membership of its epoch');
    out.keyChanged = !sameBytes(listed.fingerprint, h.authorFingerprint);
    const key = keys.epochKeys.get(h.epoch);
    if (!key) throw new TrustError('this device has no key for it yet');
    out.body = JSON.parse(td.decode(c.postOpen(headerBytes, nonce, ciphertext, key)));
    out.hash = c.postHash(headerBytes, nonce, ciphertext);
  } catch (error) {
    out.problem = error.message;
  }
  return out;
}

// NHS numbers: ten digits whose check digit is 11 - (weighted sum mod 11), weights 10..2; 10 is invalid.
export function nhsNumberValid(value) {
  const digits = value.replace(/\s+/g, '');
  if (!/^\d{10}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i += 1) sum += Number(digits[i]) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  return check !== 10 && check === Number(digits[9]);
}
