"""Validation of what clients send (HTTP JSON bodies and websocket frames). Each failure raises
ValidationError with a sentence saying what is wrong; the interface turns it into an error answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from tacprotocol import crypto
from tacprotocol.wire import MAX_CIPHERTEXT_BYTES, MAX_MEMBERS
from teamaroundchild.validation import CONTROL_OR_SURROGATE, b64, require_dict

# crypto_box_seal adds 48 bytes to label (18) + workspace id (16) + epoch (4) + key (32).
SEALED_EPOCH_KEY_BYTES = 48 + len(crypto.LABEL_EPOCH_WRAP) + 16 + 4 + 32
# A frame id is echoed in the answer: a short string or an integer a JavaScript number holds exactly.
MAX_FRAME_ID_CHARS = 128
MAX_SAFE_INTEGER = 2**53 - 1


def uuid_field(payload: dict, name: str) -> uuid.UUID:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a UUID")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a UUID") from exc


def int_field(payload: dict, name: str, *, minimum: int = 0, maximum: int = 2**63 - 1, default=None) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(f"{name} must be an integer from {minimum} to {maximum}")
    return value


def plain_text(value: str, name: str, *, max_length: int) -> str:
    """Text a person typed, safe to give the database: bounded, with no control characters or lone
    surrogates."""
    if len(value) > max_length:
        raise ValidationError(f"{name} is longer than {max_length} characters")
    if CONTROL_OR_SURROGATE.search(value):
        raise ValidationError(f"{name} must not contain control characters")
    return value


def frame_id_field(content: dict) -> str | int | None:
    """The `id` of a websocket frame, which its answer echoes."""
    value = content.get("id")
    if value is None or (isinstance(value, str) and len(value) <= MAX_FRAME_ID_CHARS) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SAFE_INTEGER):
        return value
    raise ValidationError(f"id must be a string of at most {MAX_FRAME_ID_CHARS} characters or an integer of at "
                          f"most 2**53 - 1 (or absent)")


@dataclass(frozen=True)
class EpochBundle:
    """A new key epoch made by the lead's client: the signed manifest, a wrap per member, the custodian's."""

    epoch: int
    manifest_bytes: bytes
    manifest: crypto.Manifest
    manifest_signature: bytes
    wraps: dict[uuid.UUID, bytes]
    custodian_wrap: bytes

    @classmethod
    def parse(cls, payload: Any) -> EpochBundle:
        payload = require_dict(payload, "epoch")
        manifest_bytes = b64(payload, "manifest", max_length=200 + 49 * MAX_MEMBERS)
        try:
            manifest = crypto.manifest_parse(manifest_bytes)
        except ValueError as exc:
            raise ValidationError(f"manifest: {exc}") from exc
        raw_wraps = payload.get("wraps")
        if not isinstance(raw_wraps, list) or len(raw_wraps) > MAX_MEMBERS:
            raise ValidationError("wraps must be a list of {member, sealed}")
        wraps: dict[uuid.UUID, bytes] = {}
        for item in raw_wraps:
            item = require_dict(item, "each wrap")
            member = uuid_field(item, "member")
            if member in wraps:
                raise ValidationError(f"two wraps for member {member}")
            wraps[member] = b64(item, "sealed", length=SEALED_EPOCH_KEY_BYTES)
        bundle = cls(
            epoch=int_field(payload, "epoch", minimum=1, maximum=2**32 - 1),
            manifest_bytes=manifest_bytes,
            manifest=manifest,
            manifest_signature=b64(payload, "manifest_signature", length=crypto.SIGNATURE_BYTES),
            wraps=wraps,
            custodian_wrap=b64(payload, "custodian_wrap", length=SEALED_EPOCH_KEY_BYTES),
        )
        if bundle.manifest.epoch != bundle.epoch:
            raise ValidationError("the manifest is for another epoch")
        if crypto.wraps_hash(wraps, bundle.custodian_wrap) != manifest.wraps_digest:
            raise ValidationError("the manifest does not commit to these wraps")
        if set(wraps) != {m.public_id for m in manifest.members}:
            raise ValidationError("there must be exactly one wrap for each member in the manifest")
        return bundle


@dataclass(frozen=True)
class PostEnvelope:
    header_bytes: bytes
    header: crypto.PostHeader
    nonce: bytes
    ciphertext: bytes
    signature: bytes

    @classmethod
    def parse(cls, payload: Any) -> PostEnvelope:
        payload = require_dict(payload, "post")
        header_bytes = b64(payload, "header", max_length=512)
        try:
            header = crypto.PostHeader.from_bytes(header_bytes)
        except ValueError as exc:
            raise ValidationError(f"header: {exc}") from exc
        return cls(
            header_bytes=header_bytes,
            header=header,
            nonce=b64(payload, "nonce", length=crypto.NONCE_BYTES),
            ciphertext=b64(payload, "ciphertext", max_length=MAX_CIPHERTEXT_BYTES),
            signature=b64(payload, "signature", length=crypto.SIGNATURE_BYTES),
        )


def wrap_list(payload: Any) -> dict[int, bytes]:
    """[{epoch, sealed}] for re-keying and history grants."""
    if not isinstance(payload, list) or not payload or len(payload) > 10_000:
        raise ValidationError("wraps must be a non-empty list of {epoch, sealed}")
    out: dict[int, bytes] = {}
    for item in payload:
        item = require_dict(item, "each wrap")
        epoch = int_field(item, "epoch", minimum=1, maximum=2**32 - 1)
        if epoch in out:
            raise ValidationError(f"two wraps for epoch {epoch}")
        out[epoch] = b64(item, "sealed", length=SEALED_EPOCH_KEY_BYTES)
    return out
