"""What clients receive for a post, over HTTP and the websocket: the exact bytes to verify and decrypt, and
the server's fields (docs/protocol.md). Built from a Post or from a row of storage.post_page's columns, so
services (the post just stored) and selectors (a backlog page) answer with the same shape; neither
imports the other."""

from __future__ import annotations

import base64

from accounts.models import Professional
from teamaroundchild import sql

from .models import Post, Workspace


def post_row_from_db(row: tuple) -> tuple:
    """A storage.post_page row with its values as the ORM would give them (SQLite: UUIDs, datetimes)."""
    seq, post_id, workspace_id, author_id, *rest = row
    rest[3] = sql.from_db(Post, "created_at", rest[3])
    return (seq, sql.from_db(Post, "post_id", post_id), sql.from_db(Workspace, "public_id", workspace_id),
            sql.from_db(Professional, "public_id", author_id), *rest)


def post_payload(post: Post) -> dict:
    """What a client receives for a post: the exact bytes to verify and decrypt, and the server's fields."""
    return post_payload_from_row((
        post.seq, post.post_id, post.workspace.public_id, post.author.public_id, post.author_key.version,
        post.epoch.number, post.kind, post.created_at, post.header, post.nonce, post.ciphertext, post.signature))


def post_payload_from_row(row: tuple) -> dict:
    """The same payload from a row of storage.post_page's columns."""
    seq, post_id, workspace_id, author_id, key_version, epoch, kind, created_at, header, nonce, ciphertext, sig = row

    def enc(b: bytes) -> str:
        return base64.b64encode(bytes(b)).decode()

    return {
        "seq": seq,
        "post_id": str(post_id),
        "workspace": str(workspace_id),
        "author": str(author_id),
        "author_key_version": key_version,
        "epoch": epoch,
        "kind": kind,
        "created_at": created_at.isoformat(),
        "header": enc(header),
        "nonce": enc(nonce),
        "ciphertext": enc(ciphertext),
        "signature": enc(sig),
    }
