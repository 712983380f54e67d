"""Shared test vectors: `python -m tacprotocol.vectors > tests/vectors/crypto.json`.

Fixed inputs go through tacprotocol.crypto; the browser test (tests/browser/test_crypto_vectors.py) runs
the same inputs through frontend/static/tac/crypto.js and must get the same bytes; the Python test
(tests/test_crypto_vectors.py) recomputes them, so neither side can drift alone."""

from __future__ import annotations

import base64
import json
import uuid

from . import crypto


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kdf_vector(password: str, salt: bytes, opslimit: int, memlimit: int) -> dict:
    keys = crypto.derive_keys(password, salt, opslimit, memlimit)
    return {
        "password": password, "salt": b64(salt), "opslimit": opslimit, "memlimit": memlimit,
        "auth_key": keys.auth_key.hex(), "wrap_key": b64(keys.wrap_key),
    }


def identity_vector(sign_seed: bytes, box_secret: bytes, user_id: uuid.UUID, wrap_key: bytes,
                    salt: bytes, opslimit: int, memlimit: int, nonce: bytes) -> dict:
    identity = crypto.Identity(sign_seed=sign_seed, box_secret=box_secret)
    ad = crypto.identity_wrap_ad(user_id, salt, opslimit, memlimit)
    fp = identity.fingerprint()
    return {
        "sign_seed": b64(sign_seed), "box_secret": b64(box_secret), "user_id": str(user_id),
        "wrap_key": b64(wrap_key), "salt": b64(salt), "opslimit": opslimit, "memlimit": memlimit,
        "nonce": b64(nonce),
        "sign_public": b64(identity.sign_public), "box_public": b64(identity.box_public),
        "binding_signature": b64(identity.binding_signature(user_id)),
        "wrap_ad": b64(ad),
        "wrapped_secret": b64(crypto.identity_wrap(identity, wrap_key, ad, nonce=nonce)),
        "fingerprint": b64(fp), "safety_number": crypto.safety_number(fp),
    }


def build() -> dict:
    salt = bytes(range(16))
    kdf = [
        kdf_vector("correct horse battery staple", salt, 3, 64 * 1024 * 1024),
        kdf_vector("Café niño — ﬁve ＦＵＬＬ", bytes(16), 1, 8 * 1024 * 1024),  # NFKC matters here
        kdf_vector("short", bytes([255] * 16), 2, 16 * 1024 * 1024),
    ]
    wrap_key = base64.b64decode(kdf[0]["wrap_key"])
    identity = [
        identity_vector(bytes(range(32)), bytes(range(32, 64)), uuid.UUID("12345678-1234-5678-9abc-def012345678"),
                        wrap_key, salt, 3, 64 * 1024 * 1024, bytes(range(100, 124))),
        identity_vector(bytes([7] * 32), bytes([9] * 32), uuid.UUID("00000000-0000-4000-8000-000000000001"),
                        bytes([1] * 32), bytes(16), 1, 8 * 1024 * 1024, bytes(24)),
    ]
    return {"version": 2, "kdf": kdf, "identity": identity, "workspace": workspace_vectors()}


