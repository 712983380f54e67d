// Client-side workspace logic, the twin of tacprotocol/workspace.py: verifying a workspace's record against
// signed state, deciding who a new epoch admits, building epochs, sealing and opening posts. Inputs are
// the API's JSON and this professional's saved state (memory.js); nothing here talks to the network.
// docs/crypto.md ("What a reader believes") states every rule; the server is treated as an adversary
// that may edit any row and any answer.
import * as c from './crypto.js';

export class TrustError extends Error {}

const td = new TextDecoder();
const te = new TextEncoder();

export const EPOCH_MAX_POSTS = 500;
export const EPOCH_MAX_AGE_MS = 30 * 24 * 3600 * 1000;
export const CLOCK_SKEW_MS = 10 * 60 * 1000;
// What only a client can check, since the server sees ciphertext (docs/protocol.md, "Limits"): free text
// in a post, and an action's title. The due date's window the server checks too.
export const MAX_TEXT_CHARS = 20000;
export const MAX_TITLE_CHARS = 200;
export const MAX_DUE_YEARS = 2;

function b64d(text) {
  if (typeof text !== 'string') throw new TrustError('a binary value from the server is not a string');
  try {
    return c.fromB64(text);
  } catch {
    throw new TrustError('a binary value from the server is not valid base64');
  }
}

export function memberKey(card, role) {
  const signPublic = b64d(card.sign_public);
  const boxPublic = b64d(card.box_public);
  if (!c.identityBindingVerify(card.id, signPublic, boxPublic, b64d(card.binding_signature))) {
    throw new TrustError(`the keys of ${card.name || card.id} are not bound to their account`);
  }
  return { publicId: card.id, signPublic, boxPublic, fingerprint: c.fingerprint(signPublic, boxPublic), role: role ?? card.role };
}

const fromManifest = (m, role) => ({ publicId: m.publicId, signPublic: m.signPublic, boxPublic: m.boxPublic, fingerprint: m.fingerprint, role: role ?? m.role });

// --- the custodian pin ---------------------------------------------------------------------------------

// The data controller's keys as deployed (a static file served with the scripts), oldest first, each
// after the first signed by the one before. Never from an API answer.
export function parsePin(data) {
  if (!data || !Array.isArray(data.keys) || !data.keys.length) throw new TrustError('the custodian pin lists no key');
  const keys = [];
  for (const item of data.keys) {
    const boxPublic = b64d(item.box_public);
    const signPublic = b64d(item.sign_public);
    const keyId = c.custodianKeyId(boxPublic, signPublic);
    if (item.key_id !== c.toHex(keyId)) throw new TrustError("a custodian key's id in the pin does not match the key");
    if (keys.length) {
      const previous = keys[keys.length - 1];
      const statement = c.custodianRotationStatement(previous.keyId, boxPublic, signPublic, item.created_ms);
      if (!item.rotation_signature || !c.verify(previous.signPublic, statement, b64d(item.rotation_signature))) {
        throw new TrustError('a custodian key in the pin is not signed by the key before it');
      }
    }
    keys.push({ keyId, boxPublic, signPublic, label: item.label });
  }
  return {
    keys,
    current: keys[keys.length - 1],
    position: (keyId) => { const i = keys.findIndex((k) => c.sameBytes(k.keyId, keyId)); return i < 0 ? null : i; },
  };
}

// --- what a reader believes about a workspace ------------------------------------------------------------

