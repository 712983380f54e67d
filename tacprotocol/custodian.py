"""What the records custodians do offline with two of their three shares: rebuild the custodian key and
sign a lead appointment for a workspace whose lead has gone with no deputy left (docs/crypto.md, "Lead
continuity"). Nothing here touches the network or the server's database: the request comes as a file
(`manage.py lead_appointment_request`), the appointment goes back as one (`manage.py
lead_appointment_install`), and `tac custodian-appoint` is the command around it."""

from __future__ import annotations

import base64
import binascii
import time
import uuid

import shamir_mnemonic

from . import crypto


class AppointmentError(Exception):
    """The request, the shares or the safety number do not allow signing: nothing was signed."""


def identity_from_shares(lines: list[str]) -> crypto.Identity:
    """The custodian key pair from two (or more) SLIP-39 shares, one per line."""
    shares = [line.strip() for line in lines if line.strip()]
    try:
        secret = shamir_mnemonic.combine_mnemonics(shares)
    except shamir_mnemonic.MnemonicError as exc:
        raise AppointmentError(f"the shares do not rebuild a key: {exc}") from exc
    return crypto.custodian_identity(secret)


def field_bytes(data: dict, name: str, size: int, what: str = "request") -> bytes:
    """A base64 field of a request or an appointment file, of exactly `size` bytes."""
    try:
        value = base64.b64decode(data[name], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise AppointmentError(f"the {what}'s {name} is missing or not base64") from exc
    if len(value) != size:
        raise AppointmentError(f"the {what}'s {name} is not {size} bytes")
    return value


def appointment_sign(request: dict, identity: crypto.Identity, safety_number: str,
                     created_ms: int | None = None) -> dict:
    """Sign `request` (lead_appointment_request's file) with the custodian key, once the custodians have
    read the appointee's safety number with them (by phone or in person) and typed it as `safety_number`.
    The number is compared, never shown: a request that names another key is refused."""
    if not isinstance(request, dict) or request.get("type") != "tac.lead_appointment_request.v1":
        raise AppointmentError("this is not a lead appointment request")
    try:
        if not isinstance(request.get("workspace"), str) or not isinstance(request.get("appointee"), str):
            raise TypeError("ids are strings")
        workspace_id, appointee = uuid.UUID(request["workspace"]), uuid.UUID(request["appointee"])
        epoch = int(request["epoch"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AppointmentError("the request names no valid workspace, appointee or epoch") from exc
    if not 1 <= epoch < 2**32:
        raise AppointmentError("the request's epoch is out of range")
    manifest_hash = field_bytes(request, "manifest_hash", 32)
    fp = field_bytes(request, "fingerprint", 32)
    key_id = crypto.custodian_key_id(identity.box_public, identity.sign_public)
    if request.get("custodian_key_id") != key_id.hex():
        raise AppointmentError("these shares rebuild another custodian key than the one this workspace is sealed to")
    typed = "".join(ch for ch in safety_number if ch.isdigit())
    if typed != "".join(ch for ch in crypto.safety_number(fp) if ch.isdigit()):
        raise AppointmentError("the safety number does not match the key in the request: do not sign; ask the "
                               "appointee to read it again from their Team Around the Child page")
    created_ms = created_ms or int(time.time() * 1000)
    statement = crypto.lead_appointment_statement(workspace_id, epoch, manifest_hash, appointee, fp, created_ms)
    return {"type": "tac.lead_appointment.v1", "workspace": str(workspace_id), "reference": request.get("reference"),
            "epoch": epoch, "manifest_hash": request["manifest_hash"], "appointee": str(appointee),
            "fingerprint": request["fingerprint"], "created_ms": created_ms, "custodian_key_id": key_id.hex(),
            "signature": base64.b64encode(identity.sign(statement)).decode()}
