"""The data controller's recovery key and its pin.

The custodian key pair comes from one 32-byte secret, split 2-of-3 among records custodians
(`manage.py custodian_key_create`) and never stored online: the secret is the X25519 key every epoch
key is also sealed to, and an Ed25519 key derived from it signs its successor (crypto.custodian_identity).

Clients never take the custodian key from an API answer: a server that could name its own key would be
sealed every new epoch. They read the pin, a static file served with the scripts
(`/static/tac/pins/custodian.json`, written here into settings.TAC_PIN_DIR at deployment, its sha256
printed and audited), which lists every key the deployment has used, oldest first, each after the first
signed by the one before (crypto.custodian_rotation_statement). The database row is what the server
checks manifests against; the pin is what clients believe.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from tacprotocol import crypto

from .models import CustodianKey

PIN_NAME = "custodian.json"


class Conflict(ValidationError):
    """Well formed but not applicable to the current state (HTTP 409)."""


def pin_path() -> Path:
    return Path(settings.TAC_PIN_DIR) / PIN_NAME


def pin_read() -> dict | None:
    try:
        return json.loads(pin_path().read_text())
    except FileNotFoundError:
        return None


def custodian_key_current() -> CustodianKey:
    key = CustodianKey.objects.filter(is_current=True).first()
    if key is None:
        raise Conflict("no custodian key is configured: a site administrator runs `manage.py custodian_key_create`")
    return key


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def custodian_key_install(*, box_public: bytes, sign_public: bytes, label: str, previous: crypto.Identity | None = None,
                          new_pin: bool = False, actor_label: str = "manage.py custodian_key_create") -> tuple[CustodianKey, str]:
    """Install a custodian public key and write the pin clients read. Returns the key and the pin's sha256.

    With a pin in place, the new key must be signed by the previous one (`previous`: the custodian
    identity rebuilt from two shares); `new_pin` starts a new pin instead, which clients that already
    hold workspaces will refuse to move to (a new deployment, or the tests)."""
    key_id = crypto.custodian_key_id(box_public, sign_public)
    created_ms = int(timezone.now().timestamp() * 1000)
    pin = None if new_pin else pin_read()
    entry = {"label": label, "key_id": key_id.hex(), "box_public": _b64(box_public), "sign_public": _b64(sign_public),
             "created_ms": created_ms, "rotation_signature": None}
    if pin and pin.get("keys"):
        last = pin["keys"][-1]
        if previous is None:
            raise Conflict("a custodian key is already pinned: rebuild it from two shares to sign its successor, or "
                           "start a new pin (which workspaces made under the old one will refuse)")
        previous_id = crypto.custodian_key_id(previous.box_public, previous.sign_public)
        if previous_id.hex() != last["key_id"]:
            raise Conflict("the shares rebuild another key than the one pinned last")
        statement = crypto.custodian_rotation_statement(previous_id, box_public, sign_public, created_ms)
        entry["rotation_signature"] = _b64(previous.sign(statement))
        pin = {"version": 1, "keys": [*pin["keys"], entry]}
    else:
        pin = {"version": 1, "keys": [entry]}
    text = json.dumps(pin, indent=2) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    with transaction.atomic():
        CustodianKey.objects.filter(is_current=True).update(is_current=False, retired_at=timezone.now())
        key = CustodianKey.objects.create(box_public=box_public, sign_public=sign_public, key_id=key_id, label=label,
                                          is_current=True)
        audit_record(kind="custodian.key_installed", actor_label=actor_label, target=key,
                     data={"key_id": key_id.hex(), "pin_sha256": digest, "rotated": entry["rotation_signature"] is not None})
    _pin_write(text)
    return key, digest


def _pin_write(text: str) -> None:
    path = pin_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