function newKeys(workspaceId) {
  const keys = {
    workspaceId,
    manifests: new Map(),
    manifestHashes: new Map(),
    epochKeys: new Map(),
    // person id -> Map(fingerprint b64 -> { signPublic, boxPublic, how: manifest | confirmed | mine, by, atMs })
    trusted: new Map(),
    problems: [],
    // How each epoch's manifest was signed: epoch -> { how: lead | deputy | appointed, id } (docs/crypto.md).
    signedBy: new Map(),
    // A custodian appointment that verifies for the next epoch: { id, fingerprint }.
    appointed: null,
    appointmentsOffered: [],
    get currentEpoch() { return Math.max(0, ...this.manifests.keys()); },
    get current() { return this.manifests.get(this.currentEpoch); },
    members(epoch) { return new Map((this.manifests.get(epoch ?? this.currentEpoch)?.members || []).map((m) => [m.publicId, m])); },
    lead(epoch) { return (this.manifests.get(epoch ?? this.currentEpoch)?.members || []).find((m) => m.role === 'lead')?.publicId; },
    deputies(epoch) { return (this.manifests.get(epoch ?? this.currentEpoch)?.members || []).filter((m) => m.role === 'deputy').map((m) => m.publicId); },
    // Whether `publicId` may sign the next manifest, and as what: lead, deputy, appointed (or null).
    signerRole(publicId) {
      if (!this.manifests.size) return null;
      if (publicId === this.lead()) return 'lead';
      if (this.deputies().includes(publicId)) return 'deputy';
      if (this.appointed && this.appointed.id === publicId) return 'appointed';
      return null;
    },
    trust(publicId, fp) { return this.trusted.get(publicId)?.get(c.toB64(fp)) || null; },
    trustAdd(publicId, fp, key) {
      if (!this.trusted.has(publicId)) this.trusted.set(publicId, new Map());
      const known = this.trusted.get(publicId);
      const existing = known.get(c.toB64(fp));
      if (existing && !(key.how === 'manifest' && existing.how !== 'manifest')) return false;
      known.set(c.toB64(fp), key);
      return !existing;
    },
  };
  return keys;
}

function authorKeyIndex(detail) {
  const out = new Map();
  for (const k of detail.author_keys || []) {
    try {
      const signPublic = b64d(k.sign_public);
      const boxPublic = b64d(k.box_public);
      if (c.identityBindingVerify(k.professional, signPublic, boxPublic, b64d(k.binding_signature))) {
        out.set(`${k.professional}|${c.toB64(c.fingerprint(signPublic, boxPublic))}`, { signPublic, boxPublic });
      }
    } catch { /* an unusable key is simply not known */ }
  }
  return out;
}

// Keys vouched for by a current member (one of `members`), signed with a key already trusted for them;
// repeated until nothing changes.
function applyConfirmations(keys, confirmations, members) {
  let changed = true;
  while (changed) {
    changed = false;
    for (const x of confirmations) {
      let signPublic; let boxPublic; let signature;
      try {
        signPublic = b64d(x.sign_public); boxPublic = b64d(x.box_public); signature = b64d(x.signature);
      } catch { continue; }
      const fp = c.fingerprint(signPublic, boxPublic);
      if (!members.has(x.confirmer) || keys.trust(x.subject, fp)) continue;
      if (!Number.isSafeInteger(x.confirmed_ms)) continue;
      try {
        if (!c.identityBindingVerify(x.subject, signPublic, boxPublic, b64d(x.binding_signature))) continue;
      } catch { continue; }
      const statement = c.keyConfirmationStatement(x.confirmer, x.subject, fp, x.confirmed_ms);
      const confirmerKeys = [...(keys.trusted.get(x.confirmer)?.values() || [])];
      if (confirmerKeys.some((k) => c.verify(k.signPublic, statement, signature))) {
        changed = keys.trustAdd(x.subject, fp, { signPublic, boxPublic, how: 'confirmed', by: x.confirmer, atMs: x.confirmed_ms }) || changed;
      }
    }
  }
}

