"""A workspace that outlives its lead (docs/crypto.md, "Lead continuity"). While the lead is there, they
name deputies in a signed manifest (epoch_rotate); when the lead is offboarded a deputy takes the lead
(memberships._lead_gone). With no deputy left the workspace is frozen, and only the records custodians
can appoint a lead: the server writes a request naming the current manifest and the member to appoint,
two custodians sign it offline with the custodian key (tacprotocol.custodian), and it is installed
here. Clients check the appointment against their pin; the server checks it as well."""

from __future__ import annotations

import base64
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Professional
from audit.services import audit_record
from notifications.models import Notification
from notifications.services import notify
from tacprotocol import crypto
from tacprotocol.custodian import AppointmentError, field_bytes

from .. import access, events
from ..custodian import Conflict
from ..models import CustodianKey, Epoch, LeadAppointment, Membership, Workspace


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def _frozen_current(workspace: Workspace) -> Epoch:
    if workspace.status == Workspace.Status.CLOSED:
        raise Conflict("this workspace is closed")
    if access.active_membership(workspace.lead, workspace) is not None:
        raise Conflict(f"{workspace.reference} has a lead ({workspace.lead.full_name}): appointments are only for a "
                       f"workspace whose lead has gone with no deputy left")
    epoch = workspace.epochs.filter(number=workspace.current_epoch).select_related("custodian_key").first()
    if epoch is None:
        raise Conflict("this workspace has no key epoch yet")
    return epoch


def _listed_fingerprint(epoch: Epoch, appointee: Professional) -> bytes:
    """The key the current manifest lists for the appointee, who must be a member (not oversight) in it."""
    manifest = crypto.manifest_parse(bytes(epoch.manifest))
    listed = manifest.member(appointee.public_id)
    if listed is None or listed.role not in ("member", "deputy"):
        raise ValidationError("the appointee must be a member of the current signed membership (not oversight)")
    return listed.fingerprint


def lead_appointment_request(*, workspace: Workspace, appointee: Professional, actor_label: str) -> dict:
    """What the custodians sign offline: this workspace, its current epoch and manifest hash, the member
    to appoint and the key the manifest lists for them. Audited; changes nothing else."""
    epoch = _frozen_current(workspace)
    if access.active_membership(appointee, workspace) is None:
        raise ValidationError(f"{appointee.full_name} is not an active member of {workspace.reference}")
    fp = _listed_fingerprint(epoch, appointee)
    request = {
        "type": "tac.lead_appointment_request.v1", "workspace": str(workspace.public_id),
        "reference": workspace.reference, "epoch": epoch.number, "manifest_hash": _b64(epoch.manifest_hash),
        "appointee": str(appointee.public_id), "appointee_name": appointee.full_name,
        "appointee_agency": appointee.agency.name, "fingerprint": _b64(fp),
        "custodian_key_id": bytes(epoch.custodian_key.key_id).hex(),
    }
    audit_record(kind="lead_appointment.requested", actor_label=actor_label, target=workspace,
                 data={"appointee": str(appointee.public_id), "epoch": epoch.number})
    return request


def _field(data: dict, name: str, size: int) -> bytes:
    try:
        return field_bytes(data, name, size, "appointment")
    except AppointmentError as exc:
        raise ValidationError(str(exc)) from exc


def lead_appointment_install(*, appointment: dict, actor_label: str) -> LeadAppointment:
    """Install a custodian-signed appointment: checked against the workspace's current manifest and a
    custodian key no older than the one that epoch is sealed to; then the appointee is the lead, and
    their device starts the next epoch (naming the appointment's manifest, which clients verify)."""
    if not isinstance(appointment, dict) or appointment.get("type") != "tac.lead_appointment.v1":
        raise ValidationError("this is not a signed lead appointment (tac custodian-appoint writes one)")
    try:
        if not isinstance(appointment.get("workspace"), str) or not isinstance(appointment.get("appointee"), str):
            raise TypeError("ids are strings")
        workspace_id, appointee_id = uuid.UUID(appointment["workspace"]), uuid.UUID(appointment["appointee"])
        number, created_ms = int(appointment["epoch"]), int(appointment["created_ms"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError("the appointment names no valid workspace, appointee, epoch or time") from exc
    # What the signed statement packs (>I, >Q) and the table holds (a signed 64-bit time).
    if not 1 <= number < 2**32 or not 0 <= created_ms < 2**63:
        raise ValidationError("the appointment's epoch or time is out of range")
    manifest_hash, fp = _field(appointment, "manifest_hash", 32), _field(appointment, "fingerprint", 32)
    signature = _field(appointment, "signature", 64)
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().filter(public_id=workspace_id).first()
        appointee = Professional.objects.filter(public_id=appointee_id).first()
        if workspace is None or appointee is None:
            raise ValidationError("the appointment names a workspace or professional this site does not have")
        epoch = _frozen_current(workspace)
        if number != epoch.number or manifest_hash != bytes(epoch.manifest_hash):
            raise Conflict(f"the appointment is for epoch {number}, but {workspace.reference} is at epoch "
                           f"{epoch.number} now: ask the custodians to sign a new request")
        membership = access.active_membership(appointee, workspace)
        if membership is None:
            raise Conflict(f"{appointee.full_name} is no longer an active member of {workspace.reference}")
        if fp != _listed_fingerprint(epoch, appointee):
            raise ValidationError("the appointment names another key than the manifest lists for the appointee")
        statement = crypto.lead_appointment_statement(workspace.public_id, number, manifest_hash, appointee_id, fp,
                                                      created_ms)
        custodians = CustodianKey.objects.filter(created_at__gte=epoch.custodian_key.created_at).order_by("created_at")
        signer = next((k for k in custodians if crypto.verify_detached(bytes(k.sign_public), statement, signature)),
                      None)
        if signer is None:
            raise ValidationError("the appointment is not signed by this site's custodian key")
        try:
            with transaction.atomic():
                stored = LeadAppointment.objects.create(
                    workspace=workspace, after_epoch=number, manifest_hash=manifest_hash, appointee=appointee,
                    fingerprint=fp, created_ms=created_ms, signature=signature, custodian_key=signer)
        except IntegrityError as exc:
            raise Conflict("a lead was already appointed for this epoch") from exc
        Membership.objects.filter(pk=membership.pk).update(role=Membership.Role.LEAD)
        workspace.lead = appointee
        workspace.rotation_required = True
        workspace.save(update_fields=["lead", "rotation_required"])
        audit_record(kind="workspace.lead_appointed", actor_label=actor_label, target=workspace,
                     data={"new_lead": str(appointee_id), "epoch": number, "custodian_key": bytes(signer.key_id).hex()})
        notify(recipients=[appointee], kind=Notification.Kind.LEAD_APPOINTED, workspace_id=workspace.pk,
               subject=f"appointed:{number}")
        events.send_event_on_commit(events.workspace_group(workspace.pk), events.MEMBERSHIP_CHANGED,
                                    {"workspace": str(workspace.public_id), "member": str(appointee_id),
                                     "state": "lead"})
    return stored

