"""Every state change of workspaces, membership, key epochs and posts. Each runs in one transaction,
checks access.py against current membership, writes its audit event, and sends its events after commit.

The server cannot read anything it checks here: it verifies signatures, manifests and the shape of
sealed boxes, never their content (docs/crypto.md)."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import uuid
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, PositiveBigIntegerField, Subquery, Value
from django.db.models.functions import Least
from django.http import Http404
from django.utils import timezone

from accounts.models import IdentityKey, Professional
from audit.services import audit_record
from notifications.models import Notification
from notifications.services import notify
from oversight import clocks
from tacprotocol import actions, crypto
from tacprotocol.wire import (
    CHANGEABLE_KINDS,
    CLOCK_SKEW_MS,
    CONTENT_KINDS,
    EPOCH_MAX_AGE_MS,
    EPOCH_MAX_POSTS,
    EVENT_KINDS,
    MAX_DUE_YEARS,
    RAG_ORDER,
)
from teamaroundchild import sql

from . import access, events
from .custodian import Conflict, custodian_key_current
from .models import (
    ActionSummary,
    ClientState,
    ConcernAcknowledgement,
    ConcernSummary,
    Epoch,
    EpochWrap,
    KeyConfirmation,
    Membership,
    Post,
    ReferenceCounter,
    Workspace,
)
from .schemas import EpochBundle, PostEnvelope

EPOCH_MAX_AGE = dt.timedelta(milliseconds=EPOCH_MAX_AGE_MS)
MAX_STATE_BYTES = 256 * 1024
MAX_DUE_DAY = (dt.date.max - dt.date(1970, 1, 1)).days

__all__ = ["Conflict", "custodian_key_current"]  # re-exported: callers catch services.Conflict


def _fingerprint(key: IdentityKey) -> bytes:
    return crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public))


def _now_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def _check_clock(ms: int, what: str) -> dt.datetime:
    skewed = ValidationError(f"the {what} time is more than 10 minutes from the server's clock; check this device's "
                             f"clock")
    if abs(ms - _now_ms()) > CLOCK_SKEW_MS:
        raise skewed
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _due_date(due_day: int, client_time: dt.datetime) -> dt.date:
    """A new action's due date, from today to two years ahead (in the site's time zone). "Today" is the
    server's or the day the post was signed on, whichever is earlier: a clock a few minutes behind
    around midnight still names yesterday."""
    if due_day > MAX_DUE_DAY:
        raise ValidationError("the action's due date is after the year 9999")
    due = dt.date(1970, 1, 1) + dt.timedelta(days=due_day)
    today = min(timezone.localdate(), timezone.localdate(client_time))
    if due < today:
        raise ValidationError(f"the action's due date ({due.isoformat()}) is in the past: choose today or later")
    if due > _years_after(today, MAX_DUE_YEARS):
        raise ValidationError(f"the action's due date ({due.isoformat()}) is more than {MAX_DUE_YEARS} years ahead")
    return due


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _next_reference() -> str:
    year = timezone.now().year
    ReferenceCounter.objects.get_or_create(year=year)
    counter = ReferenceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"TAC-{year}-{counter.last:04d}"


# --- epochs ------------------------------------------------------------------------------------------


def _expected_manifest_members(workspace: Workspace, *,
                               remove: Membership | None) -> dict[uuid.UUID, tuple[Membership | None, str]]:
    """Who a new epoch may be wrapped for: the active members (required) and those who accepted an
    invitation (optional: _store_epoch); never a member being removed."""
    states = [Membership.State.ACTIVE, Membership.State.ACCEPTED]
    memberships = (
        Membership.objects.filter(workspace=workspace, state__in=states, professional__is_active=True)
        .select_related("professional")
    )
    expected = {}
    for m in memberships:
        if remove is not None and m.pk == remove.pk:
            continue
        expected[m.professional.public_id] = (m, m.role)
    return expected


def _store_epoch(*, workspace: Workspace, signer: Professional, bundle: EpochBundle,
                 expected: dict[uuid.UUID, tuple[Membership | None, str]], new_lead: Professional | None = None) -> Epoch:
    """Check a lead-signed epoch bundle against the server's view of membership and store it.

    The manifest must be signed by the current lead's current identity key, chain to the previous
    manifest, name the current custodian key, and list exactly the expected members with the
    fingerprints of their current keys; the wraps are committed to by the manifest (schemas.py)."""
    manifest = bundle.manifest
    signer_key = signer.current_identity_key()
    if not crypto.verify_detached(bytes(signer_key.sign_public), bundle.manifest_bytes, bundle.manifest_signature):
        raise ValidationError("the manifest signature does not verify with the lead's key")
    if manifest.workspace_id != workspace.public_id:
        raise ValidationError("the manifest is for another workspace")
    if bundle.epoch != workspace.current_epoch + 1:
        raise Conflict(f"the next epoch is {workspace.current_epoch + 1}, not {bundle.epoch}; reload and try again")
    previous = workspace.epochs.filter(number=workspace.current_epoch).first()
    expected_prev = bytes(previous.manifest_hash) if previous else crypto.ZERO_HASH
    if manifest.prev_manifest_hash != expected_prev:
        raise Conflict("the manifest does not chain to the current epoch's manifest")
    _check_clock(manifest.created_ms, "manifest")
    custodian = custodian_key_current()
    if manifest.custodian_id != bytes(custodian.key_id):
        raise Conflict("the manifest names a custodian key that is not the current one")

    listed = {m.public_id: m for m in manifest.members}
    # Every active member must be in it; members who accepted an invitation may be (the lead's device
    # admits only those whose invitation it can verify); nobody else.
    lead_id = (new_lead or workspace.lead).public_id
    required = {pid for pid, (m, _role) in expected.items()
                if m is None or m.state != Membership.State.ACCEPTED or pid == lead_id}
    missing = sorted(str(i) for i in required - set(listed))
    extra = sorted(str(i) for i in set(listed) - set(expected))
    if missing or extra:
        raise Conflict(f"the manifest's members are not the workspace's members (missing {missing}, not members {extra})")
    expected = {pid: expected[pid] for pid in listed}
    # A member's entry may carry an earlier key of theirs: after a password reset their new key is wrapped
    # only once a colleague has confirmed it (the lead's client keeps sealing to the key it trusts). A
    # newcomer's must be the key they were invited with, their current one.
    keys: dict[uuid.UUID, IdentityKey] = {}
    known = {(k.professional.public_id, _fingerprint(k)): k
             for k in IdentityKey.objects.filter(professional__public_id__in=list(listed)).select_related("professional")}
    for public_id, member in listed.items():
        key = known.get((public_id, member.fingerprint))
        membership = expected[public_id][0]
        if key is None or (key.replaced_at is not None and membership is not None
                           and membership.state == Membership.State.ACCEPTED):
            raise Conflict(f"member {public_id}'s key in the manifest is not a key of theirs the workspace can use; "
                           f"reload and try again")
        if (member.role == "lead") != (public_id == lead_id):
            raise ValidationError("the manifest must name exactly the lead professional as lead")
        keys[public_id] = key

    now = timezone.now()
    if previous is not None:
        previous.retired_at = now
        previous.save(update_fields=["retired_at"])
    epoch = Epoch.objects.create(
        workspace=workspace, number=bundle.epoch, manifest=bundle.manifest_bytes,
        manifest_signature=bundle.manifest_signature, manifest_hash=crypto.hash32(bundle.manifest_bytes),
        signed_by=signer, signer_key=signer_key, custodian_key=custodian, created_at=now,
        start_seq=workspace.last_seq,
    )
    professionals = {p.public_id: p for p in Professional.objects.filter(public_id__in=list(listed))}
    EpochWrap.objects.bulk_create(
        [
            EpochWrap(epoch=epoch, recipient=professionals[pid], recipient_key=keys[pid], sealed=sealed,
                      created_by=signer, reason=EpochWrap.Reason.MANIFEST)
            for pid, sealed in bundle.wraps.items()
        ]
        + [EpochWrap(epoch=epoch, custodian_key=custodian, sealed=bundle.custodian_wrap, created_by=signer)]
    )
    for membership, _role in expected.values():
        if membership is not None and membership.state == Membership.State.ACCEPTED:
            membership.state = Membership.State.ACTIVE
            membership.joined_at = now
            membership.first_epoch = epoch.number
            # What was posted before they joined is history (shared or not), not unread.
            membership.last_read_seq = workspace.last_seq
            membership.save(update_fields=["state", "joined_at", "first_epoch", "last_read_seq"])
    workspace.current_epoch = epoch.number
    workspace.rotation_required = False
    workspace.roster_version += 1
    workspace.save(update_fields=["current_epoch", "rotation_required", "roster_version"])
    return epoch


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
        first_epoch = _store_epoch(workspace=workspace, signer=lead, bundle=epoch,
                                   expected={lead.public_id: (membership, "lead")})
        audit_record(kind="workspace.created", actor=lead, request=request, target=workspace,
                     data={"reference": workspace.reference})
        if details is not None:
            if details.header.kind != "details":
                raise ValidationError("the first post of a new workspace must be the child's details")
            _post_store(author=lead, key=lead.current_identity_key(), workspace=workspace, epoch_pk=first_epoch.pk,
                        envelope=details, request=request)
    return workspace


def epoch_rotate(*, lead: Professional, workspace: Workspace, epoch: EpochBundle,
                 remove: Professional | None = None, new_lead: Professional | None = None, request=None) -> Epoch:
    """A new key epoch from the lead's client: to admit members who accepted, after one left, on the
    30-day / 500-post schedule, to remove a member (at once, in the same act), or to hand the lead
    role over (the outgoing lead signs the manifest naming the new lead)."""
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if not access.is_lead(lead, workspace):
            raise PermissionDenied("only the lead professional can start a new key epoch")
        if workspace.status == Workspace.Status.CLOSED:
            raise Conflict("this workspace is closed")
        removing = None
        if remove is not None:
            removing = access.active_membership(remove, workspace) or Membership.objects.filter(
                workspace=workspace, professional=remove, state__in=Membership.CURRENT_STATES).first()
            if removing is None:
                raise ValidationError("that professional is not a member of this workspace")
            if remove.pk == lead.pk:
                raise ValidationError("the lead cannot remove themselves; hand the lead role over first")
        if new_lead is not None and access.active_membership(new_lead, workspace) is None:
            raise ValidationError("the new lead must be an active member of the workspace")
        expected = _expected_manifest_members(workspace, remove=removing)
        if new_lead is not None:
            expected = {pid: (m, "lead" if pid == new_lead.public_id else ("member" if m.role == "lead" else m.role))
                        for pid, (m, _r) in expected.items()}
        stored = _store_epoch(workspace=workspace, signer=lead, bundle=epoch, expected=expected, new_lead=new_lead)
        admitted = [str(m.professional.public_id) for m, _ in expected.values()
                    if m is not None and m.first_epoch == stored.number and m.professional_id != lead.pk]
        if removing is not None:
            removing.state = Membership.State.REMOVED
            removing.left_at = timezone.now()
            removing.save(update_fields=["state", "left_at"])
            audit_record(kind="membership.removed", actor=lead, request=request, target=workspace,
                         data={"member": str(remove.public_id), "epoch": stored.number})
            events.send_event_on_commit(events.user_group(remove.pk), events.MEMBERSHIP_ENDED,
                                        {"workspace": str(workspace.public_id), "reason": "removed"})
        if new_lead is not None:
            Membership.objects.filter(workspace=workspace, professional=lead, state=Membership.State.ACTIVE).update(
                role=Membership.Role.MEMBER)
            Membership.objects.filter(workspace=workspace, professional=new_lead,
                                      state=Membership.State.ACTIVE).update(role=Membership.Role.LEAD)
            workspace.lead = new_lead
            workspace.save(update_fields=["lead"])
            audit_record(kind="workspace.lead_handed_over", actor=lead, request=request, target=workspace,
                         data={"new_lead": str(new_lead.public_id)})
        # The manifest's count: an accepted member the lead's device left out is not in this epoch.
        audit_record(kind="epoch.created", actor=lead, request=request, target=workspace,
                     data={"epoch": stored.number, "members": len(epoch.manifest.members), "admitted": admitted})
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.EPOCH_CREATED,
                                    {"workspace": str(workspace.public_id), "epoch": stored.number})
        # A newcomer's socket is not in the workspace's group yet (it could not subscribe): tell it directly
        # that it now holds a key, so the browser opens the thread without a reload.
        for m, _role in expected.values():
            if m is not None and m.first_epoch == stored.number and m.professional_id != lead.pk:
                events.send_event_on_commit(events.user_group(m.professional_id), events.KEYS_ADDED,
                                            {"workspace": str(workspace.public_id)})
    return stored


def rotation_due(workspace: Workspace) -> bool:
    epoch = workspace.epochs.filter(number=workspace.current_epoch).first()
    if epoch is None:
        return False
    return (workspace.rotation_required or workspace.last_seq - epoch.start_seq >= EPOCH_MAX_POSTS
            or timezone.now() - epoch.created_at >= EPOCH_MAX_AGE
            or Membership.objects.filter(workspace=workspace, state=Membership.State.ACCEPTED).exists())


# --- membership --------------------------------------------------------------------------------------


def membership_invite(*, lead: Professional, workspace: Workspace, professional: Professional,
                      invite_signature: bytes, invite_nonce: bytes, role: str = Membership.Role.MEMBER,
                      request=None) -> Membership:
    """The lead invites a professional, signing the invitation (crypto.invite_statement) for their current
    key and role, the current epoch and a fresh nonce: the lead's client later admits exactly that, once."""
    if role not in (Membership.Role.MEMBER, Membership.Role.OVERSIGHT):
        raise ValidationError("invite as member or oversight")
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        if not access.is_lead(lead, workspace):
            raise PermissionDenied("only the lead professional can invite")
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
        statement = crypto.invite_statement(workspace.public_id, professional.public_id, _fingerprint(key), role,
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
    anyone posts again, as when a member leaves. Precondition: inside the offboarding transaction."""
    now = timezone.now()
    memberships = list(Membership.objects.select_for_update().filter(
        professional=professional, state__in=Membership.CURRENT_STATES).select_related("workspace"))
    # Lock order, as in every service: the workspace rows (in id order), then their audit chains (in the
    # same order), then the accounts chain (the caller's own record).
    memberships.sort(key=lambda m: m.workspace_id)
    list(Workspace.objects.select_for_update().filter(pk__in=[m.workspace_id for m in memberships]).order_by("pk"))
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
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.MEMBERSHIP_CHANGED,
                                    {"workspace": str(workspace.public_id), "member": str(professional.public_id),
                                     "state": "removed"})


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
        subject_key = next((k for k in subject.identity_keys.all() if _fingerprint(k) == fingerprint), None)
        if subject_key is None:
            raise Conflict("that safety number is not one of theirs")
        _check_clock(confirmed_ms, "confirmation's")
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


def client_state_save(*, professional: Professional, version: int, blob: bytes, signature: bytes,
                      request=None) -> ClientState:
    """Store the professional's own encrypted, signed state (tacclient/memory.py) if `version` is the next
    one: a stale writer gets a Conflict, reads the newer copy, merges and tries again. The server checks
    the signature (so it stores nothing a client would refuse) and can read none of it."""
    if len(blob) > MAX_STATE_BYTES:
        raise ValidationError(f"the saved state is larger than {MAX_STATE_BYTES} bytes")
    with transaction.atomic():
        professional = Professional.objects.select_for_update().get(pk=professional.pk)
        key = professional.current_identity_key()
        if key is None:
            raise Conflict("this account has no keys yet")
        if not crypto.verify_detached(bytes(key.sign_public),
                                      crypto.state_signed_message(professional.public_id, version, blob), signature):
            raise ValidationError("the saved state is not signed with your current key")
        state = ClientState.objects.filter(professional=professional).first()
        current = state.version if state is not None and state.identity_key_id == key.pk else 0
        if version != current + 1:
            raise Conflict(f"the saved state is at version {current}: read it, merge and save version {current + 1}")
        if state is None:
            state = ClientState(professional=professional)
        state.identity_key, state.version, state.blob, state.signature = key, version, blob, signature
        state.updated_at = timezone.now()
        state.save()
        audit_record(kind="client_state.saved", actor=professional, request=request, target=professional,
                     data={"version": version})
    return state


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


# --- posts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    post: Post
    created: bool  # False when the same post was sent again (idempotent retry)


def post_create(*, author: Professional, workspace: Workspace, envelope: PostEnvelope, request=None) -> PostResult:
    """Verify and store a post, assign its sequence number, audit it and fan it out after commit.

    Idempotent on the post id: the same bytes sent again (a retry after a lost answer) return the stored
    post without a new sequence number; a different post under a used id is refused. The stored post is
    looked for only when storing fails, so a first send costs no extra query; a retry is answered even
    if it would no longer be accepted (say the epoch has moved on since).

    The common statements are hand-written (teamaroundchild/sql.py says why): a post is five statements
    and a commit."""
    try:
        with transaction.atomic():
            workspace, epoch_pk, is_member, key = _workspace_locked_for_post(workspace.pk, author.pk)
            if not is_member:
                raise PermissionDenied("you are not a member of this workspace")
            post = _post_store(author=author, key=key, workspace=workspace, epoch_pk=epoch_pk, envelope=envelope,
                               request=request)
    except (IntegrityError, ValidationError, PermissionDenied):
        existing = Post.objects.filter(post_id=envelope.header.post_id).first()
        if existing is None:
            raise
        return _post_duplicate(existing, author, workspace, envelope)
    return PostResult(post=post, created=True)


_LOCKED_FIELDS = ("id", "public_id", "lead_id", "status", "current_rag", "current_epoch", "rotation_required", "last_seq",
                  "roster_version", "roster_keys_checked")
_KEY_FIELDS = ("id", "version", "sign_public", "box_public")


@functools.cache
def _lock_for_post_sql() -> str:
    return f"""
        SELECT {", ".join(f"w.{f}" for f in _LOCKED_FIELDS)},
               (SELECT e.id FROM messaging_epoch e WHERE e.workspace_id = w.id AND e.number = w.current_epoch),
               {access.active_member_sql("w.id")},
               {", ".join(f"k.{f}" for f in _KEY_FIELDS)}
        FROM messaging_workspace w
        LEFT JOIN accounts_identitykey k ON k.id = (
            SELECT id FROM accounts_identitykey
            WHERE professional_id = %s AND replaced_at IS NULL ORDER BY version DESC LIMIT 1)
        WHERE w.id = %s{sql.for_update(of="w")}"""


def _workspace_locked_for_post(workspace_pk: int, author_pk: int):
    """One statement: the workspace row locked (SELECT ... FOR UPDATE), the id of its current epoch,
    whether the author is an active member, and the author's current identity key."""
    row = sql.fetch_one(_lock_for_post_sql(), [author_pk, author_pk, workspace_pk])
    if row is None:
        raise Http404("no such workspace")
    n = len(_LOCKED_FIELDS)
    epoch_pk, is_member, key_row = row[n], bool(row[n + 1]), row[n + 2:]
    key = sql.instance(IdentityKey, _KEY_FIELDS, key_row) if key_row[0] is not None else None
    return sql.instance(Workspace, _LOCKED_FIELDS, row[:n]), epoch_pk, is_member, key


def _post_duplicate(existing: Post, author: Professional, workspace: Workspace, envelope: PostEnvelope) -> PostResult:
    same = (existing.author_id == author.pk and existing.workspace_id == workspace.pk
            and bytes(existing.header) == envelope.header_bytes
            and bytes(existing.ciphertext) == envelope.ciphertext and bytes(existing.signature) == envelope.signature)
    if not same:
        raise Conflict("this post id is already used by another post")
    return PostResult(post=existing, created=False)


def _post_store(*, author: Professional, key: IdentityKey | None, workspace: Workspace, epoch_pk: int,
                envelope: PostEnvelope, request=None) -> Post:
    """Preconditions: the caller holds SELECT ... FOR UPDATE on the workspace row (or just created it),
    has checked that the author is an active member, and passes the author's current identity key (None
    if they have none) and the id of the current epoch."""
    h = envelope.header
    if workspace.status == Workspace.Status.CLOSED:
        raise Conflict("this workspace is closed")
    if workspace.rotation_required:
        raise Conflict("a member has left: the lead professional's device must renew the workspace keys first")
    if h.workspace_id != workspace.public_id:
        raise ValidationError("the post header names another workspace")
    if h.author_id != author.public_id:
        raise ValidationError("the post header names another author")
    if h.epoch != workspace.current_epoch:
        raise Conflict(f"posts go in the current key epoch ({workspace.current_epoch}), not {h.epoch}")
    if key is None or h.author_fingerprint != _fingerprint(key):
        raise ValidationError("the post header's author key is not your current key")
    if not crypto.post_verify(bytes(key.sign_public), envelope.header_bytes, envelope.nonce, envelope.ciphertext,
                              envelope.signature):
        raise ValidationError("the post signature does not verify")
    client_time = _check_clock(h.client_time_ms, "post's")
    if h.prev_seq > workspace.last_seq or (h.prev_seq == 0) != (h.prev_hash == crypto.ZERO_HASH):
        raise ValidationError(f"the post says it follows #{h.prev_seq}, which is not a post of this workspace")
    if workspace.roster_keys_checked != workspace.roster_version:
        _check_epoch_covers_members(workspace, epoch_pk)

    parent = _post_ref(workspace, h.parent_id, "parent")
    target = _post_ref(workspace, h.target_id, "target")
    owner = None
    due_date = None
    if h.kind in CONTENT_KINDS and target is not None:
        raise ValidationError(f"a {h.kind} does not target another post")
    if h.kind in ("concern", "rating_change") and not h.rag:
        raise ValidationError(f"a {h.kind.replace('_', ' ')} needs a RAG rating")
    if h.kind not in ("concern", "rating_change") and h.rag:
        raise ValidationError("only concerns and rating changes carry a RAG rating")
    if h.kind == "action":
        owner = _member_by_public_id(workspace, h.owner_id, "owner")
        if owner is None:
            raise ValidationError("an action needs an owner who is a member of the workspace")
        if h.status not in ("", "open"):
            raise ValidationError("a new action is open")
        due_date = _due_date(h.due_day, client_time) if h.due_day else None
    elif h.kind == "action_status" and h.status == "reassigned":
        owner = _member_by_public_id(workspace, h.owner_id, "owner")
        if owner is None or h.due_day:
            raise ValidationError("a reassignment names a new owner who is a member of the workspace, and no due date")
    elif h.owner_id != crypto.ZERO_ID or h.due_day:
        raise ValidationError("only actions have an owner and a due date")
    if h.kind in EVENT_KINDS and target is None:
        raise ValidationError(f"a {h.kind} must target a post")
    if h.kind == "action_status":
        if target.kind != "action":
            raise ValidationError("an action status targets an action")
        if h.status not in actions.CHANGES:
            raise ValidationError(f"an action status is one of {', '.join(actions.CHANGES)}")
    elif h.status and h.kind != "action":
        raise ValidationError("only actions and action statuses carry a status")
    if h.kind in ("edit", "retraction") and target.author_id != author.pk:
        raise PermissionDenied(f"only the author of a post can make its {h.kind}")
    if h.kind in ("edit", "retraction") and target.kind not in CHANGEABLE_KINDS:
        raise ValidationError(f"a {h.kind} targets a concern, action, update, decision or details post")
    summary = _action_change(workspace, author, target, h.status, owner) if h.kind == "action_status" else None
    concern = _concern_change(workspace, author, h.kind, h.rag, target, parent)
    if h.kind == "acknowledgement" and target.kind not in CONTENT_KINDS:
        raise ValidationError("an acknowledgement targets a concern, action, update, decision or details post")
    if h.kind == "history_shared" and author.pk != workspace.lead_id:
        raise PermissionDenied("only the lead professional shares the earlier record")

    seq = workspace.last_seq + 1
    post = Post(
        workspace=workspace, seq=seq, post_id=h.post_id, author=author, author_key=key, epoch_id=epoch_pk, kind=h.kind,
        rag=h.rag, status=h.status or ("open" if h.kind == "action" else ""), owner=owner, due_date=due_date,
        parent=parent, target=target, client_time=client_time, header=envelope.header_bytes, nonce=envelope.nonce,
        ciphertext=envelope.ciphertext, signature=envelope.signature,
    )
    # Hand-written INSERT and UPDATE (teamaroundchild/sql.py): the same rows Post.objects.create() and
    # workspace.save() would write, at a tenth of the CPU.
    post.pk = sql.insert(Post, {f.attname: getattr(post, f.attname) for f in Post._meta.concrete_fields
                                if not f.primary_key})
    post._state.adding, post._state.db = False, "default"
    changes = {"last_seq": seq,
               # Checked above against this roster; wraps are only ever added, so it holds until the roster moves.
               "roster_keys_checked": workspace.roster_version}
    rating_was = concern.rag if concern is not None and h.kind == "rating_change" else None
    _summarise_concern(post, workspace, author, concern)
    if h.kind == "concern":
        # The highest RAG of the concerns not retracted: a new concern can only raise it.
        changes["current_rag"] = max(workspace.current_rag, h.rag, key=lambda r: RAG_ORDER[r])
    elif h.kind == "rating_change" or (h.kind == "retraction" and target.kind == "concern"):
        changes["current_rag"] = _highest_rag(workspace)
    sql.update(Workspace, workspace.pk, changes)
    for name, value in changes.items():
        setattr(workspace, name, value)
    _summarise_action(post, summary, author)
    audit_record(kind="post.created", actor=author, request=request, target=workspace,
                 data={"seq": seq, "post": str(h.post_id), "kind": h.kind,
                       **({"status": h.status} if h.kind == "action_status" else {}),
                       # A rating change's old and new ratings (its reason is in the encrypted body).
                       **({"from": rating_was, "to": h.rag} if rating_was is not None else {})})
    events.send_event_on_commit(events.workspace_group(workspace.pk), events.POST_CREATED,
                                {"workspace_pk": workspace.pk, "roster": workspace.roster_version,
                                 "post": post_payload_from_row((
                                     seq, post.post_id, workspace.public_id, author.public_id, key.version, h.epoch,
                                     post.kind, post.created_at, post.header, post.nonce, post.ciphertext,
                                     post.signature))})
    return post


def _action_change(workspace: Workspace, author: Professional, target: Post, status: str,
                   new_owner: Professional | None) -> ActionSummary:
    """The action's summary as `status` leaves it (tacprotocol/actions.py's rule, on the current lead), not
    yet saved; PermissionDenied for someone the rule does not allow, Conflict for a change that does not
    apply to where the action stands."""
    summary = ActionSummary.objects.get(action=target)
    if summary.retracted:
        raise Conflict("the action was retracted: its status no longer changes")
    before = actions.ActionState(summary.status, summary.owner_id)
    after, refused = actions.change(before, status=status, author=author.pk, lead=workspace.lead_id,
                                    new_owner=new_owner.pk if new_owner else None)
    if after is None:
        may = actions.may(before, status, author.pk, workspace.lead_id)
        raise (Conflict if may else PermissionDenied)(refused)
    summary.status, summary.owner_id = after.status, after.owner
    return summary


def _summarise_action(post: Post, summary: ActionSummary | None, author: Professional) -> None:
    """Keep the action's summary row with the post that moves it, in the same transaction; tell a new
    owner that an action waits for them to accept it."""
    if post.kind == "action":
        remind_at, breach_at, escalate_at = clocks.action_clock(post.due_date)
        ActionSummary.objects.create(action=post, workspace_id=post.workspace_id, owner_id=post.owner_id,
                                     owner_agency_id=post.owner.agency_id, status="open", due_date=post.due_date,
                                     created_at=post.created_at, updated_at=post.created_at,
                                     last_change_seq=post.seq, remind_at=remind_at, breach_at=breach_at,
                                     escalate_at=escalate_at)
        if post.owner_id != author.pk:
            notify(recipients=[post.owner], kind=Notification.Kind.ACTION_ASSIGNED, workspace_id=post.workspace_id,
                   post_seq=post.seq, subject=f"{post.post_id}:{post.owner_id}")
        return
    if post.kind == "retraction" and post.target.kind == "action":
        ActionSummary.objects.filter(action_id=post.target_id).update(
            retracted=True, updated_at=post.created_at, last_change_seq=post.seq)
        return
    if summary is None:
        return
    stamp = {"accepted": "accepted_at", "done": "done_at", "confirmed": "confirmed_at"}.get(post.status)
    if stamp:
        setattr(summary, stamp, post.created_at)
    if post.status == "reassigned":
        summary.accepted_at = None
        summary.owner_agency_id = post.owner.agency_id
        # The new owner's reminder and escalation are theirs to receive, to their agency's managers.
        summary.reminded_at = summary.breach_sent_at = summary.escalated_at = None
        notify(recipients=[post.owner], kind=Notification.Kind.ACTION_ASSIGNED, workspace_id=post.workspace_id,
               post_seq=summary.action.seq, subject=f"{summary.action.post_id}:{post.owner_id}:{post.seq}")
    if post.status == "reopened":  # from done or cancelled: never confirmed, which is final
        summary.done_at = None
    summary.updated_at, summary.last_change_seq = post.created_at, post.seq
    summary.save()


def _concern_change(workspace: Workspace, author: Professional, kind: str, rag: str, target: Post | None,
                    parent: Post | None) -> ConcernSummary | None:
    """The summary of the concern this post answers or changes (None if none), with a rating change
    checked: it targets a concern that is not retracted, is made by the concern's author or the lead, and
    names a rating other than the current one."""
    if kind in ("acknowledgement", "rating_change", "retraction") and target is not None and target.kind == "concern":
        concern = target
    elif kind in CONTENT_KINDS and parent is not None and parent.kind == "concern":
        concern = parent
    elif kind == "rating_change":
        raise ValidationError("a rating change targets a concern")
    else:
        return None
    summary = ConcernSummary.objects.get(concern=concern)
    if kind == "rating_change":
        if author.pk not in (concern.author_id, workspace.lead_id):
            raise PermissionDenied("only the concern's author or the lead professional changes its rating")
        if summary.retracted:
            raise Conflict("the concern was retracted: its rating no longer changes")
        if rag == summary.rag:
            raise ValidationError(f"the concern is already rated {rag}")
    return summary


def _summarise_concern(post: Post, workspace: Workspace, author: Professional, summary: ConcernSummary | None) -> None:
    """Keep the concern's summary (rating, response clock, first acknowledgement by each agency) with the
    post that moves it, in the same transaction. Precondition: `summary` is from _concern_change."""
    now, is_lead = post.created_at, author.pk == workspace.lead_id
    if post.kind == "concern":
        ConcernSummary.objects.create(
            concern=post, workspace_id=workspace.pk, author_agency_id=author.agency_id, rag=post.rag,
            raised_at=now, clock_started_at=now, due_at=clocks.concern_due(post.rag, now),
            # The lead's own concern needs no answer from the lead.
            responded_at=now if is_lead else None, updated_at=now, last_change_seq=post.seq)
        return
    if summary is None:
        return
    if post.kind == "retraction":
        summary.retracted = True
    elif post.kind == "rating_change" and not is_lead:
        # Someone else re-rated it: the lead answers the new rating on its own clock.
        summary.rag, summary.clock_started_at, summary.due_at = post.rag, now, clocks.concern_due(post.rag, now)
        summary.responded_at = summary.breached_at = None
    else:
        if post.kind == "rating_change":
            summary.rag = post.rag
        if is_lead and summary.responded_at is None:
            summary.responded_at = now
    if post.kind == "acknowledgement":
        seconds = max(0, int((now - summary.raised_at).total_seconds()))
        ConcernAcknowledgement.objects.bulk_create(
            [ConcernAcknowledgement(concern=summary, agency_id=author.agency_id, rag=summary.rag, acknowledged_at=now,
                                    seconds=seconds)], ignore_conflicts=True)
    summary.updated_at, summary.last_change_seq = now, post.seq
    summary.save()


def _check_epoch_covers_members(workspace: Workspace, epoch_pk: int) -> None:
    """No member is left unable to decrypt: every active member holds a wrap of this epoch (under their
    current key, or an older one a colleague's client will re-key)."""
    members = set(Membership.objects.filter(workspace=workspace, state=Membership.State.ACTIVE,
                                            professional__is_active=True).values_list("professional_id", flat=True))
    wrapped = set(EpochWrap.objects.filter(epoch_id=epoch_pk, recipient__isnull=False).values_list("recipient_id",
                                                                                                flat=True))
    if not members <= wrapped:
        raise Conflict("the current key epoch is not wrapped for every member: the lead's device must renew the keys")
    if not EpochWrap.objects.filter(epoch_id=epoch_pk, custodian_key__isnull=False).exists():
        raise Conflict("the current key epoch is not wrapped for the custodian")


def _post_ref(workspace: Workspace, post_id: uuid.UUID, what: str) -> Post | None:
    if post_id == crypto.ZERO_ID:
        return None
    post = Post.objects.filter(workspace=workspace, post_id=post_id).first()
    if post is None:
        raise ValidationError(f"the {what} post is not in this workspace")
    return post


def _member_by_public_id(workspace: Workspace, public_id: uuid.UUID, what: str) -> Professional | None:
    if public_id == crypto.ZERO_ID:
        return None
    membership = Membership.objects.filter(workspace=workspace, professional__public_id=public_id,
                                           state=Membership.State.ACTIVE).select_related("professional").first()
    return membership.professional if membership else None


def _highest_rag(workspace: Workspace) -> str:
    """The highest current rating of the workspace's concerns that are not retracted."""
    rags = set(ConcernSummary.objects.filter(workspace=workspace, retracted=False).values_list("rag", flat=True))
    return max(rags, key=lambda r: RAG_ORDER[r], default="")


# A post payload's columns, in post_payload_from_row's order, for hand-written reads of many posts.
POST_PAYLOAD_SQL = ("p.seq, p.post_id, w.public_id, a.public_id, k.version, e.number, p.kind, p.created_at, "
                    "p.header, p.nonce, p.ciphertext, p.signature")
POST_PAYLOAD_FROM = ("messaging_post p JOIN messaging_workspace w ON w.id = p.workspace_id "
                     "JOIN accounts_professional a ON a.id = p.author_id "
                     "JOIN accounts_identitykey k ON k.id = p.author_key_id JOIN messaging_epoch e ON e.id = p.epoch_id")


def post_row_from_db(row: tuple) -> tuple:
    """A POST_PAYLOAD_SQL row with its values as the ORM would give them (SQLite: UUIDs, datetimes)."""
    seq, post_id, workspace_id, author_id, *rest = row
    rest[3] = sql.from_db(Post, "created_at", rest[3])
    return (seq, sql.from_db(Post, "post_id", post_id), sql.from_db(Workspace, "public_id", workspace_id),
            sql.from_db(Professional, "public_id", author_id), *rest)


def post_payload(post: Post) -> dict:
    """What a client receives for a post: the exact bytes to verify and decrypt, and the server's fields."""
    return post_payload_from_row((
        post.seq, post.post_id, post.workspace.public_id, post.author.public_id, post.author_key.version,
        post.epoch.number, post.kind, post.created_at, post.header, post.nonce, post.ciphertext, post.signature))


def post_payload_from_row(row: tuple) -> dict:
    """The same payload from a row of POST_PAYLOAD_SQL's columns."""
    seq, post_id, workspace_id, author_id, key_version, epoch, kind, created_at, header, nonce, ciphertext, sig = row

    def enc(b: bytes) -> str:
        return base64.b64encode(bytes(b)).decode()

    return {
        "seq": seq,
        "post_id": str(post_id),
        "workspace": str(workspace_id),
        "author": str(author_id),
        "author_key_version": key_version,
        "epoch": epoch,
        "kind": kind,
        "created_at": created_at.isoformat(),
        "header": enc(header),
        "nonce": enc(nonce),
        "ciphertext": enc(ciphertext),
        "signature": enc(sig),
    }


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