// Check a workspace's record and open the epoch keys wrapped for `identity` (docs/crypto.md). Throws
// TrustError for a record that cannot be believed at all; softer problems go in `.problems`.
export function verifyWorkspace(detail, identity, { myId = null, memory = null, verified = null, pin = null } = {}) {
  const keys = newKeys(detail.id);
  const known = authorKeyIndex(detail);
  const confirmations = detail.key_confirmations || [];
  for (const [pid, fps] of Object.entries(verified || {})) {
    for (const fpB64 of fps) {
      const k = known.get(`${pid}|${fpB64}`);
      if (k) keys.trustAdd(pid, c.fromB64(fpB64), { ...k, how: 'mine', by: myId, atMs: 0 });
    }
  }
  keys.appointmentsOffered = Array.isArray(detail.lead_appointments)
    ? detail.lead_appointments.filter((a) => a && typeof a === 'object' && !Array.isArray(a)) : [];
  let previous = null;
  let prevHash = c.ZERO_HASH;
  const epochs = [...(detail.epochs || [])].sort((x, y) => x.number - y.number);
  epochs.forEach((e, i) => {
    const raw = b64d(e.manifest);
    let m;
    try { m = c.manifestParse(raw); } catch (error) { throw new TrustError(`epoch ${e.number}: ${error.message}`); }
    if (m.workspaceId !== detail.id || m.epoch !== e.number || m.epoch !== i + 1) throw new TrustError(`epoch ${e.number}'s manifest is for another workspace or epoch`);
    if (!c.sameBytes(m.prevManifestHash, prevHash)) throw new TrustError(`epoch ${e.number}'s manifest does not chain to the one before`);
    const leads = m.members.filter((x) => x.role === 'lead');
    if (leads.length !== 1) throw new TrustError(`epoch ${e.number}'s manifest does not name one lead`);
    const signature = b64d(e.manifest_signature);
    if (!previous) {
      if (!c.verify(leads[0].signPublic, raw, signature)) throw new TrustError(`epoch ${e.number}'s manifest is not signed by the lead it names: refusing it`);
      keys.signedBy.set(m.epoch, { how: 'lead', id: leads[0].publicId });
    } else {
      keys.signedBy.set(m.epoch, checkSigner(keys, previous, m, raw, signature, pin));
    }
    if (pin) {
      const at = pin.position(m.custodianId);
      const before = previous ? pin.position(previous.custodianId) : null;
      if (at === null || (previous && !c.sameBytes(m.custodianId, previous.custodianId) && (before === null || at < before))) {
        throw new TrustError(`epoch ${e.number} is sealed to a custodian key that is not the pinned one`);
      }
    } else if (previous && !c.sameBytes(m.custodianId, previous.custodianId)) {
      throw new TrustError(`epoch ${e.number} names another custodian key, and no pin vouches for it`);
    }
    keys.manifests.set(m.epoch, m);
    prevHash = c.hash32(raw);
    keys.manifestHashes.set(m.epoch, prevHash);
    for (const x of m.members) keys.trustAdd(x.publicId, x.fingerprint, { signPublic: x.signPublic, boxPublic: x.boxPublic, how: 'manifest' });
    previous = m;
    applyConfirmations(keys, confirmations, new Set(m.members.map((x) => x.publicId)));
    for (const wrap of e.my_wraps || []) {
      let key;
      try { key = c.epochKeyUnwrap(b64d(wrap.sealed), identity, detail.id, m.epoch); } catch { continue; }
      if (!c.sameBytes(c.epochKeyCommitment(detail.id, m.epoch, key), m.keyCommitment)) {
        keys.problems.push(`The key the server gave you for epoch ${m.epoch} is not the one the lead sealed: it was not used.`);
        continue;
      }
      keys.epochKeys.set(m.epoch, key);
      break;
    }
  });
  if (previous) keys.appointed = appointmentFor(keys, previous, keys.manifestHashes.get(previous.epoch), pin);
  if (memory) checkMemory(keys, memory);
  return keys;
}

const idsWithRole = (manifest, role) => manifest.members.filter((x) => x.role === role).map((x) => x.publicId);

// The signing keys a reader accepts from someone in `manifest`'s place: the key it lists for them, or a new
// key of theirs a member confirmed or this reader compared (a lead or deputy who reset).
function keysFor(keys, manifest, publicId) {
  const listed = manifest.members.find((x) => x.publicId === publicId);
  const extra = [...(keys.trusted.get(publicId)?.values() || [])].filter((k) => k.how !== 'manifest').map((k) => k.signPublic);
  return [...(listed ? [listed.signPublic] : []), ...extra];
}

// The { id, fingerprint } of a custodian appointment that verifies for the epoch after `previous`: signed by
// a pinned custodian key no older than the one `previous` names, for this workspace, that epoch and that
// manifest's hash, naming a member (not oversight) of `previous` with a key trusted for them. Without the
// pin none is believed.
function appointmentFor(keys, previous, previousHash, pin) {
  if (!pin) return null;
  const custodians = pin.keys.slice(pin.position(previous.custodianId) ?? 0).map((k) => k.signPublic);
  for (const a of keys.appointmentsOffered) {
    if (a.epoch !== previous.epoch || !Number.isSafeInteger(a.created_ms) || a.created_ms < 0) continue;
    let fp; let signature;
    try { fp = b64d(a.fingerprint); signature = b64d(a.signature); } catch { continue; }
    const listed = previous.members.find((x) => x.publicId === a.appointee);
    if (!listed || !['member', 'deputy'].includes(listed.role) || !keys.trust(a.appointee, fp)) continue;
    const statement = c.leadAppointmentStatement(keys.workspaceId, previous.epoch, previousHash, a.appointee, fp, a.created_ms);
    if (custodians.some((k) => c.verify(k, statement, signature))) return { id: a.appointee, fingerprint: fp };
  }
  return null;
}

