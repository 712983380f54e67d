"""Client-side workspace logic in Python: verifying a workspace's record against signed state, building
epochs, sealing and opening posts. The browser's twin is frontend/static/tac/workspace.js, and both
follow the rules in docs/crypto.md ("What a reader believes"). Inputs are the JSON the API returns
(messaging/selectors.py) and what this professional's clients remember (tacclient/memory.py); nothing
here talks to the network.

The server is treated as an active adversary: it may edit any row and any answer. So nothing it says
about keys, members, epochs, order or time is believed unless it verifies against signed statements
this client already trusts:
  - the chain of epoch manifests, each signed by the lead or a deputy the previous one names (or a lead
    the custodians appointed for it), with the key that manifest lists for them (or a key a current
    member confirmed);
  - the keys a manifest lists for each member, and keys a current member vouched for after comparing
    safety numbers (a signed key confirmation), or this professional compared themselves;
  - the epoch key, checked against the manifest's commitment before it is used;
  - the custodian key, pinned at deployment and changed only by a statement its previous key signed;
  - what this professional's clients saw before (the highest epoch, the newest post), so nothing is
    rolled back unnoticed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

from . import crypto
from .wire import CLOCK_SKEW_MS, EPOCH_MAX_AGE_MS, EPOCH_MAX_POSTS


def b64e(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def b64d(text: str) -> bytes:
    if not isinstance(text, str):
        raise TrustError("a binary value from the server is not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TrustError("a binary value from the server is not valid base64") from exc


class TrustError(Exception):
    """The server's answer contradicts the signed record: do not encrypt for it or show it as genuine."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class MemberKey:
    public_id: uuid.UUID
    sign_public: bytes
    box_public: bytes
    role: str

    @property
    def fingerprint(self) -> bytes:
        return crypto.fingerprint(self.sign_public, self.box_public)

    @classmethod
    def from_card(cls, card: dict, role: str | None = None) -> MemberKey:
        member = cls(uuid.UUID(card["id"]), b64d(card["sign_public"]), b64d(card["box_public"]),
                     role or card.get("role", "member"))
        if not crypto.identity_binding_verify(member.public_id, member.sign_public, member.box_public,
                                              b64d(card["binding_signature"])):
            raise TrustError(f"the keys of {member.public_id} are not bound to that account")
        return member

    @classmethod
    def from_manifest(cls, m: crypto.ManifestMember, role: str | None = None) -> MemberKey:
        return cls(m.public_id, m.sign_public, m.box_public, role or m.role)


# --- custodian pin -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustodianPin:
    """The data controller's keys as deployed (frontend/static pins, docs/crypto.md), oldest first. Each
    key after the first is vouched for by its predecessor's signature, so the chain is checked once and
    its ids are the only custodian keys a manifest may name; `current` is what new epochs seal to."""

    keys: tuple[tuple[bytes, bytes, bytes], ...]  # (key_id, box_public, sign_public)

    @property
    def ids(self) -> list[bytes]:
        return [k[0] for k in self.keys]

    @property
    def current(self) -> tuple[bytes, bytes, bytes]:
        return self.keys[-1]

    def position(self, key_id: bytes) -> int | None:
        return next((i for i, k in enumerate(self.keys) if k[0] == key_id), None)

    @classmethod
    def parse(cls, data: dict) -> CustodianPin:
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
            raise TrustError("the custodian pin lists no key")
        keys: list[tuple[bytes, bytes, bytes]] = []
        for item in data["keys"]:
            box_public, sign_public = b64d(item["box_public"]), b64d(item["sign_public"])
            key_id = crypto.custodian_key_id(box_public, sign_public)
            if item.get("key_id") != key_id.hex():
                raise TrustError("a custodian key's id in the pin does not match the key")
            if keys:
                statement = crypto.custodian_rotation_statement(keys[-1][0], box_public, sign_public,
                                                                int(item["created_ms"]))
                if not crypto.verify_detached(keys[-1][2], statement, b64d(item.get("rotation_signature") or "")):
                    raise TrustError("a custodian key in the pin is not signed by the key before it")
            keys.append((key_id, box_public, sign_public))
        return cls(tuple(keys))


# --- what a reader believes about a workspace ---------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    sign_public: bytes
    box_public: bytes
    how: str  # "manifest": a signed manifest lists it; "confirmed": a member vouched; "mine": I compared it
    by: uuid.UUID | None = None
    at_ms: int = 0


