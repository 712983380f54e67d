"""Invitations, answers to them, leaving, and the end of every membership when an account is offboarded."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Professional
from audit.services import audit_record
from notifications.models import Notification
from notifications.services import notify
from tacprotocol import crypto

from .. import access, events
from ..custodian import Conflict
from ..models import (
    Membership,
    Workspace,
)
from . import epochs
from .checks import key_fingerprint


def membership_invite(*, lead: Professional, workspace: Workspace, professional: Professional,
                      invite_signature: bytes, invite_nonce: bytes, role: str = Membership.Role.MEMBER,
                      request=None) -> Membership:
    """The lead (or a deputy) invites a professional, signing the invitation (crypto.invite_statement) for
    their current key and role, the current epoch and a fresh nonce: the lead's client later admits
    exactly that, once."""
    if role not in (Membership.Role.MEMBER, Membership.Role.OVERSIGHT):
        raise ValidationError("invite as member or oversight")
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if epochs.signer_role(lead, workspace) is None:
            raise PermissionDenied("only the lead professional or a deputy can invite")
        if workspace.status == Workspace.Status.CLOSED:
            raise Conflict("this workspace is closed")
        if not professional.is_active:
            raise ValidationError("that account is not active")
        key = professional.current_identity_key()
        if key is None:
            raise ValidationError("that professional has no keys yet")
        if len(invite_nonce) != crypto.INVITE_NONCE_BYTES:
            raise ValidationError(f"invite_nonce must be {crypto.INVITE_NONCE_BYTES} bytes")
        if Membership.objects.filter(workspace=workspace, invite_nonce=invite_nonce).exists():
            raise Conflict("this invitation nonce was used before: sign a new invitation")
        statement = crypto.invite_statement(workspace.public_id, professional.public_id, key_fingerprint(key), role,
                                            workspace.current_epoch, invite_nonce)
        if not crypto.verify_detached(bytes(lead.current_identity_key().sign_public), statement, invite_signature):
            raise ValidationError("the invitation signature does not verify with your key for this member's current "
                                  "key, role and the workspace's current epoch")
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    workspace=workspace, professional=professional, role=role, invited_by=lead,
                    invite_signature=invite_signature, invite_epoch=workspace.current_epoch,
                    invite_nonce=invite_nonce)
        except IntegrityError as exc:
            raise Conflict("that professional is already invited to or a member of this workspace") from exc
        audit_record(kind="membership.invited", actor=lead, request=request, target=workspace,
                     data={"member": str(professional.public_id), "role": role})
        events.send_event_on_commit(events.user_group(professional.pk), events.MEMBERSHIP_INVITED,
                                    {"workspace": str(workspace.public_id), "reference": workspace.reference})
        notify(recipients=[professional], kind=Notification.Kind.INVITATION, workspace_id=workspace.pk,
               subject=f"membership:{membership.pk}")
    return membership


def membership_respond(*, professional: Professional, workspace: Workspace, accept: bool, request=None) -> Membership:
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(
            workspace=workspace, professional=professional, state=Membership.State.INVITED).first()
        if membership is None:
            raise Conflict("there is no open invitation to this workspace for you")
        membership.state = Membership.State.ACCEPTED if accept else Membership.State.DECLINED
        if not accept:
            membership.left_at = timezone.now()
        membership.save(update_fields=["state", "left_at"])
        audit_record(kind="membership.accepted" if accept else "membership.declined", actor=professional,
                     request=request, target=workspace)
        if accept:
            # The lead's client answers by starting an epoch that includes the newcomer.
            events.send_event_on_commit(events.user_group(workspace.lead_id), events.MEMBERSHIP_ACCEPTED,
                                        {"workspace": str(workspace.public_id), "member": str(professional.public_id)})
        else:
            events.send_event_on_commit(events.workspace_group(workspace.pk), events.MEMBERSHIP_CHANGED,
                                        {"workspace": str(workspace.public_id), "member": str(professional.public_id),
                                         "state": "declined"})
    return membership


def membership_leave(*, professional: Professional, workspace: Workspace, request=None) -> None:
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        membership = access.active_membership(professional, workspace)
        if membership is None:
            raise Conflict("you are not a member of this workspace")
        if workspace.lead_id == professional.pk:
            raise ValidationError("hand the lead role over before leaving")
        membership.state = Membership.State.LEFT
        membership.left_at = timezone.now()
        membership.save(update_fields=["state", "left_at"])
        # Nobody posts again until the lead's client starts an epoch without this member.
        workspace.rotation_required = True
        workspace.roster_version += 1
        workspace.save(update_fields=["rotation_required", "roster_version"])
        audit_record(kind="membership.left", actor=professional, request=request, target=workspace)
        events.send_event_on_commit(events.user_group(professional.pk), events.MEMBERSHIP_ENDED,
                                    {"workspace": str(workspace.public_id), "reason": "left"})
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.MEMBERSHIP_CHANGED,
                                    {"workspace": str(workspace.public_id), "member": str(professional.public_id),
                                     "state": "left"})


def memberships_end_for_offboarding(*, professional: Professional, actor: Professional, request=None) -> None:
    """An offboarded professional leaves every workspace at once; each needs a new key epoch before
    anyone posts again, as when a member leaves. Where they led, a deputy takes the lead (their device
    starts that epoch); with no deputy left the workspace is frozen until the custodians appoint a lead
    (lead_appointment_install). Precondition: inside the offboarding transaction."""
    now = timezone.now()
    # Lock order, as in every service: the workspace rows (in id order), then their memberships, then
    # their audit chains (in the same order), then the accounts chain (the caller's own record). A key
    # epoch changing roles in one of them holds its workspace row first too, so neither waits on the other
    # in the opposite order.
    ids = (Membership.objects.filter(professional=professional, state__in=Membership.CURRENT_STATES)
           .values_list("workspace_id", flat=True))
    list(Workspace.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk"))
    memberships = list(Membership.objects.select_for_update().filter(
        professional=professional, state__in=Membership.CURRENT_STATES).select_related("workspace")
        .order_by("workspace_id"))
    for membership in memberships:
        was_active = membership.state == Membership.State.ACTIVE
        membership.state = Membership.State.REMOVED
        membership.left_at = now
        membership.save(update_fields=["state", "left_at"])
        workspace = membership.workspace
        if was_active:
            Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True,
                                                             roster_version=F("roster_version") + 1)
        audit_record(kind="membership.removed", actor=actor, request=request, target=workspace,
                     data={"member": str(professional.public_id), "reason": "offboarded"})
        if workspace.lead_id == professional.pk:
            _lead_gone(workspace=workspace, lead=professional, actor=actor, request=request)
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.MEMBERSHIP_CHANGED,
                                    {"workspace": str(workspace.public_id), "member": str(professional.public_id),
                                     "state": "removed"})


def _lead_gone(*, workspace: Workspace, lead: Professional, actor: Professional, request=None) -> None:
    """The lead was offboarded: the longest-serving deputy takes the lead, or the workspace is frozen."""
    deputy = (Membership.objects.filter(workspace=workspace, role=Membership.Role.DEPUTY,
                                        **access.active_terms())
              .select_related("professional").order_by("joined_at", "pk").first())
    if deputy is None:
        audit_record(kind="workspace.frozen", actor=actor, request=request, target=workspace,
                     data={"lead": str(lead.public_id), "reason": "the lead was offboarded and no deputy remains"})
        members = [m.professional for m in Membership.objects.filter(
            workspace=workspace, **access.active_terms()).select_related("professional")]
        notify(recipients=members, kind=Notification.Kind.WORKSPACE_FROZEN, workspace_id=workspace.pk,
               subject=f"frozen:{workspace.current_epoch}")
        return
    Membership.objects.filter(pk=deputy.pk).update(role=Membership.Role.LEAD)
    Workspace.objects.filter(pk=workspace.pk).update(lead=deputy.professional)
    audit_record(kind="workspace.lead_handed_over", actor=actor, request=request, target=workspace,
                 data={"new_lead": str(deputy.professional.public_id), "previous_lead": str(lead.public_id),
                       "reason": "the lead was offboarded: their deputy takes the lead"})
    notify(recipients=[deputy.professional], kind=Notification.Kind.LEAD_TAKEN_OVER, workspace_id=workspace.pk,
           subject=f"lead:{workspace.current_epoch}")
