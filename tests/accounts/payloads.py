"""JSON bodies as the browser sends them (docs/protocol.md): binary values as standard base64."""

from __future__ import annotations

import base64
import uuid

from django.conf import settings

from accounts.schemas import KeyEnrolment, PasswordSecrets
from tacprotocol import crypto


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def secrets_json(secrets: PasswordSecrets) -> dict:
    return {
        "auth_key": secrets.auth_key,
        "salt": b64(secrets.salt),
        "opslimit": secrets.opslimit,
        "memlimit": secrets.memlimit,
        "wrapped_secret": b64(secrets.wrapped_secret),
    }


def enrolment_json(enrolment: KeyEnrolment) -> dict:
    return {
        **secrets_json(enrolment.secrets),
        "sign_public": b64(enrolment.identity.sign_public),
        "box_public": b64(enrolment.identity.box_public),
        "binding_signature": b64(enrolment.identity.binding_signature),
    }


def make_enrolment(
    public_id: uuid.UUID, password: str, *, opslimit: int | None = None, memlimit: int | None = None
) -> tuple[dict, crypto.Identity]:
    enrolment, identity = KeyEnrolment.from_password(
        password=password,
        public_id=public_id,
        opslimit=opslimit or settings.TAC_KDF_OPSLIMIT,
        memlimit=memlimit or settings.TAC_KDF_MEMLIMIT,
    )
    return enrolment_json(enrolment), identity
