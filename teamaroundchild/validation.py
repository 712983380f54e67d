"""Checks on the JSON every app receives (HTTP bodies and websocket frames): each failure is a
ValidationError saying what is wrong. Shared by accounts/schemas.py and messaging/schemas.py."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from django.core.exceptions import ValidationError

# PostgreSQL refuses NUL in text, and UTF-8 cannot encode a lone surrogate (from a "\ud800" JSON escape):
# both raised deep in the database driver. Other control characters are no part of any name or address.
CONTROL_OR_SURROGATE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def require_dict(value: Any, what: str = "body") -> dict:
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object")
    return value


def b64(payload: dict, name: str, *, length: int | None = None, max_length: int | None = None) -> bytes:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} is missing or not a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{name} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise ValidationError(f"{name} must be {length} bytes, not {len(raw)}")
    if max_length is not None and len(raw) > max_length:
        raise ValidationError(f"{name} is longer than {max_length} bytes")
    return raw
