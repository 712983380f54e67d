"""End-to-end primitives shared with the browser (frontend/static/tac/crypto.js). libsodium only.

Every function here has a twin of the same name (camelCase) in crypto.js, and both sides must produce
identical bytes for the vectors in tests/vectors/crypto.json. Change one, change both, regenerate the
vectors with `python -m tacclient.vectors` and read the diff.

The password never leaves the client. Argon2id turns it, with a per-account 16-byte salt, into a master
key; keyed BLAKE2b with two distinct labels turns that into
  - the auth key, which the server receives (hex) as the Django password, and
  - the wrapping key, which never leaves the client and seals the identity private keys.
"""

from __future__ import annotations

import hashlib
import os
import struct
import unicodedata
import uuid
from dataclasses import dataclass

import nacl.bindings as b
from nacl.encoding import RawEncoder
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.hash import blake2b
from nacl.public import PrivateKey
from nacl.pwhash import argon2id
from nacl.signing import SigningKey, VerifyKey

SALT_BYTES = 16
KEY_BYTES = 32
NONCE_BYTES = 24
SIGNATURE_BYTES = 64

LABEL_AUTH = b"tac.kdf.auth.v1"
LABEL_WRAP = b"tac.kdf.wrap.v1"
LABEL_IDENTITY_WRAP = b"tac.identity.wrap.v1\x00"
LABEL_IDENTITY_BINDING = b"tac.identity.binding.v1\x00"
LABEL_FINGERPRINT = b"tac.fingerprint.v1\x00"


class DecryptionError(Exception):
    """A box did not open: wrong key, wrong associated data, or altered bytes."""


@dataclass(frozen=True)
class DerivedKeys:
    auth_key: bytes
    wrap_key: bytes

    @property
    def auth_password(self) -> str:
        """What Django receives as the password."""
        return self.auth_key.hex()


def normalise_password(password: str) -> bytes:
    # NFKC so that the same password typed on a phone and on a clinical PC gives the same bytes.
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def derive_keys(password: str, salt: bytes, opslimit: int, memlimit: int) -> DerivedKeys:
    if len(salt) != SALT_BYTES:
        raise ValueError("salt must be 16 bytes")
    master = argon2id.kdf(KEY_BYTES, normalise_password(password), salt, opslimit=opslimit, memlimit=memlimit)
    return DerivedKeys(
        auth_key=blake2b(LABEL_AUTH, digest_size=KEY_BYTES, key=master, encoder=RawEncoder),
        wrap_key=blake2b(LABEL_WRAP, digest_size=KEY_BYTES, key=master, encoder=RawEncoder),
    )


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


@dataclass(frozen=True)
class Identity:
    """A professional's two key pairs: Ed25519 for signing (kept as its 32-byte seed), X25519 for boxes."""

    sign_seed: bytes
    box_secret: bytes

    @classmethod
    def generate(cls) -> Identity:
        return cls(sign_seed=os.urandom(KEY_BYTES), box_secret=os.urandom(KEY_BYTES))

    @property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.sign_seed)

    @property
    def sign_public(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def box_private(self) -> PrivateKey:
        return PrivateKey(self.box_secret)

    @property
    def box_public(self) -> bytes:
        return bytes(self.box_private.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message, encoder=RawEncoder).signature

    def binding_signature(self, user_id: uuid.UUID) -> bytes:
        return self.sign(identity_binding_message(user_id, self.box_public))

    def fingerprint(self) -> bytes:
        return fingerprint(self.sign_public, self.box_public)


def identity_binding_message(user_id: uuid.UUID, box_public: bytes) -> bytes:
    """What the Ed25519 key signs to vouch for the X25519 key of the same account."""
    return LABEL_IDENTITY_BINDING + user_id.bytes + box_public


def identity_binding_verify(user_id: uuid.UUID, sign_public: bytes, box_public: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(sign_public).verify(identity_binding_message(user_id, box_public), signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def identity_wrap_ad(user_id: uuid.UUID, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """Associated data of the sealed private keys: the account and the KDF parameters that made the key,
    so a server cannot swap one account's blob for another's or quietly weaken the parameters."""
    return LABEL_IDENTITY_WRAP + user_id.bytes + salt + struct.pack(">QQ", opslimit, memlimit)


def identity_wrap(identity: Identity, wrap_key: bytes, ad: bytes, nonce: bytes | None = None) -> bytes:
    """nonce (24) || XChaCha20-Poly1305(sign_seed || box_secret)."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    sealed = b.crypto_aead_xchacha20poly1305_ietf_encrypt(identity.sign_seed + identity.box_secret, ad, nonce, wrap_key)
    return nonce + sealed


def identity_unwrap(blob: bytes, wrap_key: bytes, ad: bytes) -> Identity:
    try:
        secrets = b.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[NONCE_BYTES:], ad, blob[:NONCE_BYTES], wrap_key)
    except (CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("the identity keys did not open with this password") from exc
    return Identity(sign_seed=secrets[:KEY_BYTES], box_secret=secrets[KEY_BYTES:])


def fingerprint(sign_public: bytes, box_public: bytes) -> bytes:
    return blake2b(LABEL_FINGERPRINT + sign_public + box_public, digest_size=KEY_BYTES, encoder=RawEncoder)


def safety_number(fp: bytes) -> str:
    """Thirty digits in six groups, read aloud or compared on screen (Signal's style): each 5-byte chunk
    of the fingerprint taken as a big-endian integer modulo 100000."""
    groups = [int.from_bytes(fp[i : i + 5], "big") % 100000 for i in range(0, 30, 5)]
    return " ".join(f"{g:05d}" for g in groups)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