@dataclass
class WorkspaceKeys:
    """What a member's client knows after checking a workspace's record: verified manifests by epoch,
    the epoch keys it could open (and checked), the keys it trusts for each person, and what went wrong."""

    workspace_id: uuid.UUID
    manifests: dict[int, crypto.Manifest] = field(default_factory=dict)
    manifest_hashes: dict[int, bytes] = field(default_factory=dict)
    epoch_keys: dict[int, bytes] = field(default_factory=dict)
    trusted: dict[uuid.UUID, dict[bytes, TrustedKey]] = field(default_factory=dict)
    # Problems that stop this client posting: a rolled-back or forked record, a key that failed its check.
    problems: list[str] = field(default_factory=list)
    # How each epoch's manifest was signed: ("lead" | "deputy" | "appointed", signer), docs/crypto.md.
    signed_by: dict[int, tuple[str, uuid.UUID]] = field(default_factory=dict)
    # A custodian appointment that verifies for the next epoch: (appointee, fingerprint).
    appointed: tuple[uuid.UUID, bytes] | None = None
    appointments_offered: list[dict] = field(default_factory=list)

    @property
    def current_epoch(self) -> int:
        return max(self.manifests) if self.manifests else 0

    @property
    def current(self) -> crypto.Manifest:
        return self.manifests[self.current_epoch]

    def members(self, epoch: int | None = None) -> dict[uuid.UUID, crypto.ManifestMember]:
        manifest = self.manifests[epoch or self.current_epoch]
        return {m.public_id: m for m in manifest.members}

    def lead(self, epoch: int | None = None) -> uuid.UUID:
        return self.manifests[epoch or self.current_epoch].lead_ids[0]

    def deputies(self, epoch: int | None = None) -> list[uuid.UUID]:
        return self.manifests[epoch or self.current_epoch].deputy_ids

    def signer_role(self, public_id: uuid.UUID) -> str | None:
        """Whether `public_id` may sign the next manifest, and as what: "lead", "deputy", "appointed"."""
        if not self.manifests:
            return None
        if public_id == self.lead():
            return "lead"
        if public_id in self.deputies():
            return "deputy"
        if self.appointed is not None and self.appointed[0] == public_id:
            return "appointed"
        return None

    def trust(self, public_id: uuid.UUID, fp: bytes) -> TrustedKey | None:
        return self.trusted.get(public_id, {}).get(fp)

    def trust_add(self, public_id: uuid.UUID, fp: bytes, key: TrustedKey) -> bool:
        """True if this key was not trusted before. A manifest's listing outranks other reasons."""
        known = self.trusted.setdefault(public_id, {})
        if fp in known and not (key.how == "manifest" and known[fp].how != "manifest"):
            return False
        fresh = fp not in known
        known[fp] = key
        return fresh

    def newest_trusted(self, public_id: uuid.UUID, candidates: list[bytes]) -> bytes | None:
        return next((fp for fp in candidates if fp in self.trusted.get(public_id, {})), None)


def _author_key_index(detail: dict) -> dict[tuple[uuid.UUID, bytes], tuple[bytes, bytes]]:
    """Every identity key the server shows for the workspace's people, whose binding verifies. Being in
    this list makes a key known, never trusted."""
    out: dict[tuple[uuid.UUID, bytes], tuple[bytes, bytes]] = {}
    for k in detail.get("author_keys", []):
        try:
            pid = uuid.UUID(k["professional"])
            sign_public, box_public = b64d(k["sign_public"]), b64d(k["box_public"])
        except (KeyError, ValueError, TypeError, TrustError):
            continue
        if crypto.identity_binding_verify(pid, sign_public, box_public, b64d(k["binding_signature"])):
            out[(pid, crypto.fingerprint(sign_public, box_public))] = (sign_public, box_public)
    return out


def _whole(value) -> int:
    """A count or a time from the server: a JSON whole number a JavaScript number holds exactly (as the
    browser requires), never a string, a bool or a negative. Raises ValueError."""
    if type(value) is not int or not 0 <= value < 2**53:
        raise ValueError("not a whole number")
    return value


