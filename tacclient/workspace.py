"""Client-side workspace logic in Python: building epochs, sealing and opening posts, checking the
chain of manifests. The browser's twin is frontend/static/tac/workspace.js. Inputs are the JSON the
API returns (messaging/selectors.py); nothing here talks to the network."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

from . import crypto


def b64e(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


class TrustError(Exception):
    """The server's answer contradicts the signed record: do not encrypt or show it as genuine."""


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


def now_ms() -> int:
    return int(time.time() * 1000)


def epoch_bundle(*, lead: crypto.Identity, workspace_id: uuid.UUID, epoch: int, prev_manifest_hash: bytes,
                 members: list[MemberKey], custodian_public: bytes, epoch_key: bytes | None = None,
                 created_ms: int | None = None) -> tuple[dict, bytes]:
    """A new epoch key wrapped for each member and the custodian, with the lead's signed manifest."""
    epoch_key = epoch_key or crypto.epoch_key_new()
    wraps = {m.public_id: crypto.epoch_key_wrap(workspace_id, epoch, epoch_key, m.box_public) for m in members}
    custodian_wrap = crypto.epoch_key_wrap(workspace_id, epoch, epoch_key, custodian_public)
    manifest = crypto.manifest_bytes(
        workspace_id=workspace_id, epoch=epoch, prev_manifest_hash=prev_manifest_hash,
        members=[crypto.ManifestMember(m.public_id, m.fingerprint, m.role) for m in members],
        custodian_id=crypto.custodian_key_id(custodian_public), wraps_digest=crypto.wraps_hash(wraps, custodian_wrap),
        created_ms=created_ms or now_ms(),
    )
    return {
        "epoch": epoch,
        "manifest": b64e(manifest),
        "manifest_signature": b64e(lead.sign(manifest)),
        "wraps": [{"member": str(pid), "sealed": b64e(sealed)} for pid, sealed in wraps.items()],
        "custodian_wrap": b64e(custodian_wrap),
    }, epoch_key


def invite_signature(lead: crypto.Identity, workspace_id: uuid.UUID, member: MemberKey, role: str) -> str:
    return b64e(lead.sign(crypto.invite_statement(workspace_id, member.public_id, member.fingerprint, role)))


def seal_post(*, identity: crypto.Identity, author_id: uuid.UUID, workspace_id: uuid.UUID, epoch: int,
              epoch_key: bytes, kind: str, body: dict, parent: uuid.UUID | None = None,
              target: uuid.UUID | None = None, rag: str = "", owner: uuid.UUID | None = None,
              due: dt.date | None = None, status: str = "", prev_hash: bytes = crypto.ZERO_HASH,
              post_id: uuid.UUID | None = None, client_time_ms: int | None = None) -> dict:
    header = crypto.PostHeader(
        workspace_id=workspace_id, epoch=epoch, post_id=post_id or uuid.uuid4(), author_id=author_id,
        author_fingerprint=identity.fingerprint(), client_time_ms=client_time_ms or now_ms(), kind=kind,
        parent_id=parent or crypto.ZERO_ID, target_id=target or crypto.ZERO_ID, rag=rag,
        owner_id=owner or crypto.ZERO_ID, due_day=(due - dt.date(1970, 1, 1)).days if due else 0, status=status,
        prev_hash=prev_hash,
    )
    plaintext = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    header_bytes, nonce, ciphertext, signature = crypto.post_seal(identity, header, plaintext, epoch_key)
    return {"header": b64e(header_bytes), "nonce": b64e(nonce), "ciphertext": b64e(ciphertext),
            "signature": b64e(signature), "post_id": str(header.post_id)}


@dataclass
class WorkspaceKeys:
    """What a member's client knows after checking a workspace's record: verified manifests by epoch
    and the epoch keys it could open."""

    workspace_id: uuid.UUID
    manifests: dict[int, crypto.Manifest] = field(default_factory=dict)
    manifest_hashes: dict[int, bytes] = field(default_factory=dict)
    epoch_keys: dict[int, bytes] = field(default_factory=dict)

    @property
    def current_epoch(self) -> int:
        return max(self.manifests) if self.manifests else 0

    def members(self, epoch: int | None = None) -> dict[uuid.UUID, crypto.ManifestMember]:
        manifest = self.manifests[epoch or self.current_epoch]
        return {m.public_id: m for m in manifest.members}

    def lead(self, epoch: int | None = None) -> uuid.UUID:
        return self.manifests[epoch or self.current_epoch].lead_ids[0]


