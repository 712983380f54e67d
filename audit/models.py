"""An append-only, hash-chained trail of every state change.

Each row carries the SHA-256 of the previous row's hash and its own canonical content, and a gapless
sequence number handed out under a lock on AuditHead. Altering a row breaks its hash; deleting one
leaves a gap in the sequence and breaks the next row's link. `manage.py audit_verify` walks the chain
and names the first bad row. Rows hold ids and metadata only: never post content or key material.
"""

import hashlib
import json

from django.db import models

GENESIS_HASH = "0" * 64


class AuditHead(models.Model):
    """One row: the last sequence number and hash. Locked (SELECT ... FOR UPDATE) to append."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit head at #{self.seq}"


class AuditEvent(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
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
        ordering = ["seq"]

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
