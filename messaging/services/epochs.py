"""Key epochs from the lead's client: the first, and each new one (admitting, removing, handing the lead
role over, on schedule), checked against the server's view of membership."""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import IdentityKey, Professional
from audit.services import audit_record
from tacprotocol import crypto

from .. import access, events
from ..custodian import Conflict, custodian_key_current
from ..models import (
    Epoch,
    EpochWrap,
    Membership,
    Workspace,
)
from ..schemas import EpochBundle
from .checks import check_clock, key_fingerprint


def _expected_manifest_members(workspace: Workspace, *,
                               remove: Membership | None) -> dict[uuid.UUID, tuple[Membership | None, str]]:
    """Who a new epoch may be wrapped for: the active members (required) and those who accepted an
    invitation (optional: store_epoch); never a member being removed."""
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


def store_epoch(*, workspace: Workspace, signer: Professional, bundle: EpochBundle,
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
    check_clock(manifest.created_ms, "manifest")
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
    known = {(k.professional.public_id, key_fingerprint(k)): k
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
        if public_id != lead_id and member.role != expected[public_id][1]:
            raise ValidationError(f"the manifest names member {public_id} as {member.role}, not as "
                                  f"{expected[public_id][1]}")
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


def signer_role(professional: Professional, workspace: Workspace) -> str | None:
    """Who may start a key epoch: the lead ("lead") or a deputy the lead named ("deputy"), while an active
    member. docs/crypto.md, "Lead continuity", gives the rules readers check again on the manifest."""
    membership = access.active_membership(professional, workspace)
    if membership is None:
        return None
    if workspace.lead_id == professional.pk:
        return "lead"
    return "deputy" if membership.role == Membership.Role.DEPUTY else None


def _deputies_expected(expected: dict, deputies: list[Professional], lead_id: uuid.UUID) -> dict:
    """The roles the lead's manifest gives when it names `deputies` (all of them, from now): each an
    active member or deputy, not the lead; any other deputy becomes a member."""
    named = {p.public_id for p in deputies}
    for pid in named:
        membership, role = expected.get(pid, (None, None))
        if membership is None or membership.state != Membership.State.ACTIVE or role not in (
                Membership.Role.MEMBER, Membership.Role.DEPUTY) or pid == lead_id:
            raise ValidationError("a deputy must be an active member of the workspace, not the lead or oversight")
    return {pid: (m, Membership.Role.DEPUTY if pid in named else
                  (Membership.Role.MEMBER if role == Membership.Role.DEPUTY else role))
            for pid, (m, role) in expected.items()}


def epoch_rotate(*, lead: Professional, workspace: Workspace, epoch: EpochBundle,
                 remove: Professional | None = None, new_lead: Professional | None = None,
                 deputies: list[Professional] | None = None, request=None) -> Epoch:
    """A new key epoch from the lead's client, or a deputy's: to admit members who accepted, after one
    left, on the 30-day / 500-post schedule, to remove a member (at once, in the same act), to hand the
    lead role over (the outgoing lead signs the manifest naming the new lead), or to name deputies (the
    lead only, `deputies` being all of them from now). A deputy keeps the lead; one who took the lead
    when the lead was offboarded (or a lead the custodians appointed) is the lead here already, and its
    first manifest names them so (`new_lead` themselves)."""
    signer = lead
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
        role = signer_role(signer, workspace)
        if role is None:
            raise PermissionDenied("only the lead professional or a deputy can start a new key epoch")
        if workspace.status == Workspace.Status.CLOSED:
            raise Conflict("this workspace is closed")
        if role == "deputy" and (new_lead is not None or deputies is not None):
            raise PermissionDenied("only the lead professional can hand the lead over or name deputies")
        # A lead the signed record does not name yet (a deputy the server made lead when the lead was
        # offboarded, or a lead the custodians appointed) takes over in this epoch as readers allow it:
        # naming themselves lead and nobody a deputy (docs/crypto.md, "Lead continuity").
        current = workspace.epochs.filter(number=workspace.current_epoch).first()
        if current is not None and crypto.manifest_parse(bytes(current.manifest)).lead_ids[0] != signer.public_id and (
                deputies is not None or (new_lead is not None and new_lead.pk != signer.pk)):
            raise PermissionDenied("the epoch that takes over names you lead and names no deputy; hand the lead over "
                                   "or name deputies in the next one")
        removing = None
        if remove is not None:
            removing = access.active_membership(remove, workspace) or Membership.objects.filter(
                workspace=workspace, professional=remove, state__in=Membership.CURRENT_STATES).first()
            if removing is None:
                raise ValidationError("that professional is not a member of this workspace")
            if remove.pk == signer.pk:
                raise ValidationError("the lead cannot remove themselves; hand the lead role over first")
            if remove.pk == workspace.lead_id:
                raise PermissionDenied("a deputy cannot remove the lead professional")
        handing_over = new_lead is not None and new_lead.pk != workspace.lead_id
        if new_lead is not None and access.active_membership(new_lead, workspace) is None:
            raise ValidationError("the new lead must be an active member of the workspace")
        expected = _expected_manifest_members(workspace, remove=removing)
        lead_id = (new_lead or workspace.lead).public_id
        if new_lead is not None:
            expected = {pid: (m, "lead" if pid == new_lead.public_id else
                              ("member" if m.role == "lead" else m.role)) for pid, (m, _r) in expected.items()}
        if deputies is not None:
            expected = _deputies_expected(expected, deputies, lead_id)
        before = {m.professional.public_id: m.role for m, _r in expected.values() if m is not None}
        stored = store_epoch(workspace=workspace, signer=signer, bundle=epoch, expected=expected,
                             new_lead=new_lead)
        admitted = [str(m.professional.public_id) for m, _ in expected.values()
                    if m is not None and m.first_epoch == stored.number and m.professional_id != signer.pk]
        if removing is not None:
            removing.state = Membership.State.REMOVED
            removing.left_at = timezone.now()
            removing.save(update_fields=["state", "left_at"])
            audit_record(kind="membership.removed", actor=signer, request=request, target=workspace,
                         data={"member": str(remove.public_id), "epoch": stored.number})
            events.send_event_on_commit(events.user_group(remove.pk), events.MEMBERSHIP_ENDED,
                                        {"workspace": str(workspace.public_id), "reason": "removed"})
        if handing_over:
            workspace.lead = new_lead
            workspace.save(update_fields=["lead"])
            audit_record(kind="workspace.lead_handed_over", actor=signer, request=request, target=workspace,
                         data={"new_lead": str(new_lead.public_id), "reason": "handed over"})
        # Every role as the stored manifest gives it (a handover, deputies named or dropped).
        for m, new_role in expected.values():
            if m is not None and m.role != new_role:
                Membership.objects.filter(pk=m.pk).update(role=new_role)
        if deputies is not None:
            after = sorted(str(pid) for pid, (_m, r) in expected.items() if r == Membership.Role.DEPUTY)
            if after != sorted(str(pid) for pid, r in before.items() if r == Membership.Role.DEPUTY):
                audit_record(kind="workspace.deputies_named", actor=signer, request=request, target=workspace,
                             data={"deputies": after, "epoch": stored.number})
        # The manifest's count: an accepted member the lead's device left out is not in this epoch.
        audit_record(kind="epoch.created", actor=signer, request=request, target=workspace,
                     data={"epoch": stored.number, "members": len(epoch.manifest.members), "admitted": admitted,
                           "signed_as": role})
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.EPOCH_CREATED,
                                    {"workspace": str(workspace.public_id), "epoch": stored.number})
        # A newcomer's socket is not in the workspace's group yet (it could not subscribe): tell it directly
        # that it now holds a key, so the browser opens the thread without a reload.
        for m, _role in expected.values():
            if m is not None and m.first_epoch == stored.number and m.professional_id != signer.pk:
                events.send_event_on_commit(events.user_group(m.professional_id), events.KEYS_ADDED,
                                            {"workspace": str(workspace.public_id)})
    return stored