def workspace_vectors() -> dict:
    """Epoch wraps are anonymous sealed boxes (random ephemeral key), so their vector is one-way: the
    other side must open `epoch_wrap`. Everything else is deterministic and compared byte for byte."""
    author = crypto.Identity(sign_seed=bytes(range(32)), box_secret=bytes(range(32, 64)))
    reader = crypto.Identity(sign_seed=bytes([3] * 32), box_secret=bytes([5] * 32))
    workspace_id = uuid.UUID("5a5a5a5a-0000-4000-8000-00000000002a")
    author_id = uuid.UUID("12345678-1234-5678-9abc-def012345678")
    reader_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    epoch_key = bytes(range(200, 232))
    custodian = crypto.custodian_identity(bytes([13] * 32))
    next_custodian = crypto.custodian_identity(bytes([17] * 32))
    custodian_id = crypto.custodian_key_id(custodian.box_public, custodian.sign_public)
    next_custodian_id = crypto.custodian_key_id(next_custodian.box_public, next_custodian.sign_public)
    rotation = crypto.custodian_rotation_statement(custodian_id, next_custodian.box_public, next_custodian.sign_public,
                                                   1_790_000_000_321)
    wraps = {author_id: bytes([1]) * 80, reader_id: bytes([2]) * 80}
    custodian_wrap = bytes([3]) * 80
    digest = crypto.wraps_hash(wraps, custodian_wrap)
    commitment = crypto.epoch_key_commitment(workspace_id, 7, epoch_key)
    members = [
        crypto.ManifestMember(author_id, author.sign_public, author.box_public, "lead"),
        crypto.ManifestMember(reader_id, reader.sign_public, reader.box_public, "member"),
    ]
    manifest = crypto.manifest_bytes(
        workspace_id=workspace_id, epoch=7, prev_manifest_hash=bytes([9] * 32), members=members,
        custodian_id=custodian_id, wraps_digest=digest, key_commitment=commitment, created_ms=1_790_000_000_000,
    )
    header = crypto.PostHeader(
        workspace_id=workspace_id, epoch=7, post_id=uuid.UUID("0badc0de-0000-4000-8000-000000000003"),
        author_id=author_id, author_fingerprint=author.fingerprint(), client_time_ms=1_790_000_123_456,
        kind="action", parent_id=uuid.UUID("0badc0de-0000-4000-8000-000000000002"), rag="amber",
        owner_id=reader_id, due_day=20_500, status="open", prev_seq=41, prev_hash=bytes([4] * 32),
    )
    body = '{"title":"Book a home visit","detail":"Before Friday — with the health visitor"}'.encode()
    nonce = bytes(range(24))
    header_bytes, nonce, ciphertext, signature = crypto.post_seal(author, header, body, epoch_key, nonce=nonce)
    # A concern's rating change (kind 15): the new rating in the header, the required reason sealed in the body.
    rating = crypto.PostHeader(
        workspace_id=workspace_id, epoch=7, post_id=uuid.UUID("0badc0de-0000-4000-8000-000000000201"),
        author_id=author_id, author_fingerprint=author.fingerprint(), client_time_ms=1_790_000_300_000,
        kind="rating_change", target_id=uuid.UUID("0badc0de-0000-4000-8000-000000000001"), rag="red", prev_seq=43,
        prev_hash=bytes([6] * 32),
    )
    rating_body = '{"reason":"A second missed appointment — and nobody answered the door"}'.encode()
    rating_sealed = crypto.post_seal(author, rating, rating_body, epoch_key, nonce=bytes(range(24, 48)))
    invite_nonce = bytes(range(50, 66))
    invite = crypto.invite_statement(workspace_id, reader_id, reader.fingerprint(), "member", 6, invite_nonce)
    confirmation = crypto.key_confirmation_statement(author_id, reader_id, reader.fingerprint(), 1_790_000_222_000)
    # A lead appointment after epoch 7 (signed by the custodian key), and a manifest naming a deputy (role 4).
    appointment = crypto.lead_appointment_statement(workspace_id, 7, crypto.hash32(manifest), reader_id,
                                                    reader.fingerprint(), 1_790_000_400_000)
    deputy_members = [members[0], crypto.ManifestMember(reader_id, reader.sign_public, reader.box_public, "deputy")]
    deputy_manifest = crypto.manifest_bytes(
        workspace_id=workspace_id, epoch=8, prev_manifest_hash=crypto.hash32(manifest), members=deputy_members,
        custodian_id=custodian_id, wraps_digest=digest, key_commitment=commitment, created_ms=1_790_000_500_000,
    )
    state_plain = b'{"v":1,"verified":{},"workspaces":{}}'
    state_blob, state_signature = crypto.state_seal(reader, reader_id, 3, state_plain, nonce=bytes(range(1, 25)))
    return {
        "author_sign_seed": b64(author.sign_seed), "author_box_secret": b64(author.box_secret),
        "reader_sign_seed": b64(reader.sign_seed), "reader_box_secret": b64(reader.box_secret),
        "workspace_id": str(workspace_id), "author_id": str(author_id), "reader_id": str(reader_id),
        "epoch": 7, "epoch_key": b64(epoch_key), "key_commitment": b64(commitment),
        "epoch_wrap_for_reader": b64(crypto.epoch_key_wrap(workspace_id, 7, epoch_key, reader.box_public)),
        "custodian_secret": b64(bytes([13] * 32)),
        "custodian_box_public": b64(custodian.box_public), "custodian_sign_public": b64(custodian.sign_public),
        "custodian_id": b64(custodian_id),
        "custodian_rotation": {"next_box_public": b64(next_custodian.box_public),
                               "next_sign_public": b64(next_custodian.sign_public), "next_id": b64(next_custodian_id),
                               "created_ms": 1_790_000_000_321, "statement": b64(rotation),
                               "signature": b64(custodian.sign(rotation))},
        "wraps": {str(k): b64(v) for k, v in wraps.items()}, "custodian_wrap": b64(custodian_wrap),
        "wraps_hash": b64(digest),
        "manifest": {"prev_manifest_hash": b64(bytes([9] * 32)), "created_ms": 1_790_000_000_000,
                     "members": [{"public_id": str(m.public_id), "sign_public": b64(m.sign_public),
                                  "box_public": b64(m.box_public), "role": m.role} for m in members],
                     "bytes": b64(manifest), "signature": b64(author.sign(manifest))},
        "invite": {"epoch": 6, "nonce": b64(invite_nonce), "role": "member", "statement": b64(invite),
                   "signature": b64(author.sign(invite))},
        "lead_appointment": {"epoch": 7, "manifest_hash": b64(crypto.hash32(manifest)), "appointee": str(reader_id),
                             "fingerprint": b64(reader.fingerprint()), "created_ms": 1_790_000_400_000,
                             "statement": b64(appointment), "signature": b64(custodian.sign(appointment))},
        "deputy_manifest": {"epoch": 8, "prev_manifest_hash": b64(crypto.hash32(manifest)),
                            "created_ms": 1_790_000_500_000,
                            "members": [{"public_id": str(m.public_id), "sign_public": b64(m.sign_public),
                                         "box_public": b64(m.box_public), "role": m.role} for m in deputy_members],
                            "bytes": b64(deputy_manifest)},
        "key_confirmation": {"confirmed_ms": 1_790_000_222_000, "statement": b64(confirmation),
                             "signature": b64(author.sign(confirmation))},
        "state": {"version": 3, "plaintext": state_plain.decode(), "key": b64(crypto.state_key(reader, reader_id)),
                  "blob": b64(state_blob), "signature": b64(state_signature)},
        "padding": [{"data": b64(data), "block": block, "padded": b64(crypto.pad(data, block))}
                    for data, block in [(b"", 256), (b"abc", 256), (bytes(256), 256), (b"x" * 300, 16384)]],
        # Every action status, in an action_status header (a reassignment names the new owner): the status
        # byte is the same on both sides.
        "status_headers": [
            {"status": status, "owner_id": str(owner), "header": b64(crypto.PostHeader(
                workspace_id=workspace_id, epoch=7, post_id=uuid.UUID(f"0badc0de-0000-4000-8000-0000000001{n:02d}"),
                author_id=author_id, author_fingerprint=author.fingerprint(), client_time_ms=1_790_000_200_000 + n,
                kind="action_status", target_id=header.post_id, owner_id=owner, status=status, prev_seq=42,
                prev_hash=bytes([5] * 32)).to_bytes())}
            for n, status in enumerate(crypto.STATUS_CODES)
            if status not in ("", "open")
            for owner in [author_id if status == "reassigned" else crypto.ZERO_ID]
        ],
        "rating_change": {
            "post_id": str(rating.post_id), "client_time_ms": rating.client_time_ms, "kind": rating.kind,
            "target_id": str(rating.target_id), "rag": rating.rag, "prev_seq": rating.prev_seq,
            "prev_hash": b64(rating.prev_hash), "body": rating_body.decode(),
            **dict(zip(("header", "nonce", "ciphertext", "signature"), map(b64, rating_sealed), strict=True)),
        },
        "post": {
            "post_id": str(header.post_id), "client_time_ms": header.client_time_ms, "kind": header.kind,
            "parent_id": str(header.parent_id), "target_id": str(header.target_id), "rag": header.rag,
            "owner_id": str(header.owner_id), "due_day": header.due_day, "status": header.status,
            "prev_seq": header.prev_seq, "prev_hash": b64(header.prev_hash), "body": body.decode(),
            "nonce": b64(nonce), "header": b64(header_bytes), "ciphertext": b64(ciphertext),
            "signature": b64(signature), "post_hash": b64(crypto.post_hash(header_bytes, nonce, ciphertext)),
        },
    }


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
