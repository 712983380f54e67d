"""Parsing of the JSON the browser (or the Python client) sends with new credentials. Every failure is a
ValidationError whose message says what is wrong; nothing here trusts the client's claims beyond what it
can check (sizes, the Ed25519 signature binding the X25519 key to the account)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from tacprotocol import crypto
from teamaroundchild.validation import CONTROL_OR_SURROGATE, b64

AUTH_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
# Upper bounds keep a client from asking every future browser to run a KDF it cannot afford.
MAX_OPSLIMIT = 20
MAX_MEMLIMIT = 1024 * 1024 * 1024


def email_field(payload: Any, name: str = "email") -> str:
    """An email address as typed, trimmed and lower-cased (accounts are looked up that way). Only its shape
    is checked, the same for every address, so a refusal says nothing about whether an account exists.
    No control characters or lone surrogates: the database and UTF-8 refuse them (a 500 before)."""
    value = payload.get(name) if isinstance(payload, dict) else None
    if isinstance(value, str):
        value = value.strip().lower()
    if not isinstance(value, str) or "@" not in value or len(value) > 254 or CONTROL_OR_SURROGATE.search(value):
        raise ValidationError(f"{name} must be an email address")
    return value


def b64_field(payload: dict[str, Any], name: str, length: int) -> bytes:
    return b64(payload, name, length=length)


def auth_key_field(payload: dict[str, Any], name: str = "auth_key") -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not AUTH_KEY_RE.match(value):
        raise ValidationError(f"{name} must be 64 lowercase hex characters")
    return value


def otp_token_field(payload: dict[str, Any], name: str = "otp_token") -> str:
    """A TOTP code or a backup code as typed (spaces and dashes allowed); absent means none was given."""
    value = payload.get(name, "")
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(f"{name} must be a string of at most 64 characters")
    return value


@dataclass(frozen=True)
class PasswordSecrets:
    """What changes with the password: the auth key, the KDF salt and cost, and the re-sealed private keys."""

    auth_key: str
    salt: bytes
    opslimit: int
    memlimit: int
    wrapped_secret: bytes

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> PasswordSecrets:
        opslimit, memlimit = payload.get("opslimit"), payload.get("memlimit")
        if not isinstance(opslimit, int) or not settings.TAC_KDF_OPSLIMIT <= opslimit <= MAX_OPSLIMIT:
            raise ValidationError(
                f"opslimit must be an integer from {settings.TAC_KDF_OPSLIMIT} to {MAX_OPSLIMIT}"
            )
        if not isinstance(memlimit, int) or not settings.TAC_KDF_MEMLIMIT <= memlimit <= MAX_MEMLIMIT:
            raise ValidationError(
                f"memlimit must be an integer from {settings.TAC_KDF_MEMLIMIT} to {MAX_MEMLIMIT}"
            )
        return cls(
            auth_key=auth_key_field(payload),
            salt=b64_field(payload, "salt", crypto.SALT_BYTES),
            opslimit=opslimit,
            memlimit=memlimit,
            # nonce (24) + 64 bytes of secrets + 16 bytes of tag
            wrapped_secret=b64_field(payload, "wrapped_secret", crypto.NONCE_BYTES + 64 + 16),
        )


@dataclass(frozen=True)
class PublicIdentity:
    sign_public: bytes
    box_public: bytes
    binding_signature: bytes

    @classmethod
    def parse(cls, payload: dict[str, Any], *, public_id: uuid.UUID) -> PublicIdentity:
        identity = cls(
            sign_public=b64_field(payload, "sign_public", 32),
            box_public=b64_field(payload, "box_public", 32),
            binding_signature=b64_field(payload, "binding_signature", crypto.SIGNATURE_BYTES),
        )
        if not crypto.identity_binding_verify(
            public_id, identity.sign_public, identity.box_public, identity.binding_signature
        ):
            raise ValidationError("binding_signature does not verify for this account and these keys")
        return identity


@dataclass(frozen=True)
class KeyEnrolment:
    """Everything a browser sends when an account gets its first (or, after a reset, new) keys."""

    secrets: PasswordSecrets
    identity: PublicIdentity

    @classmethod
    def parse(cls, payload: Any, *, public_id: uuid.UUID) -> KeyEnrolment:
        if not isinstance(payload, dict):
            raise ValidationError("expected a JSON object")
        return cls(
            secrets=PasswordSecrets.parse(payload),
            identity=PublicIdentity.parse(payload, public_id=public_id),
        )

    @classmethod
    def from_password(
        cls, *, password: str, public_id: uuid.UUID, opslimit: int, memlimit: int
    ) -> tuple[KeyEnrolment, crypto.Identity]:
        """What a browser would send, made in Python: for the demo seed, the CLI and tests."""
        salt = crypto.new_salt()
        keys = crypto.derive_keys(password, salt, opslimit, memlimit)
        identity = crypto.Identity.generate()
        ad = crypto.identity_wrap_ad(public_id, salt, opslimit, memlimit)
        return (
            cls(
                secrets=PasswordSecrets(
                    auth_key=keys.auth_password,
                    salt=salt,
                    opslimit=opslimit,
                    memlimit=memlimit,
                    wrapped_secret=crypto.identity_wrap(identity, keys.wrap_key, ad),
                ),
                identity=PublicIdentity(
                    sign_public=identity.sign_public,
                    box_public=identity.box_public,
                    binding_signature=identity.binding_signature(public_id),
                ),
            ),
            identity,
        )
