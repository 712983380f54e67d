"""How far each member has read."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import PositiveBigIntegerField, Subquery, Value
from django.db.models.functions import Least

from accounts.models import Professional

from ..models import (
    Membership,
    Workspace,
)


def read_position_update(*, professional: Professional, workspace: Workspace, seq: int) -> int:
    """Move the read position to `seq` (0 to 2**63 - 1, what the column holds), capped at the workspace's
    newest post as it is now (the caller's copy may be older) and never backwards; returns the position
    now held. PermissionDenied unless an active member: an invitation has no read position."""
    # Same rule as every other service: an offboarded account is no longer a member (access.py).
    mine = Membership.objects.filter(workspace=workspace, professional=professional, professional__is_active=True,
                                     state=Membership.State.ACTIVE)
    newest = Workspace.objects.filter(pk=workspace.pk).values("last_seq")
    # Typed: an untyped Value(int) goes to PostgreSQL as a 32-bit parameter (Django's server-side
    # binding), which made 2**31 negative (a check-constraint error) and 2**32 + 3 into 3 (backwards).
    mine.filter(last_read_seq__lt=seq).update(
        last_read_seq=Least(Value(seq, output_field=PositiveBigIntegerField()), Subquery(newest)))
    position = mine.values_list("last_read_seq", flat=True).first()
    if position is None:
        raise PermissionDenied("only an active member of the workspace has a read position")
    return position
