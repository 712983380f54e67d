"""Shared test vectors: `python -m tacclient.vectors > tests/vectors/crypto.json`.

Fixed inputs go through tacclient.crypto; the browser test (tests/browser/test_crypto_vectors.py) runs
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
    return {"version": 1, "kdf": kdf, "identity": identity}


if __name__ == "__main__":
    print(json.dumps(build(), indent=2, ensure_ascii=False))