// Who may sign the manifest after `previous` (docs/crypto.md, "Lead continuity"), and how they did: the
// previous lead, as they please; a deputy of `previous`, keeping its lead, or taking the lead themselves
// when the previous lead is not in the new manifest; the member a custodian appointment names for
// `previous`, as lead, the previous lead gone. Neither a deputy nor an appointed lead may name deputies.
function checkSigner(keys, previous, m, raw, signature, pin) {
  const number = m.epoch;
  const oldLead = idsWithRole(previous, 'lead')[0];
  const newLead = idsWithRole(m, 'lead')[0];
  const signs = (id) => keysFor(keys, previous, id).some((k) => c.verify(k, raw, signature));
  if (signs(oldLead)) return { how: 'lead', id: oldLead };
  const newIds = new Set(m.members.map((x) => x.publicId));
  const previousDeputies = idsWithRole(previous, 'deputy');
  const keptDeputies = idsWithRole(m, 'deputy').every((id) => previousDeputies.includes(id));
  for (const deputy of previousDeputies) {
    if (!signs(deputy)) continue;
    if (newLead !== oldLead && !(newLead === deputy && !newIds.has(oldLead))) {
      throw new TrustError(`epoch ${number}'s manifest is signed by a deputy who names a new lead while the lead is still a member: a deputy takes over only when the lead has left`);
    }
    if (!keptDeputies) throw new TrustError(`epoch ${number}'s manifest is signed by a deputy who names deputies: only the lead can`);
    return { how: 'deputy', id: deputy };
  }
  const appointed = appointmentFor(keys, previous, keys.manifestHashes.get(previous.epoch), pin);
  if (appointed && appointed.id === newLead && c.verify(keys.trust(appointed.id, appointed.fingerprint).signPublic, raw, signature)) {
    if (newIds.has(oldLead) || !keptDeputies) {
      throw new TrustError(`epoch ${number}'s manifest, signed by the lead the custodians appointed, keeps the previous lead or names deputies`);
    }
    return { how: 'appointed', id: newLead };
  }
  throw new TrustError(`epoch ${number}'s manifest is not signed by the lead the record names, by a deputy, or by a lead the custodians appointed (with a key the team has confirmed): refusing it`);
}

function checkMemory(keys, memory) {
  const epoch = memory.epoch || 0;
  if (memory.first && (!keys.manifestHashes.get(1) || c.toB64(keys.manifestHashes.get(1)) !== memory.first)) {
    keys.problems.push("This workspace's first signed manifest is not the one your devices saw before.");
  }
  if (epoch > keys.currentEpoch) {
    keys.problems.push(`Your devices have seen key epoch ${epoch}, but the server shows only up to ${keys.currentEpoch}: it is hiding a newer epoch.`);
  } else if (memory.manifest && keys.manifestHashes.get(epoch) && c.toB64(keys.manifestHashes.get(epoch)) !== memory.manifest) {
    keys.problems.push(`Epoch ${epoch}'s manifest is not the one your devices saw before.`);
  }
}

// This workspace's entry for the saved state after a successful check: never lower than before.
export function remember(keys, memory, last) {
  const out = { ...(memory || {}) };
  if (keys.manifests.size && !keys.problems.length) {
    out.first = c.toB64(keys.manifestHashes.get(1));
    if (keys.currentEpoch >= (out.epoch || 0)) {
      out.epoch = keys.currentEpoch;
      out.manifest = c.toB64(keys.manifestHashes.get(keys.currentEpoch));
    }
  }
  if (last && last.seq >= (out.seq || 0)) { out.seq = last.seq; out.post = c.toB64(last.hash); }
  return out;
}

// From signed facts only: the manifest's own time and the posts this client has seen in the epoch.
export function rotationDue(keys, postsInCurrentEpoch, atMs = Date.now()) {
  if (!keys.manifests.size) return false;
  return postsInCurrentEpoch >= EPOCH_MAX_POSTS || atMs - keys.current.createdMs >= EPOCH_MAX_AGE_MS;
}