def _canonical_id(value) -> uuid.UUID:
    """An id as the API writes it (lowercase, hyphenated), as the browser compares ids. Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("not an id")
    parsed = uuid.UUID(value)
    if value != str(parsed):
        raise ValueError("not a canonical id")
    return parsed


def _apply_confirmations(keys: WorkspaceKeys, confirmations: list[dict], members: set[uuid.UUID]) -> None:
    """Add keys vouched for by a current member (one of `members`), signed with a key already trusted for
    them. Repeated until nothing changes, so a confirmed key can itself confirm."""
    changed = True
    while changed:
        changed = False
        for c in confirmations:
            try:
                confirmer, subject = uuid.UUID(c["confirmer"]), uuid.UUID(c["subject"])
                sign_public, box_public = b64d(c["sign_public"]), b64d(c["box_public"])
                ms, signature = _whole(c["confirmed_ms"]), b64d(c["signature"])
            except (KeyError, ValueError, TypeError, TrustError):
                continue
            fp = crypto.fingerprint(sign_public, box_public)
            if confirmer not in members or keys.trust(subject, fp) is not None:
                continue
            if not crypto.identity_binding_verify(subject, sign_public, box_public, b64d(c.get("binding_signature", ""))):
                continue
            statement = crypto.key_confirmation_statement(confirmer, subject, fp, ms)
            if any(crypto.verify_detached(k.sign_public, statement, signature)
                   for k in keys.trusted.get(confirmer, {}).values()):
                changed |= keys.trust_add(subject, fp, TrustedKey(sign_public, box_public, "confirmed", confirmer, ms))


def verify_workspace(detail: dict, identity: crypto.Identity, *, my_id: uuid.UUID | None = None,
                     memory: dict | None = None, verified: dict | None = None,
                     pin: CustodianPin | None = None) -> WorkspaceKeys:
    """Check a workspace's record and open the epoch keys wrapped for `identity`.

    - every manifest chains by hash to the one before, is for this workspace and epoch, names one lead,
      and is signed by the lead or a deputy the previous manifest names, or by a lead the custodians
      appointed for it (_check_signer), with the key it lists for them or a key a member of that
      manifest confirmed (the first manifest by the lead it names itself);
    - each manifest names the custodian key of the one before, or its successor in the pin;
    - an epoch key is used only if it matches the manifest's key commitment;
    - `memory` (this professional's record of the workspace: tacclient.memory) must be a prefix of what
      the server shows: the same first manifest, no lower epoch, the same manifest at that epoch.
    `verified` maps people to fingerprints (b64) this professional compared themselves.
    Raises TrustError for a record that cannot be believed at all; softer problems go in `.problems`."""
    workspace_id = uuid.UUID(detail["id"])
    keys = WorkspaceKeys(workspace_id=workspace_id)
    known = _author_key_index(detail)
    confirmations = detail.get("key_confirmations", [])
    # Safety numbers this professional compared in person or by phone: trusted whatever any manifest says.
    for pid, fps in (verified or {}).items():
        for fp_b64 in fps:
            try:
                pid_uuid, fp = uuid.UUID(pid), b64d(fp_b64)
            except (ValueError, TrustError):
                continue
            if (pid_uuid, fp) in known:
                sign_public, box_public = known[(pid_uuid, fp)]
                keys.trust_add(pid_uuid, fp, TrustedKey(sign_public, box_public, "mine", my_id))
    offered = detail.get("lead_appointments")
    keys.appointments_offered = [a for a in offered if isinstance(a, dict)] if isinstance(offered, list) else []
    previous: crypto.Manifest | None = None
    prev_hash = crypto.ZERO_HASH
    epochs = sorted(detail.get("epochs", []), key=lambda e: e.get("number", 0))
    for index, e in enumerate(epochs, start=1):
        raw = b64d(e["manifest"])
        try:
            manifest = crypto.manifest_parse(raw)
        except ValueError as exc:
            raise TrustError(f"epoch {e.get('number')}: {exc}") from exc
        if manifest.workspace_id != workspace_id or manifest.epoch != e["number"] or manifest.epoch != index:
            raise TrustError(f"epoch {e['number']}'s manifest is for another workspace or epoch")
        if manifest.prev_manifest_hash != prev_hash:
            raise TrustError(f"epoch {e['number']}'s manifest does not chain to the one before")
        if len(manifest.lead_ids) != 1:
            raise TrustError(f"epoch {e['number']}'s manifest does not name one lead")
        signature = b64d(e["manifest_signature"])
        if previous is None:
            lead = manifest.member(manifest.lead_ids[0])
            if not crypto.verify_detached(lead.sign_public, raw, signature):
                raise TrustError(f"epoch {e['number']}'s manifest is not signed by the lead it names: refusing it")
            keys.signed_by[manifest.epoch] = ("lead", lead.public_id)
        else:
            keys.signed_by[manifest.epoch] = _check_signer(keys, previous, manifest, raw, signature, pin)
        if pin is not None:
            at = pin.position(manifest.custodian_id)
            before = pin.position(previous.custodian_id) if previous is not None else None
            if at is None or (previous is not None and manifest.custodian_id != previous.custodian_id
                              and (before is None or at < before)):
                raise TrustError(f"epoch {e['number']} is sealed to a custodian key that is not the pinned one")
        elif previous is not None and manifest.custodian_id != previous.custodian_id:
            raise TrustError(f"epoch {e['number']} names another custodian key, and no pin vouches for it")
        keys.manifests[manifest.epoch] = manifest
        prev_hash = crypto.hash32(raw)
        keys.manifest_hashes[manifest.epoch] = prev_hash
        for m in manifest.members:
            keys.trust_add(m.public_id, m.fingerprint, TrustedKey(m.sign_public, m.box_public, "manifest"))
        previous = manifest
        # Keys vouched for by this epoch's members: they can sign the next manifest (a lead who reset).
        _apply_confirmations(keys, confirmations, {m.public_id for m in manifest.members})
        for wrap in e.get("my_wraps", []):
            try:
                key = crypto.epoch_key_unwrap(b64d(wrap["sealed"]), identity, workspace_id, manifest.epoch)
            except (crypto.DecryptionError, TrustError, KeyError):
                continue  # a wrap for an older key of mine: try the next
            if crypto.epoch_key_commitment(workspace_id, manifest.epoch, key) != manifest.key_commitment:
                keys.problems.append(f"the key the server gave you for epoch {manifest.epoch} is not the one the "
                                     f"lead sealed: it was not used")
                continue
            keys.epoch_keys[manifest.epoch] = key
            break
    if previous is not None:
        appointed = _appointment_for(keys, previous, keys.manifest_hashes[previous.epoch], pin)
        if appointed is not None:
            keys.appointed = appointed
    if memory:
        _check_memory(keys, memory)
    return keys


def _keys_for(keys: WorkspaceKeys, manifest: crypto.Manifest, public_id: uuid.UUID) -> list[bytes]:
    """The signing keys a reader accepts from someone in `manifest`'s place: the key it lists for them, or
    a new key of theirs a member confirmed or this reader compared (a lead or deputy who reset)."""
    listed = manifest.member(public_id)
    extra = [k.sign_public for k in keys.trusted.get(public_id, {}).values() if k.how != "manifest"]
    return ([listed.sign_public] if listed is not None else []) + extra


def _appointment_for(keys: WorkspaceKeys, previous: crypto.Manifest, previous_hash: bytes,
                     pin: CustodianPin | None) -> tuple[uuid.UUID, bytes] | None:
    """The (appointee, fingerprint) of a custodian appointment that verifies for the epoch after
    `previous`: signed by a pinned custodian key no older than the one `previous` names, for this
    workspace, that epoch and that manifest's hash, naming a member (not oversight) of `previous` with a
    key trusted for them. None if the server offers none that verifies."""
    if pin is None:
        return None
    oldest = pin.position(previous.custodian_id) or 0
    custodians = [k[2] for k in pin.keys[oldest:]]
    for a in keys.appointments_offered:
        try:
            if _whole(a["epoch"]) != previous.epoch:
                continue
            appointee, fp = _canonical_id(a["appointee"]), b64d(a["fingerprint"])
            created_ms, signature = _whole(a["created_ms"]), b64d(a["signature"])
        except (KeyError, TypeError, ValueError, TrustError):
            continue
        listed = previous.member(appointee)
        if listed is None or listed.role not in ("member", "deputy") or keys.trust(appointee, fp) is None:
            continue
        statement = crypto.lead_appointment_statement(keys.workspace_id, previous.epoch, previous_hash, appointee, fp,
                                                      created_ms)
        if any(crypto.verify_detached(k, statement, signature) for k in custodians):
            return appointee, fp
    return None


def _check_signer(keys: WorkspaceKeys, previous: crypto.Manifest, manifest: crypto.Manifest, raw: bytes,
                  signature: bytes, pin: CustodianPin | None) -> tuple[str, uuid.UUID]:
    """Who may sign the manifest after `previous` (docs/crypto.md, "Lead continuity"), and how they did:
    ("lead", id) the previous lead, as they please; ("deputy", id) a deputy of `previous`, keeping its
    lead, or taking the lead themselves when the previous lead is not in the new manifest; ("appointed",
    id) the member a custodian appointment names for `previous`, as lead, the previous lead gone. Neither
    a deputy nor an appointed lead may name deputies."""
    number = manifest.epoch
    old_lead, new_lead = previous.lead_ids[0], manifest.lead_ids[0]
    if any(crypto.verify_detached(k, raw, signature) for k in _keys_for(keys, previous, old_lead)):
        return "lead", old_lead
    new_ids = {m.public_id for m in manifest.members}
    kept_deputies = set(manifest.deputy_ids) <= set(previous.deputy_ids)
    for deputy in previous.deputy_ids:
        if not any(crypto.verify_detached(k, raw, signature) for k in _keys_for(keys, previous, deputy)):
            continue
        if new_lead != old_lead and not (new_lead == deputy and old_lead not in new_ids):
            raise TrustError(f"epoch {number}'s manifest is signed by a deputy who names a new lead while the lead "
                             f"is still a member: a deputy takes over only when the lead has left")
        if not kept_deputies:
            raise TrustError(f"epoch {number}'s manifest is signed by a deputy who names deputies: only the lead can")
        return "deputy", deputy
    hash_prev = keys.manifest_hashes[previous.epoch]
    appointed = _appointment_for(keys, previous, hash_prev, pin)
    if appointed is not None and appointed[0] == new_lead:
        key = keys.trust(*appointed)
        if crypto.verify_detached(key.sign_public, raw, signature):
            if old_lead in new_ids or not kept_deputies:
                raise TrustError(f"epoch {number}'s manifest, signed by the lead the custodians appointed, keeps the "
                                 f"previous lead or names deputies")
            return "appointed", new_lead
    raise TrustError(f"epoch {number}'s manifest is not signed by the lead the record names, by a deputy, or by a "
                     f"lead the custodians appointed (with a key the team has confirmed): refusing it")


def _check_memory(keys: WorkspaceKeys, memory: dict) -> None:
    epoch, first, manifest = memory.get("epoch", 0), memory.get("first"), memory.get("manifest")
    if first and keys.manifest_hashes.get(1) != b64d(first):
        keys.problems.append("this workspace's first signed manifest is not the one your devices saw before")
    if epoch > keys.current_epoch:
        keys.problems.append(f"your devices have seen key epoch {epoch}, but the server shows only up to "
                             f"{keys.current_epoch}: it is hiding a newer epoch")
    elif manifest and keys.manifest_hashes.get(epoch) != b64d(manifest):
        keys.problems.append(f"epoch {epoch}'s manifest is not the one your devices saw before")


def remember(keys: WorkspaceKeys, memory: dict | None, last: tuple[int, bytes] | None) -> dict:
    """This workspace's entry for tacclient.memory after a successful check: never lower than before."""
    memory = dict(memory or {})
    if keys.manifests and not keys.problems:
        memory["first"] = b64e(keys.manifest_hashes[1])
        if keys.current_epoch >= memory.get("epoch", 0):
            memory["epoch"] = keys.current_epoch
            memory["manifest"] = b64e(keys.manifest_hashes[keys.current_epoch])
    if last is not None and last[0] >= memory.get("seq", 0):
        memory["seq"], memory["post"] = last[0], b64e(last[1])
    return memory


def rotation_due(keys: WorkspaceKeys, posts_in_current_epoch: int, at_ms: int | None = None) -> bool:
    """From signed facts only: the manifest's own time and the posts this client has seen in it."""
    if not keys.manifests:
        return False
    at_ms = now_ms() if at_ms is None else at_ms
    return (posts_in_current_epoch >= EPOCH_MAX_POSTS
            or at_ms - keys.current.created_ms >= EPOCH_MAX_AGE_MS)


# --- who the next epoch admits ---------------------------------------------------------------------------


@dataclass
class EpochPlan:
    members: list[MemberKey]
    admitted: list[uuid.UUID]
    warnings: list[str]
    refused: dict[uuid.UUID, str]  # accepted invitees left out, and why


def invitation_valid(keys: WorkspaceKeys, ws_id: uuid.UUID, card: dict, key: MemberKey) -> str | None:
    """None if `card` (an accepted invitee) holds an invitation the current lead or a deputy signed for this key and
    role, issued in an epoch no later than the current one and not used since (no manifest after it lists
    them). Otherwise the reason to refuse."""
    role = card.get("role", "member")
    if role not in ("member", "oversight"):
        return f"the invitation has the role {role!r}"
    try:
        signature, nonce = b64d(card["invite_signature"]), b64d(card["invite_nonce"])
        epoch = int(card["invite_epoch"])
    except (KeyError, TypeError, ValueError, TrustError):
        return "the server shows no complete invitation"
    if not 1 <= epoch <= keys.current_epoch or len(nonce) != crypto.INVITE_NONCE_BYTES:
        return "the invitation names an epoch that does not exist"
    if any(key.public_id in keys.members(n) for n in keys.manifests if n > epoch):
        return "this invitation was used before (they have been admitted since it was signed)"
    signers = [keys.lead(), *keys.deputies()]
    lead_keys = [k.sign_public for pid in signers for k in keys.trusted.get(pid, {}).values()]
    statement = crypto.invite_statement(ws_id, key.public_id, key.fingerprint, role, epoch, nonce)
    if not any(crypto.verify_detached(k, statement, signature) for k in lead_keys):
        return "no invitation signed by the lead (or a deputy) for their current key"
    return None


def plan_epoch_members(keys: WorkspaceKeys, cards: dict[uuid.UUID, dict], *, my_id: uuid.UUID,
                       my_fingerprint: bytes, remove: uuid.UUID | None = None, new_lead: uuid.UUID | None = None,
                       admit: set[uuid.UUID] | None = None, deputies: set[uuid.UUID] | None = None) -> EpochPlan:
    """Who the next epoch is wrapped for, from signed state; the server's member list only says who has
    left and who accepted. The signer is `my_id`: the lead, a deputy or an appointed lead (the rules of
    docs/crypto.md, "Lead continuity", which readers check again on the manifest).

    - Everyone in the current manifest stays, with the newest key the client trusts for them (the
      manifest's, or one a member confirmed), unless the server says they left or were removed (dropping
      someone only narrows who can read), or they are `remove`.
    - An accepted invitee (in `admit`, or all when `admit` is None) joins only with a valid invitation
      (invitation_valid); others are left out with a reason.
    - `new_lead` hands the lead over; `deputies` (the lead only) is the whole set of deputies from now.
      A deputy keeps the lead, or takes it (`new_lead` = themselves) once the lead has left; an
      appointed lead takes it. Neither names deputies.
    - Raises TrustError if the server shows an active member the manifest does not list: it would refuse
      an epoch without them, and no epoch may include them."""
    current = keys.members()
    plan = EpochPlan([], [], [], {})
    signer = keys.signer_role(my_id)
    old_lead = keys.lead()
    if signer is None:
        raise TrustError("only the lead or a deputy the signed record names can start a new key epoch")
    if signer != "lead" and deputies is not None:
        raise TrustError("only the lead can name deputies")
    if signer == "appointed" and new_lead != my_id:
        raise TrustError("the custodians appointed you: the next epoch names you as lead")
    if signer != "lead" and new_lead not in (None, my_id):
        raise TrustError("only the lead can hand the lead role to someone else")

    def role_for(pid: uuid.UUID, role: str) -> str:
        if pid == (new_lead or old_lead):
            return "lead"
        if role == "lead":
            return "member"
        if deputies is not None and role in ("member", "deputy"):
            return "deputy" if pid in deputies else "member"
        return role

    for pid, card in cards.items():
        if card.get("state") == "active" and pid not in current and pid != remove:
            raise TrustError(f"{card.get('name', pid)} is shown as a member but is not in the signed membership: "
                             f"refusing to encrypt for them")
    for pid, listed in current.items():
        card = cards.get(pid, {})
        if pid == remove or card.get("state") not in ("active", None) or card.get("is_active") is False:
            continue
        name = card.get("name", str(pid))
        key = MemberKey.from_manifest(listed, role_for(pid, listed.role))
        if card.get("sign_public"):
            shown = MemberKey.from_card(card, key.role)
            if shown.fingerprint != listed.fingerprint:
                if keys.trust(pid, shown.fingerprint) is not None:
                    key = shown
                else:
                    plan.warnings.append(f"{name}'s key changed and nobody in the team has confirmed the new one: "
                                         f"compare the safety number with them, then admit it")
        if pid == my_id and key.fingerprint != my_fingerprint:
            raise TrustError("the signed record lists a key for you that is not your own: ask a colleague to "
                             "compare your safety number and admit your key first")
        plan.members.append(key)
    for pid, card in cards.items():
        if card.get("state") != "accepted" or pid == remove or pid in current:
            continue
        if admit is not None and pid not in admit:
            continue
        name = card.get("name", str(pid))
        try:
            key = MemberKey.from_card(card, role_for(pid, card.get("role", "member")))
        except (TrustError, KeyError, ValueError) as exc:
            plan.refused[pid] = str(exc)
            continue
        reason = invitation_valid(keys, keys.workspace_id, card, MemberKey.from_card(card, card.get("role", "member")))
        if reason is not None:
            plan.refused[pid] = reason
            plan.warnings.append(f"{name} was not admitted: {reason}")
            continue
        plan.members.append(key)
        plan.admitted.append(pid)
    ids = {m.public_id for m in plan.members}
    if my_id not in ids:
        raise TrustError("you are not in the signed membership")
    if new_lead is not None and new_lead not in ids:
        raise TrustError("the new lead must be a member of the signed membership")
    if new_lead is None and old_lead not in ids:
        raise TrustError("the lead has left: a deputy or a lead the custodians appointed takes over first")
    if signer != "lead" and new_lead == my_id and old_lead in ids:
        raise TrustError("the lead is still a member: a deputy takes over only when the lead has left")
    roles = {m.public_id: m.role for m in plan.members}
    if deputies is not None and any(roles.get(pid) not in ("deputy",) for pid in deputies):
        raise TrustError("a deputy must be a member of the signed membership, neither the lead nor oversight")
    return plan


def history_epochs(keys: WorkspaceKeys, first_epoch: int, since: dt.date | None = None) -> list[int]:
    """The epochs before `first_epoch` this client holds, or only those still current on or after `since`
    (by the manifests' signed times): what sharing the earlier record from a date gives."""
    since_ms = (int(dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
                if since is not None else None)
    out = []
    for n in sorted(keys.epoch_keys):
        if n >= first_epoch:
            continue
        ended = keys.manifests[n + 1].created_ms if n + 1 in keys.manifests else None
        if since_ms is None or ended is None or ended >= since_ms:
            out.append(n)
    return out


# --- building and sealing --------------------------------------------------------------------------------


def epoch_bundle(*, lead: crypto.Identity, workspace_id: uuid.UUID, epoch: int, prev_manifest_hash: bytes,
                 members: list[MemberKey], custodian: tuple[bytes, bytes, bytes] | bytes,
                 epoch_key: bytes | None = None, created_ms: int | None = None) -> tuple[dict, bytes]:
    """A new epoch key wrapped for each member and the custodian, with the lead's signed manifest.
    `custodian` is (key_id, box_public, sign_public), as CustodianPin.current gives it."""
    key_id, custodian_box, _sign = custodian
    epoch_key = epoch_key or crypto.epoch_key_new()
    wraps = {m.public_id: crypto.epoch_key_wrap(workspace_id, epoch, epoch_key, m.box_public) for m in members}
    custodian_wrap = crypto.epoch_key_wrap(workspace_id, epoch, epoch_key, custodian_box)
    manifest = crypto.manifest_bytes(
        workspace_id=workspace_id, epoch=epoch, prev_manifest_hash=prev_manifest_hash,
        members=[crypto.ManifestMember(m.public_id, m.sign_public, m.box_public, m.role) for m in members],
        custodian_id=key_id, wraps_digest=crypto.wraps_hash(wraps, custodian_wrap),
        key_commitment=crypto.epoch_key_commitment(workspace_id, epoch, epoch_key),
        created_ms=created_ms or now_ms(),
    )
    return {
        "epoch": epoch,
        "manifest": b64e(manifest),
        "manifest_signature": b64e(lead.sign(manifest)),
        "wraps": [{"member": str(pid), "sealed": b64e(sealed)} for pid, sealed in wraps.items()],
        "custodian_wrap": b64e(custodian_wrap),
    }, epoch_key


def invite_signature(lead: crypto.Identity, workspace_id: uuid.UUID, member: MemberKey, role: str, epoch: int,
                     nonce: bytes) -> str:
    return b64e(lead.sign(crypto.invite_statement(workspace_id, member.public_id, member.fingerprint, role, epoch,
                                                  nonce)))


def key_confirmation(identity: crypto.Identity, confirmer_id: uuid.UUID, subject: MemberKey,
                     at_ms: int | None = None) -> dict:
    """The signed statement 'I compared this safety number with them', as POST .../key-confirmations takes it."""
    at_ms = at_ms or now_ms()
    statement = crypto.key_confirmation_statement(confirmer_id, subject.public_id, subject.fingerprint, at_ms)
    return {"member": str(subject.public_id), "fingerprint": b64e(subject.fingerprint), "confirmed_ms": at_ms,
            "signature": b64e(identity.sign(statement))}


def seal_post(*, identity: crypto.Identity, author_id: uuid.UUID, workspace_id: uuid.UUID, epoch: int,
              epoch_key: bytes, kind: str, body: dict, parent: uuid.UUID | None = None,
              target: uuid.UUID | None = None, rag: str = "", owner: uuid.UUID | None = None,
              due: dt.date | None = None, status: str = "", prev: tuple[int, bytes] | None = None,
              post_id: uuid.UUID | None = None, client_time_ms: int | None = None) -> dict:
    """`prev` is (seq, hash) of the newest post this client has seen: the chain readers check."""
    prev_seq, prev_hash = prev or (0, crypto.ZERO_HASH)
    header = crypto.PostHeader(
        workspace_id=workspace_id, epoch=epoch, post_id=post_id or uuid.uuid4(), author_id=author_id,
        author_fingerprint=identity.fingerprint(), client_time_ms=client_time_ms or now_ms(), kind=kind,
        parent_id=parent or crypto.ZERO_ID, target_id=target or crypto.ZERO_ID, rag=rag,
        owner_id=owner or crypto.ZERO_ID, due_day=(due - dt.date(1970, 1, 1)).days if due else 0, status=status,
        prev_seq=prev_seq, prev_hash=prev_hash,
    )
    plaintext = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    header_bytes, nonce, ciphertext, signature = crypto.post_seal(identity, header, plaintext, epoch_key)
    return {"header": b64e(header_bytes), "nonce": b64e(nonce), "ciphertext": b64e(ciphertext),
            "signature": b64e(signature), "post_id": str(header.post_id)}


# --- opening posts -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedPost:
    seq: int
    header: crypto.PostHeader
    body: dict
    post_hash: bytes
    # How the author's key is trusted: "manifest" (the epoch's manifest lists it), "confirmed" (a member
    # vouched for it after comparing safety numbers) or "mine" (this reader compared it).
    key_trust: str
    confirmed_by: uuid.UUID | None
    server_time: str
    # Set when the server's time for the post is more than CLOCK_SKEW_MS from the signed one.
    time_note: str | None = None

    @property
    def key_matches_manifest(self) -> bool:
        return self.key_trust == "manifest"

    @property
    def signed_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.header.client_time_ms / 1000, tz=dt.UTC)


def open_post(payload: dict, keys: WorkspaceKeys, *, details_reference: str | None = None) -> OpenedPost:
    """Verify and decrypt one post payload against the verified record. Raises TrustError when it must be
    refused: another workspace, a server field that contradicts the signed header, an author outside the
    epoch's signed membership, a signing key nobody trusts for that author, a bad signature, no key.

    `details_reference`: for the child's details, the reference the workspace is shown under; the body
    must name this workspace and that reference (docs/crypto.md)."""
    try:
        header_bytes, nonce, ciphertext = b64d(payload["header"]), b64d(payload["nonce"]), b64d(payload["ciphertext"])
        signature = b64d(payload["signature"])
        header = crypto.PostHeader.from_bytes(header_bytes)
    except (KeyError, ValueError, TypeError) as exc:
        raise TrustError(f"post {payload.get('seq')}: not a valid post ({exc})") from exc
    seq = payload.get("seq")
    if header.workspace_id != keys.workspace_id or str(header.post_id) != payload.get("post_id"):
        raise TrustError(f"post {seq} belongs to another workspace or id")
    if payload.get("kind") != header.kind or payload.get("author") != str(header.author_id) \
            or payload.get("epoch") != header.epoch:
        raise TrustError(f"post {seq}: the server's kind, author or epoch differs from the signed header")
    if header.epoch not in keys.manifests:
        raise TrustError(f"post {seq} is from key epoch {header.epoch}, which the server has not shown this "
                         f"device: it may be hiding a change of keys")
    if header.author_id not in keys.members(header.epoch):
        raise TrustError(f"post {seq}: its author is not in the signed membership of epoch {header.epoch}")
    trusted = keys.trust(header.author_id, header.author_fingerprint)
    if trusted is None:
        raise TrustError(f"post {seq} is signed with a key that is not its author's verified key: it is not "
                         f"shown as theirs")
    if not crypto.post_verify(trusted.sign_public, header_bytes, nonce, ciphertext, signature):
        raise TrustError(f"post {seq}: the author's signature does not verify: it may have been altered")
    key = keys.epoch_keys.get(header.epoch)
    if key is None:
        raise TrustError(f"post {seq}: this device holds no key for epoch {header.epoch}")
    try:
        body = json.loads(crypto.post_open(header_bytes, nonce, ciphertext, key))
    except (crypto.DecryptionError, ValueError) as exc:
        raise TrustError(f"post {seq}: {exc}") from exc
    if not isinstance(body, dict):
        raise TrustError(f"post {seq}: the body is not a JSON object")
    if header.kind == "details" and details_reference is not None:
        if body.get("workspace") != str(keys.workspace_id) or body.get("reference") != details_reference:
            raise TrustError(f"post {seq}: these details are for another workspace than {details_reference}")
    server_time = payload.get("created_at", "")
    note = None
    try:
        server_ms = int(dt.datetime.fromisoformat(server_time).timestamp() * 1000)
        if abs(server_ms - header.client_time_ms) > CLOCK_SKEW_MS:
            note = f"the server's time for this post ({server_time}) differs from its signed time"
    except (TypeError, ValueError):
        note = "the server gave no valid time for this post"
    return OpenedPost(seq=seq, header=header, body=body, post_hash=crypto.post_hash(header_bytes, nonce, ciphertext),
                      key_trust=trusted.how, confirmed_by=trusted.by, server_time=server_time, time_note=note)


# Membership states in which a member's card is current (a left or removed one is kept only if nothing newer).
CURRENT_STATES = ("invited", "accepted", "active")


def member_cards(detail: dict) -> dict[uuid.UUID, dict]:
    """Each person's card from the server's member list: a card in a current state wins over an ended one
    for the same person, whatever the order (a stale "removed" row listed last must not drop a member from
    the next epoch). workspace.js's memberCards is the same rule."""
    cards: dict[uuid.UUID, dict] = {}
    for card in detail.get("members", []):
        pid = uuid.UUID(card["id"])
        if card.get("state") in CURRENT_STATES or pid not in cards:
            cards[pid] = card
    return cards


@dataclass
class Workspace:
    """A workspace as this client verified it. `keys` exists only for an active member."""

    detail: dict
    keys: WorkspaceKeys | None = None
    cards: dict[uuid.UUID, dict] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.detail["id"])

    @property
    def reference(self) -> str:
        return self.detail["reference"]

    @property
    def lead_id(self) -> uuid.UUID:
        """The lead as the latest verified manifest names them (the server's word before there is one)."""
        if self.keys is not None and self.keys.manifests:
            return self.keys.lead()
        return uuid.UUID(self.detail["lead"])

    @property
    def active(self) -> bool:
        return self.detail.get("my_state") == "active"

    def name_of(self, public_id: uuid.UUID | str | None) -> str:
        card = self.cards.get(uuid.UUID(str(public_id))) if public_id else None
        return card["name"] if card else str(public_id)

    def agency_of(self, public_id: uuid.UUID | str | None) -> str:
        card = self.cards.get(uuid.UUID(str(public_id))) if public_id else None
        return card["agency"] if card else ""


def workspace_from_detail(detail: dict, identity: crypto.Identity, *, my_id: uuid.UUID | None = None,
                          memory: dict | None = None, verified: dict | None = None,
                          pin: CustodianPin | None = None) -> Workspace:
    """Verify a workspace detail (the API's JSON, or selectors.workspace_detail plus author_keys): the
    chain of manifests, the epoch keys wrapped for `identity`, and the binding of every member's keys.
    `memory` is this workspace's entry in the professional's saved state (tacclient/memory.py)."""
    ws = Workspace(detail=detail, cards=member_cards(detail))
    if not ws.active:
        return ws
    ws.keys = verify_workspace(detail, identity, my_id=my_id, memory=memory, verified=verified, pin=pin)
    return ws
