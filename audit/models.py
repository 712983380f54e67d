"""Append-only, hash-chained trails of every state change: one chain per workspace, one for everything
else (accounts, agencies, the custodian key, notifications, exports), and a site chain into which a
periodic job anchors every other chain's head (audit/README.md).

Each row carries the SHA-256 of the previous row's hash and its own canonical content, and a gapless
sequence number within its chain, handed out under a lock on that chain's AuditChain row. Altering a row
breaks its hash; deleting one leaves a gap and breaks the next row's link; cutting a chain short, or
rewriting its tail, disagrees with the heads the site chain anchored. `manage.py audit_verify` checks
every chain and every anchor and names the first bad row. Rows hold ids and metadata only: never post
content or key material.
"""

import hashlib
import json

from django.db import models

# The first row's prev_hash in the accounts chain, which continues the single chain kept before chains
# were split (its earliest rows may be about workspaces). Every other chain starts from a hash of its own
# name, so a chain's rows cannot pass for another's.
GENESIS_HASH = "0" * 64
ACCOUNTS = "accounts"
SITE = "site"
WORKSPACE_PREFIX = "workspace:"


def genesis_hash(name: str) -> str:
    if name == ACCOUNTS:
        return GENESIS_HASH
    return hashlib.sha256(f"TAC audit chain {name}".encode()).hexdigest()


def workspace_chain(workspace_pk: int) -> str:
    return f"{WORKSPACE_PREFIX}{workspace_pk}"


class AuditChain(models.Model):
    """A chain's head: its last sequence number and hash. Locked (SELECT ... FOR UPDATE) to append, so
    appends to one chain are serialised and appends to different chains never wait on each other."""

    name = models.CharField(max_length=64, unique=True)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit chain {self.name} at #{self.seq}"


class AuditEvent(models.Model):
    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=64, db_index=True)
    # Plain ids, not foreign keys: deleting an account must never rewrite (and so break) its audit rows.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_label = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["chain_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_event_chain_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} by {self.actor_label or 'system'}"

    def canonical(self) -> bytes:
        content = {
            "seq": self.seq,
            "occurred_at": self.occurred_at.isoformat(timespec="microseconds"),
            "kind": self.kind,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "ip": self.ip,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "data": self.data,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def compute_hash(self) -> str:
        return hashlib.sha256(self.prev_hash.encode() + self.canonical()).hexdigest()


class AuditAnchor(models.Model):
    """The anchoring job's bookmark: the head of `chain` it last wrote into the site chain. The site
    chain's `audit.anchored` rows are the record; this only saves the job re-reading them."""

    chain = models.OneToOneField(AuditChain, on_delete=models.PROTECT, related_name="anchor")
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.chain.name} anchored at #{self.seq}"
