"""Opening a workspace for a child and changing its status."""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Professional
from audit.services import audit_record

from .. import access, events
from ..custodian import Conflict
from ..models import (
    Membership,
    ReferenceCounter,
    Workspace,
)
from ..schemas import EpochBundle, PostEnvelope
from .epochs import store_epoch
from .posts import post_store


def _next_reference() -> str:
    year = timezone.now().year
    ReferenceCounter.objects.get_or_create(year=year)
    counter = ReferenceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"TAC-{year}-{counter.last:04d}"


def workspace_create(*, lead: Professional, workspace_id: uuid.UUID, epoch: EpochBundle,
                     details: PostEnvelope | None = None, request=None) -> Workspace:
    """Open a workspace for a child: its first epoch (the lead alone) and, optionally, the encrypted
    details of the child as its first post."""
    if not lead.is_active:
        raise PermissionDenied("this account is offboarded")
    if Workspace.objects.filter(public_id=workspace_id).exists():
        raise Conflict("a workspace with this id already exists")
    with transaction.atomic():
        workspace = Workspace.objects.create(public_id=workspace_id, reference=_next_reference(), lead=lead)
        membership = Membership.objects.create(
            workspace=workspace, professional=lead, role=Membership.Role.LEAD, state=Membership.State.ACCEPTED,
            invited_by=lead,
        )
        first_epoch = store_epoch(workspace=workspace, signer=lead, bundle=epoch,
                                   expected={lead.public_id: (membership, "lead")})
        audit_record(kind="workspace.created", actor=lead, request=request, target=workspace,
                     data={"reference": workspace.reference})
        if details is not None:
            if details.header.kind != "details":
                raise ValidationError("the first post of a new workspace must be the child's details")
            post_store(author=lead, key=lead.current_identity_key(), workspace=workspace, epoch_pk=first_epoch.pk,
                        envelope=details, request=request)
    return workspace


def workspace_close(*, lead: Professional, workspace: Workspace, status: str, request=None) -> None:
    if status not in (Workspace.Status.STEPPED_DOWN, Workspace.Status.CLOSED, Workspace.Status.OPEN):
        raise ValidationError("status must be open, stepped_down or closed")
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if not access.is_lead(lead, workspace):
            raise PermissionDenied("only the lead professional can change the workspace's status")
        workspace.status = status
        workspace.closed_at = timezone.now() if status == Workspace.Status.CLOSED else None
        workspace.save(update_fields=["status", "closed_at"])
        audit_record(kind="workspace.status_changed", actor=lead, request=request, target=workspace,
                     data={"status": status})
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.WORKSPACE_CHANGED,
                                    {"workspace": str(workspace.public_id), "status": status})
