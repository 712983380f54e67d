"""Keys for one member after the fact: re-keying a colleague whose new key the team confirmed, sharing
history with a newcomer, and key confirmations (safety numbers compared)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import IdentityKey, Professional
from audit.services import audit_record
from tacprotocol import crypto

from .. import access, events
from ..custodian import Conflict
from ..models import (
    Epoch,
    EpochWrap,
    KeyConfirmation,
    Membership,
    Workspace,
)
from .checks import check_clock, key_fingerprint


def _extra_wraps(*, actor: Professional, workspace: Workspace, member: Professional, wraps: dict[int, bytes],
                 reason: str, allowed_epochs: set[int]) -> list[EpochWrap]:
    key = member.current_identity_key()
    epochs = {e.number: e for e in Epoch.objects.filter(workspace=workspace, number__in=list(wraps))}
    unknown = sorted(set(wraps) - set(epochs))
    if unknown:
        raise ValidationError(f"no such epochs: {unknown}")
    refused = sorted(set(wraps) - allowed_epochs)
    if refused:
        raise PermissionDenied(f"these epochs cannot be shared with that member: {refused}")
    existing = set(EpochWrap.objects.filter(epoch__in=epochs.values(), recipient_key=key)
                   .values_list("epoch__number", flat=True))
    created = [
        EpochWrap(epoch=epochs[n], recipient=member, recipient_key=key, sealed=sealed, created_by=actor, reason=reason)
        for n, sealed in wraps.items() if n not in existing
    ]
    EpochWrap.objects.bulk_create(created)
    return created


def member_rekey(*, actor: Professional, workspace: Workspace, member: Professional, wraps: dict[int, bytes],
                 request=None) -> int:
    """After a password reset a member has new keys; once a current member has compared the new safety
    number with them and signed a confirmation (key_confirm), any current member whose client holds the
    epoch keys re-wraps them for the new key. Only epochs the member already had (under an older key),
    and that the actor can read, can be given."""
    with transaction.atomic():
        if access.active_membership(actor, workspace) is None:
            raise PermissionDenied("only a member can re-key another member")
        if access.active_membership(member, workspace) is None:
            raise ValidationError("that professional is not a member of this workspace")
        if not _key_confirmed_in(workspace, member.current_identity_key()):
            raise PermissionDenied(f"nobody in this workspace has confirmed {member.full_name}'s new key yet: compare "
                                   f"the safety number with them first")
        entitled = set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient=member)
                       .values_list("epoch__number", flat=True))
        readable = set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient=actor)
                       .values_list("epoch__number", flat=True))
        created = _extra_wraps(actor=actor, workspace=workspace, member=member, wraps=wraps,
                               reason=EpochWrap.Reason.REKEY, allowed_epochs=entitled & readable)
        key = member.current_identity_key()
        still_missing = entitled - set(EpochWrap.objects.filter(epoch__workspace=workspace, recipient_key=key)
                                       .values_list("epoch__number", flat=True))
        if not still_missing and member.needs_rekey:
            others = Membership.objects.filter(professional=member, state=Membership.State.ACTIVE).exclude(
                workspace=workspace).values_list("workspace_id", flat=True)
            if not any(_member_missing_epochs(member, w) for w in others):
                Professional.objects.filter(pk=member.pk).update(needs_rekey=False)
        audit_record(kind="membership.rekeyed", actor=actor, request=request, target=workspace,
                     data={"member": str(member.public_id), "epochs": sorted(w.epoch.number for w in created)})
        events.send_event_on_commit(events.user_group(member.pk), events.KEYS_ADDED,
                                    {"workspace": str(workspace.public_id)})
    return len(created)


def _member_missing_epochs(member: Professional, workspace_id: int) -> set[int]:
    key = member.current_identity_key()
    entitled = set(EpochWrap.objects.filter(epoch__workspace_id=workspace_id, recipient=member)
                   .values_list("epoch__number", flat=True))
    have = set(EpochWrap.objects.filter(epoch__workspace_id=workspace_id, recipient_key=key)
               .values_list("epoch__number", flat=True))
    return entitled - have


def history_share(*, lead: Professional, workspace: Workspace, member: Professional, wraps: dict[int, bytes],
                  request=None) -> int:
    """The lead shares epochs from before a member joined: an explicit, audited act."""
    with transaction.atomic():
        if not access.is_lead(lead, workspace):
            raise PermissionDenied("only the lead professional can share history")
        membership = access.active_membership(member, workspace)
        if membership is None:
            raise ValidationError("that professional is not an active member")
        earlier = set(range(1, (membership.first_epoch or 1)))
        created = _extra_wraps(actor=lead, workspace=workspace, member=member, wraps=wraps,
                               reason=EpochWrap.Reason.HISTORY, allowed_epochs=earlier)
        membership.history_shared = True
        membership.save(update_fields=["history_shared"])
        audit_record(kind="membership.history_shared", actor=lead, request=request, target=workspace,
                     data={"member": str(member.public_id), "epochs": sorted(w.epoch.number for w in created)})
        events.send_event_on_commit(events.user_group(member.pk), events.KEYS_ADDED,
                                    {"workspace": str(workspace.public_id)})
    return len(created)


def _key_confirmed_in(workspace: Workspace, key: IdentityKey | None) -> bool:
    """Whether an active member of this workspace has confirmed `key` (key_confirm)."""
    if key is None:
        return False
    members = Membership.objects.filter(workspace=workspace, state=Membership.State.ACTIVE,
                                        professional__is_active=True).values("professional_id")
    return KeyConfirmation.objects.filter(subject_key=key, confirmer_id__in=members).exists()


def key_confirm(*, confirmer: Professional, workspace: Workspace, subject: Professional, fingerprint: bytes,
                confirmed_ms: int, signature: bytes, request=None) -> KeyConfirmation:
    """Store a member's signed statement that they compared a colleague's safety number with them
    (crypto.key_confirmation_statement). The server checks the signature with the confirmer's current key
    and that the key is the subject's; clients check it again against keys they trust. Idempotent."""
    with transaction.atomic():
        if access.active_membership(confirmer, workspace) is None:
            raise PermissionDenied("you are not a member of this workspace")
        if not Membership.objects.filter(workspace=workspace, professional=subject,
                                         state__in=Membership.CURRENT_STATES).exists():
            raise ValidationError("that professional is not a member of this workspace")
        if subject.pk == confirmer.pk:
            raise ValidationError("you cannot confirm your own key: a colleague compares it with you")
        subject_key = next((k for k in subject.identity_keys.all() if key_fingerprint(k) == fingerprint), None)
        if subject_key is None:
            raise Conflict("that safety number is not one of theirs")
        check_clock(confirmed_ms, "confirmation's")
        confirmer_key = confirmer.current_identity_key()
        statement = crypto.key_confirmation_statement(confirmer.public_id, subject.public_id, fingerprint, confirmed_ms)
        if confirmer_key is None or not crypto.verify_detached(bytes(confirmer_key.sign_public), statement, signature):
            raise ValidationError("the confirmation's signature does not verify with your key")
        existing = KeyConfirmation.objects.filter(confirmer=confirmer, subject_key=subject_key).first()
        if existing is not None:
            return existing
        confirmation = KeyConfirmation.objects.create(
            confirmer=confirmer, confirmer_key=confirmer_key, subject=subject, subject_key=subject_key,
            confirmed_ms=confirmed_ms, signature=signature)
        audit_record(kind="key.confirmed", actor=confirmer, request=request, target=workspace,
                     data={"member": str(subject.public_id), "key_version": subject_key.version})
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.KEY_CONFIRMED,
                                    {"workspace": str(workspace.public_id), "member": str(subject.public_id)})
    return confirmation
