from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from teamaroundchild import sql

from .models import AuditEvent, AuditHead


def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


@transaction.atomic(savepoint=False)  # its caller's transaction: both commit or neither
def audit_record(
    *,
    kind: str,
    actor=None,
    request=None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one event to the chain. Call inside the transaction of the change it records, so the two
    commit or roll back together.

    The head row is held with SELECT ... FOR UPDATE for the rest of the caller's transaction: appends are
    serialised, which is what keeps the sequence gapless and the chain linear.
    """
    head = _head_locked()
    if actor is not None and getattr(actor, "is_authenticated", False):
        actor_id, label = actor.pk, actor_label or actor.get_username()
    else:
        actor_id, label = None, actor_label
    event = AuditEvent(
        seq=head[0] + 1,
        # Truncated to the microsecond so the stored value and the hashed value are the same.
        occurred_at=timezone.now().astimezone(dt.UTC),
        kind=kind,
        actor_id=actor_id,
        actor_label=label,
        ip=client_ip(request),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        data=data or {},
        prev_hash=head[1],
    )
    event.hash = event.compute_hash()
    # The sequence is unique because the head row is locked; the database's constraint is the backstop.
    event.full_clean(validate_unique=False, validate_constraints=False)
    # Every post writes one of these: hand-written statements (teamaroundchild/sql.py says why).
    event.pk = sql.insert(AuditEvent, {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields
                                       if not f.primary_key})
    event._state.adding = False
    sql.update(AuditHead, 1, {"seq": event.seq, "hash": event.hash})
    return event


def _head_locked() -> tuple[int, str]:
    """(seq, hash) of the head row, locked with SELECT ... FOR UPDATE until the caller's transaction ends."""
    query = (f"SELECT {sql.column(AuditHead, 'seq')}, {sql.column(AuditHead, 'hash')} FROM {sql.table(AuditHead)} "
             f"WHERE {sql.column(AuditHead, 'id')} = 1{sql.for_update()}")
    head = sql.fetch_one(query)
    if head is None:  # a new database: made once, by whichever append comes first
        AuditHead.objects.get_or_create(pk=1)
        head = sql.fetch_one(query)
    return head
