"""What clients receive for a post, over HTTP and the websocket: the exact bytes to verify and decrypt, and
the server's fields (docs/protocol.md). Built from a Post or from a row of storage.post_page's columns, so
services (the post just stored) and selectors (a backlog page) answer with the same shape; neither
imports the other."""

from __future__ import annotations

import functools
from binascii import b2a_base64

from accounts.models import Professional
from teamaroundchild import sql

from .models import Post, Workspace

# The columns of a storage.post_page row whose values the database may give otherwise than the ORM would
# (SQLite: UUIDs as hex text, datetimes as text), by position.
_CONVERTED = {1: (Post, "post_id"), 2: (Workspace, "public_id"), 3: (Professional, "public_id"), 7: (Post, "created_at")}


def post_row_from_db(row: tuple) -> tuple:
    """A storage.post_page row with its values as the ORM would give them."""
    values = list(row)
    for i, (model, name) in _CONVERTED.items():
        values[i] = sql.from_db(model, name, values[i])
    return tuple(values)


@functools.cache
def _rows_need_converting() -> bool:
    """Whether post_page's rows need post_row_from_db: not on PostgreSQL, whose driver gives UUIDs and
    aware datetimes already (no field has a converter there)."""
    return any(sql.converts(model, name) for model, name in _CONVERTED.values())


def post_payloads_from_rows(rows: list[tuple]) -> list[dict]:
    """post_payload_from_row for every row of a storage.post_page page (a reconnecting socket's backlog)."""
    if _rows_need_converting():
        rows = [post_row_from_db(row) for row in rows]
    return [post_payload_from_row(row) for row in rows]


def post_payload(post: Post) -> dict:
    """What a client receives for a post: the exact bytes to verify and decrypt, and the server's fields."""
    return post_payload_from_row((
        post.seq, post.post_id, post.workspace.public_id, post.author.public_id, post.author_key.version,
        post.epoch.number, post.kind, post.created_at, post.header, post.nonce, post.ciphertext, post.signature))


def _b64(value: bytes | memoryview) -> str:
    return b2a_base64(value, newline=False).decode("ascii")


def post_payload_from_row(row: tuple) -> dict:
    """The same payload from a row of storage.post_page's columns (as the ORM would give them)."""
    seq, post_id, workspace_id, author_id, key_version, epoch, kind, created_at, header, nonce, ciphertext, sig = row
    return {
        "seq": seq,
        "post_id": str(post_id),
        "workspace": str(workspace_id),
        "author": str(author_id),
        "author_key_version": key_version,
        "epoch": epoch,
        "kind": kind,
        "created_at": created_at.isoformat(),
        "header": _b64(header),
        "nonce": _b64(nonce),
        "ciphertext": _b64(ciphertext),
        "signature": _b64(sig),
    }