def verify_workspace(detail: dict, identity: crypto.Identity) -> WorkspaceKeys:
    """Check the chain of manifests (each signed by the lead named in the one before, chained by hash,
    for this workspace) and open the epoch keys wrapped for this identity."""
    workspace_id = uuid.UUID(detail["id"])
    keys = WorkspaceKeys(workspace_id=workspace_id)
    previous: crypto.Manifest | None = None
    prev_hash = crypto.ZERO_HASH
    for e in detail["epochs"]:
        raw = b64d(e["manifest"])
        manifest = crypto.manifest_parse(raw)
        if manifest.workspace_id != workspace_id or manifest.epoch != e["number"]:
            raise TrustError(f"epoch {e['number']}'s manifest is for another workspace or epoch")
        if manifest.prev_manifest_hash != prev_hash:
            raise TrustError(f"epoch {e['number']}'s manifest does not chain to the one before")
        if len(manifest.lead_ids) != 1:
            raise TrustError(f"epoch {e['number']}'s manifest does not name one lead")
        signer_id = uuid.UUID(e["signed_by"])
        expected_signer = (previous or manifest).lead_ids[0]
        if signer_id != expected_signer:
            raise TrustError(f"epoch {e['number']} was not signed by the lead of the time")
        signer_public = b64d(e["signer_sign_public"])
        listed = {m.public_id: m for m in manifest.members}.get(signer_id)
        if listed is None or crypto.fingerprint(signer_public, _box_of(detail, signer_id, listed)) != listed.fingerprint:
            raise TrustError(f"epoch {e['number']}'s signer key is not the one its manifest lists")
        if not crypto.verify_detached(signer_public, raw, b64d(e["manifest_signature"])):
            raise TrustError(f"epoch {e['number']}'s manifest signature does not verify")
        keys.manifests[manifest.epoch] = manifest
        prev_hash = crypto.hash32(raw)
        keys.manifest_hashes[manifest.epoch] = prev_hash
        previous = manifest
        for wrap in e["my_wraps"]:
            try:
                keys.epoch_keys[manifest.epoch] = crypto.epoch_key_unwrap(b64d(wrap["sealed"]), identity,
                                                                          workspace_id, manifest.epoch)
                break
            except crypto.DecryptionError:
                continue
    return keys


def _box_of(detail: dict, public_id: uuid.UUID, listed: crypto.ManifestMember) -> bytes:
    """The signer's X25519 key, from the member list or the author keys, whichever has the listed one."""
    for card in detail.get("members", []) + detail.get("author_keys", []):
        pid = card.get("id") or card.get("professional")
        if pid == str(public_id) and card.get("sign_public"):
            box = b64d(card["box_public"])
            if crypto.fingerprint(b64d(card["sign_public"]), box) == listed.fingerprint:
                return box
    raise TrustError(f"no key of {public_id} matches the manifest")


@dataclass(frozen=True)
class OpenedPost:
    seq: int
    header: crypto.PostHeader
    body: dict
    post_hash: bytes
    # False when the author signed with a key other than the one the epoch's manifest lists (a password
    # reset, or a key the server made up): readers show a warning until the member is re-verified.
    key_matches_manifest: bool


def open_post(payload: dict, keys: WorkspaceKeys, author_sign_keys: dict[tuple[uuid.UUID, bytes], bytes]) -> OpenedPost:
    """Verify the author's signature (with the key whose fingerprint the header names) and decrypt."""
    header_bytes, nonce, ciphertext = b64d(payload["header"]), b64d(payload["nonce"]), b64d(payload["ciphertext"])
    header = crypto.PostHeader.from_bytes(header_bytes)
    if header.workspace_id != keys.workspace_id or str(header.post_id) != payload["post_id"]:
        raise TrustError("the post belongs to another workspace or id")
    sign_public = author_sign_keys.get((header.author_id, header.author_fingerprint))
    if sign_public is None or not crypto.post_verify(sign_public, header_bytes, nonce, ciphertext,
                                                     b64d(payload["signature"])):
        raise TrustError(f"post {payload['seq']}: the author's signature does not verify")
    members = keys.members(header.epoch) if header.epoch in keys.manifests else {}
    if header.author_id not in members:
        raise TrustError(f"post {payload['seq']}: its author is not in the signed membership of epoch {header.epoch}")
    key = keys.epoch_keys.get(header.epoch)
    if key is None:
        raise TrustError(f"post {payload['seq']}: no key for epoch {header.epoch}")
    body = json.loads(crypto.post_open(header_bytes, nonce, ciphertext, key))
    return OpenedPost(seq=payload["seq"], header=header, body=body,
                      post_hash=crypto.post_hash(header_bytes, nonce, ciphertext),
                      key_matches_manifest=members[header.author_id].fingerprint == header.author_fingerprint)


def author_sign_keys(author_keys: list[dict]) -> dict[tuple[uuid.UUID, bytes], bytes]:
    out = {}
    for k in author_keys:
        sign_public, box_public = b64d(k["sign_public"]), b64d(k["box_public"])
        pid = uuid.UUID(k["professional"])
        if crypto.identity_binding_verify(pid, sign_public, box_public, b64d(k["binding_signature"])):
            out[(pid, crypto.fingerprint(sign_public, box_public))] = sign_public
    return out
