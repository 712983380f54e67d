"""What a professional's own clients remember: stored encrypted and signed, never read by the server."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Professional
from audit.services import audit_record
from tacprotocol import crypto

from ..custodian import Conflict
from ..models import (
    ClientState,
)

MAX_STATE_BYTES = 256 * 1024


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