// --- who the next epoch admits ---------------------------------------------------------------------------

// null if the accepted invitee holds an invitation the current lead or a deputy signed for this key and role,
// made in an epoch no later than the current one and not used since; otherwise the reason to refuse.
export function invitationValid(keys, workspaceId, card, key) {
  const role = card.role || 'member';
  if (!['member', 'oversight'].includes(role)) return `the invitation has the role ${role}`;
  let signature; let nonce;
  try { signature = b64d(card.invite_signature); nonce = b64d(card.invite_nonce); } catch { return 'the server shows no complete invitation'; }
  const epoch = card.invite_epoch;
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > keys.currentEpoch || nonce.length !== c.INVITE_NONCE_BYTES) {
    return 'the invitation names an epoch that does not exist';
  }
  for (const [n] of keys.manifests) {
    if (n > epoch && keys.members(n).has(key.publicId)) return 'this invitation was used before (they have been admitted since it was signed)';
  }
  const signerKeys = [keys.lead(), ...keys.deputies()].flatMap((pid) => [...(keys.trusted.get(pid)?.values() || [])].map((k) => k.signPublic));
  const statement = c.inviteStatement(workspaceId, key.publicId, key.fingerprint, role, epoch, nonce);
  if (!signerKeys.some((k) => c.verify(k, statement, signature))) return 'no invitation signed by the lead (or a deputy) for their current key';
  return null;
}

// Each person's card from the server's member list, as tacprotocol/workspace.py's workspace_from_detail
// reads it: a card in a current state (invited, accepted, active) wins over an ended one for the same
// person, whatever the order (a stale "removed" row listed last must not drop a member from the next epoch).
export const CURRENT_STATES = ['invited', 'accepted', 'active'];
export function memberCards(detail) {
  const cards = new Map();
  for (const card of detail.members || []) {
    if (CURRENT_STATES.includes(card.state) || !cards.has(card.id)) cards.set(card.id, card);
  }
  return cards;
}

// Who the next epoch is wrapped for, from signed state (docs/crypto.md): the server's member list only says
// who has left and who accepted. cards: Map(id -> member card). The signer is `myId`: the lead, a deputy or
// an appointed lead ("Lead continuity", which readers check again on the manifest). `newLead` hands the
// lead over; `deputies` (a Set, the lead only) is the whole set of deputies from now. A deputy keeps the
// lead, or takes it (newLead = themselves) once the lead has left; an appointed lead takes it. Throws
// TrustError for a plan readers would refuse, or if the server shows an active member the signed
// membership does not list.
export function planEpochMembers(keys, cards, { myId, myFingerprint, remove = null, newLead = null, admit = null, deputies = null }) {
  const current = keys.members();
  const plan = { members: [], admitted: [], warnings: [], refused: new Map() };
  const signer = keys.signerRole(myId);
  const oldLead = keys.lead();
  if (signer === null) throw new TrustError('only the lead or a deputy the signed record names can start a new key epoch');
  if (signer !== 'lead' && deputies) throw new TrustError('only the lead can name deputies');
  if (signer === 'appointed' && newLead !== myId) throw new TrustError('the custodians appointed you: the next epoch names you as lead');
  if (signer !== 'lead' && newLead && newLead !== myId) throw new TrustError('only the lead can hand the lead role to someone else');
  const roleFor = (pid, role) => {
    if (pid === (newLead || oldLead)) return 'lead';
    if (role === 'lead') return 'member';
    if (deputies && ['member', 'deputy'].includes(role)) return deputies.has(pid) ? 'deputy' : 'member';
    return role;
  };
  for (const [pid, card] of cards) {
    if (card.state === 'active' && !current.has(pid) && pid !== remove) {
      throw new TrustError(`${card.name || pid} is shown as a member but is not in the signed membership: refusing to encrypt for them`);
    }
  }
  for (const [pid, listed] of current) {
    const card = cards.get(pid) || {};
    if (pid === remove || (card.state && card.state !== 'active') || card.is_active === false) continue;
    let key = fromManifest(listed, roleFor(pid, listed.role));
    if (card.sign_public) {
      const shown = memberKey(card, key.role);
      if (!c.sameBytes(shown.fingerprint, listed.fingerprint)) {
        if (keys.trust(pid, shown.fingerprint)) key = shown;
        else plan.warnings.push(`${card.name || pid}'s key changed and nobody in the team has confirmed the new one: compare the safety number with them, then admit it.`);
      }
    }
    if (pid === myId && !c.sameBytes(key.fingerprint, myFingerprint)) {
      throw new TrustError('the signed record lists a key for you that is not your own: ask a colleague to compare your safety number and admit your key first');
    }
    plan.members.push(key);
  }
  for (const [pid, card] of cards) {
    if (card.state !== 'accepted' || pid === remove || current.has(pid)) continue;
    if (admit && !admit.has(pid)) continue;
    let key;
    try { key = memberKey(card, card.role || 'member'); } catch (error) { plan.refused.set(pid, error.message); continue; }
    const reason = invitationValid(keys, keys.workspaceId, card, key);
    if (reason) {
      plan.refused.set(pid, reason);
      plan.warnings.push(`${card.name || pid} was not admitted: ${reason}.`);
      continue;
    }
    plan.members.push({ ...key, role: roleFor(pid, key.role) });
    plan.admitted.push(pid);
  }
  const ids = new Set(plan.members.map((m) => m.publicId));
  if (!ids.has(myId)) throw new TrustError('you are not in the signed membership');
  if (newLead && !ids.has(newLead)) throw new TrustError('the new lead must be a member of the signed membership');
  if (!newLead && !ids.has(oldLead)) throw new TrustError('the lead has left: a deputy or a lead the custodians appointed takes over first');
  if (signer !== 'lead' && newLead === myId && ids.has(oldLead)) {
    throw new TrustError('the lead is still a member: a deputy takes over only when the lead has left');
  }
  const roles = new Map(plan.members.map((m) => [m.publicId, m.role]));
  if (deputies && [...deputies].some((pid) => roles.get(pid) !== 'deputy')) {
    throw new TrustError('a deputy must be a member of the signed membership, neither the lead nor oversight');
  }
  return plan;
}

