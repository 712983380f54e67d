"""What a professional's own clients remember, so that the server cannot quietly forget it for them:

  - `verified`: the safety numbers this professional compared with a colleague (in person or by phone),
    {colleague public id: {fingerprint b64: when, ms}};
  - `workspaces`: per workspace, the first manifest's hash, the highest epoch and its manifest's hash, and
    the newest post seen (seq and hash), {workspace id: {first, epoch, manifest, seq, post}}.

It is kept on the server only as a blob encrypted and signed under this professional's identity key
(crypto.state_seal; GET and POST /api/v1/me/state), and by the browser in localStorage and the CLI in a
local file as well. Copies are merged, never overwritten: every fact only grows (a higher epoch, a newer
post, one more verified key), so an older copy served by the server adds nothing and loses nothing. Two
copies that disagree about the same fact (another first manifest, another manifest at one epoch) are a
fork: `merge` reports it and keeps this device's. The browser's twin is frontend/static/tac/memory.js."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from tacprotocol import crypto
from tacprotocol.workspace import b64d, b64e

STATE_VERSION = 1


@dataclass
class Memory:
    verified: dict[str, dict[str, int]] = field(default_factory=dict)
    workspaces: dict[str, dict] = field(default_factory=dict)

    # --- reading ---

    def verified_fingerprints(self) -> dict[str, list[str]]:
        return {pid: sorted(fps) for pid, fps in self.verified.items()}

    def has_verified(self, public_id, fp: bytes) -> bool:
        return b64e(fp) in self.verified.get(str(public_id), {})

    def workspace(self, workspace_id) -> dict:
        return dict(self.workspaces.get(str(workspace_id), {}))

    # --- changing (each only ever adds) ---

    def verify(self, public_id, fp: bytes, at_ms: int) -> bool:
        known = self.verified.setdefault(str(public_id), {})
        if b64e(fp) in known:
            return False
        known[b64e(fp)] = at_ms
        return True

    def remember(self, workspace_id, entry: dict) -> list[str]:
        return self.merge(Memory(workspaces={str(workspace_id): entry}))

    def merge(self, other: Memory) -> list[str]:
        """Fold another copy in. Returns the forks found (facts the copies disagree on)."""
        forks: list[str] = []
        for pid, fps in other.verified.items():
            mine = self.verified.setdefault(pid, {})
            for fp, at in fps.items():
                mine[fp] = min(at, mine.get(fp, at))
        for ws, theirs in other.workspaces.items():
            mine = self.workspaces.setdefault(ws, {})
            if theirs.get("first"):
                if mine.get("first") and mine["first"] != theirs["first"]:
                    forks.append(f"workspace {ws}: two different first manifests")
                else:
                    mine["first"] = theirs["first"]
            if theirs.get("epoch", 0) > mine.get("epoch", 0):
                mine["epoch"], mine["manifest"] = theirs["epoch"], theirs.get("manifest")
            elif theirs.get("epoch") and theirs.get("epoch") == mine.get("epoch") \
                    and theirs.get("manifest") != mine.get("manifest"):
                forks.append(f"workspace {ws}: two different manifests for epoch {theirs['epoch']}")
            if theirs.get("seq", 0) > mine.get("seq", 0):
                mine["seq"], mine["post"] = theirs["seq"], theirs.get("post")
            elif theirs.get("seq") and theirs.get("seq") == mine.get("seq") and theirs.get("post") != mine.get("post"):
                forks.append(f"workspace {ws}: two different posts numbered #{theirs['seq']}")
        return forks

    # --- bytes ---

    def to_json(self) -> dict:
        return {"v": STATE_VERSION, "verified": self.verified, "workspaces": self.workspaces}

    @classmethod
    def from_json(cls, data: dict) -> Memory:
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            raise ValueError("not a saved state this client understands")
        verified = {str(k): {str(fp): int(at) for fp, at in v.items()} for k, v in data.get("verified", {}).items()}
        workspaces = {str(k): dict(v) for k, v in data.get("workspaces", {}).items()}
        return cls(verified=verified, workspaces=workspaces)

    def seal(self, identity: crypto.Identity, user_id: uuid.UUID, version: int) -> dict:
        plaintext = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
        blob, signature = crypto.state_seal(identity, user_id, version, plaintext)
        return {"version": version, "blob": b64e(blob), "signature": b64e(signature)}

    @classmethod
    def open(cls, identity: crypto.Identity, user_id: uuid.UUID, saved: dict) -> Memory:
        """Raises crypto.DecryptionError (or ValueError) for a copy that was altered or is not ours."""
        plaintext = crypto.state_open(identity, user_id, int(saved["version"]), b64d(saved["blob"]),
                                      b64d(saved["signature"]))
        return cls.from_json(json.loads(plaintext))
