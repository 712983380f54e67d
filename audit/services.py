from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import storage
from .models import ACCOUNTS, SITE, AuditAnchor, AuditChain, AuditEvent, genesis_hash, workspace_chain

logger = logging.getLogger(__name__)

# An event whose target is a workspace goes into that workspace's chain; any other, into the accounts
# chain. (A label, so that audit imports no app it audits.)
WORKSPACE_LABEL = "messaging.workspace"
# How many chain heads one `audit.anchored` row names: a few hundred keeps each row small.
ANCHORS_PER_EVENT = 500


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def chain_for(target: models.Model | None) -> str:
    if target is not None and target._meta.label_lower == WORKSPACE_LABEL:
        return workspace_chain(target.pk)
    return ACCOUNTS


@transaction.atomic(savepoint=False)  # its caller's transaction: both commit or neither
def audit_record(
    *,
    kind: str,
    actor=None,
    request=None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    actor_label: str = "",
    chain: str | None = None,
) -> AuditEvent:
    """Append one event to its chain (`chain`, or the target workspace's, or the accounts chain). Call
    inside the transaction of the change it records, so the two commit or roll back together.

    The chain's row is held with SELECT ... FOR UPDATE for the rest of the caller's transaction: appends
    to one chain are serialised, which keeps its sequence gapless and the chain linear; appends to other
    chains (another workspace's posts) do not wait.
    """
    event = audit_event_prepare(kind=kind, actor=actor, request=request, target=target, data=data,
                                actor_label=actor_label, head=_head_locked(chain or chain_for(target)))
    event.pk = storage.event_insert(event)
    event._state.adding = False
    storage.chain_head_move(event.chain_id, event.seq, event.hash)
    return event


def audit_event_prepare(*, kind: str, head: tuple[int, int, str], actor=None, request=None,
                        target: models.Model | None = None, data: dict[str, Any] | None = None,
                        actor_label: str = "") -> AuditEvent:
    """The next event of the chain whose head is `head` ((id, seq, hash), which the caller holds locked
    until its transaction ends), hashed and checked but not stored: audit_record stores it at once; the
    post path stores it in the same statement as the post (messaging/storage.py) with
    storage.event_statements."""
    chain_id, seq, prev_hash = head
    event = audit_event_unchained(kind=kind, actor=actor, request=request, target=target, data=data,
                                  actor_label=actor_label)
    event.chain_id, event.seq, event.prev_hash = chain_id, seq + 1, prev_hash
    event.hash = event.compute_hash()
    return event


def audit_event_unchained(*, kind: str, actor=None, request=None, target: models.Model | None = None,
                          data: dict[str, Any] | None = None, actor_label: str = "") -> AuditEvent:
    """An event with everything but its place in a chain (chain, seq, prev_hash, hash), checked. The
    one-statement post chains it inside PostgreSQL (storage.chained_event_sql)."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_id, label = actor.pk, actor_label or actor.get_username()
    else:
        actor_id, label = None, actor_label
    event = AuditEvent(
        # Truncated to the microsecond so the stored value and the hashed value are the same.
        occurred_at=timezone.now().astimezone(dt.UTC),
        kind=kind,
        actor_id=actor_id,
        actor_label=label,
        ip=client_ip(request),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=data or {},
    )
    # The sequence is unique in its chain because the chain's row is locked; the constraint is the backstop.
    event.full_clean(exclude=["chain", "seq", "prev_hash", "hash"], validate_unique=False,
                     validate_constraints=False)
    return event


def _head_locked(name: str) -> tuple[int, int, str]:
    """(id, seq, hash) of the chain's row, locked with SELECT ... FOR UPDATE until the caller's
    transaction ends; the row is made first if this is the chain's first event."""
    head = storage.chain_head_locked(name)
    if head is None:
        # Two first events racing: get_or_create's savepoint lets the loser read the winner's row.
        AuditChain.objects.get_or_create(name=name, defaults={"seq": 0, "hash": genesis_hash(name)})
        head = storage.chain_head_locked(name)
    return head


def anchors_record() -> int:
    """Write the head of every chain that moved since it was last anchored into the site chain
    (`audit.anchored` rows, each naming up to ANCHORS_PER_EVENT heads as [chain, seq, hash]), and log the
    site chain's new head, so a copy of it lives outside the database. Returns how many heads it wrote.

    It reads the heads without locking them (each is a committed seq and hash, written together), so
    posts never wait on it; only the site chain's row is locked, by the appends below."""
    moved = list(AuditChain.objects.exclude(name=SITE)
                 .filter(Q(anchor__isnull=True) | ~Q(anchor__seq=F("seq")))
                 .filter(seq__gt=0).order_by("pk").values_list("pk", "name", "seq", "hash"))
    if not moved:
        return 0
    with transaction.atomic():
        for start in range(0, len(moved), ANCHORS_PER_EVENT):
            batch = moved[start:start + ANCHORS_PER_EVENT]
            event = audit_record(kind="audit.anchored", chain=SITE, actor_label="audit anchor job",
                                 data={"heads": [[name, seq, hash_] for _, name, seq, hash_ in batch]})
            # The bookmarks in one statement a batch (an upsert), not two queries a chain.
            AuditAnchor.objects.bulk_create([AuditAnchor(chain_id=pk, seq=seq, hash=hash_) for pk, _n, seq, hash_ in batch],
                                            update_conflicts=True, unique_fields=["chain"], update_fields=["seq", "hash"])
    logger.info("audit site chain head: #%d %s (%d chain heads anchored)", event.seq, event.hash, len(moved))
    return len(moved)