// The epochs before `firstEpoch` this client holds, or only those still current on or after `sinceIso`
// (by the manifests' signed times).
export function historyEpochs(keys, firstEpoch, sinceIso = null) {
  const sinceMs = sinceIso ? Date.parse(`${sinceIso}T00:00:00Z`) : null;
  return [...keys.epochKeys.keys()].sort((a, b) => a - b).filter((n) => {
    if (n >= firstEpoch) return false;
    const next = keys.manifests.get(n + 1);
    return sinceMs === null || !next || next.createdMs >= sinceMs;
  });
}

// --- building and sealing ----------------------------------------------------------------------------------

// custodian: { keyId, boxPublic } (parsePin(...).current)
export function epochBundle({ lead, workspaceId, epoch, prevManifestHash, members, custodian, createdMs = Date.now() }) {
  const epochKey = c.epochKeyNew();
  const wraps = members.map((m) => [m.publicId, c.epochKeyWrap(workspaceId, epoch, epochKey, m.boxPublic)]);
  const custodianWrap = c.epochKeyWrap(workspaceId, epoch, epochKey, custodian.boxPublic);
  const manifest = c.manifestBytes({
    workspaceId, epoch, prevManifestHash, members, custodianId: custodian.keyId,
    wrapsDigest: c.wrapsHash(wraps, custodianWrap), keyCommitment: c.epochKeyCommitment(workspaceId, epoch, epochKey), createdMs,
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

export function invitation(lead, workspaceId, member, role, epoch) {
  const nonce = c.randomBytes(c.INVITE_NONCE_BYTES);
  return {
    member: member.publicId, role, invite_nonce: c.toB64(nonce),
    invite_signature: c.toB64(c.sign(lead, c.inviteStatement(workspaceId, member.publicId, member.fingerprint, role, epoch, nonce))),
  };
}

// The signed statement "I compared this safety number with them", as POST .../key-confirmations takes it.
export function keyConfirmation(identity, confirmerId, subject, atMs = Date.now()) {
  const statement = c.keyConfirmationStatement(confirmerId, subject.publicId, subject.fingerprint, atMs);
  return { member: subject.publicId, fingerprint: c.toB64(subject.fingerprint), confirmed_ms: atMs, signature: c.toB64(c.sign(identity, statement)) };
}

export function dayNumber(isoDate) {
  return isoDate ? Math.round(Date.parse(`${isoDate}T00:00:00Z`) / 86400000) : 0;
}

export function dayToIso(day) {
  return day ? new Date(day * 86400000).toISOString().slice(0, 10) : '';
}

// prev: { seq, hash } of the newest post this client has verified (the chain readers check).
export function sealPost({ identity, authorId, workspaceId, epoch, epochKey, kind, body, parentId, targetId, rag, ownerId, due, status, prev, postId }) {
  const header = {
    workspaceId, epoch, postId: postId || crypto.randomUUID(), authorId,
    authorFingerprint: c.fingerprint(identity.signPublic, identity.boxPublic), clientTimeMs: Date.now(), kind,
    parentId, targetId, rag: rag || '', ownerId, dueDay: dayNumber(due), status: status || '',
    prevSeq: prev ? prev.seq : 0, prevHash: prev ? prev.hash : c.ZERO_HASH,
  };
  const sealed = c.postSeal(identity, header, te.encode(JSON.stringify(body)), epochKey);
  return {
    post_id: header.postId,
    header: c.toB64(sealed.header), nonce: c.toB64(sealed.nonce), ciphertext: c.toB64(sealed.ciphertext),
    signature: c.toB64(sealed.signature),
  };
}

// --- opening posts -------------------------------------------------------------------------------------------

// Verify and decrypt one post payload against the verified record (docs/crypto.md, "Posts"). Throws
// TrustError when it must be refused. detailsReference: the reference the workspace is shown under.
export function openPost(payload, keys, { detailsReference = null } = {}) {
  let h; let headerBytes; let nonce; let ciphertext; let signature;
  try {
    headerBytes = b64d(payload.header); nonce = b64d(payload.nonce); ciphertext = b64d(payload.ciphertext); signature = b64d(payload.signature);
    h = c.postHeaderParse(headerBytes);
  } catch (error) {
    throw new TrustError(`not a valid post (${error.message})`);
  }
  if (h.workspaceId !== keys.workspaceId || h.postId !== payload.post_id) throw new TrustError('this post belongs to another workspace or id');
  if (payload.kind !== h.kind || payload.author !== h.authorId || payload.epoch !== h.epoch) {
    throw new TrustError("the server's kind, author or epoch for this post differs from its signed header");
  }
  if (!keys.manifests.has(h.epoch)) throw new TrustError(`it is from key epoch ${h.epoch}, which the server has not shown this device: it may be hiding a change of keys`);
  if (!keys.members(h.epoch).has(h.authorId)) throw new TrustError('its author is not in the signed membership of its epoch');
  const trusted = keys.trust(h.authorId, h.authorFingerprint);
  if (!trusted) throw new TrustError("it is signed with a key that is not its author's verified key: it is not shown as theirs");
  if (!c.postVerify(trusted.signPublic, headerBytes, nonce, ciphertext, signature)) {
    throw new TrustError("the author's signature does not verify: this post may have been altered");
  }
  const key = keys.epochKeys.get(h.epoch);
  if (!key) throw new TrustError('this device has no key for it yet');
  let body;
  try {
    body = JSON.parse(td.decode(c.postOpen(headerBytes, nonce, ciphertext, key)));
  } catch (error) {
    throw new TrustError(error.message);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new TrustError('its body is not a JSON object');
  if (h.kind === 'details' && detailsReference !== null && (body.workspace !== keys.workspaceId || body.reference !== detailsReference)) {
    throw new TrustError(`these details are for another workspace than ${detailsReference}`);
  }
  const serverMs = Date.parse(payload.created_at);
  let timeNote = null;
  if (Number.isNaN(serverMs)) timeNote = 'the server gave no valid time for this post';
  else if (Math.abs(serverMs - h.clientTimeMs) > CLOCK_SKEW_MS) timeNote = `the server's time for this post (${new Date(serverMs).toLocaleString('en-GB')}) differs from its signed time`;
  return {
    seq: payload.seq, header: h, body, hash: c.postHash(headerBytes, nonce, ciphertext), keyTrust: trusted.how,
    confirmedBy: trusted.by || null, serverTime: payload.created_at, timeNote,
  };
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
