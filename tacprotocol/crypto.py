"""End-to-end primitives shared with the browser (frontend/static/tac/crypto.js). libsodium only.

Every function here has a twin of the same name (camelCase) in crypto.js, and both sides must produce
identical bytes for the vectors in tests/vectors/crypto.json. Change one, change both, regenerate the
vectors with `python -m tacprotocol.vectors` and read the diff.

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


# --- workspaces: epoch keys, manifests, post envelopes ------------------------------------------------
# Binary layouts are fixed-width big-endian fields, so both sides build identical bytes without any
# JSON canonicalisation. docs/crypto.md describes each one, and the rule each reader applies to it.

LABEL_EPOCH_WRAP = b"tac.epoch.wrap.v1\x00"
LABEL_EPOCH_COMMIT = b"tac.epoch.commit.v1\x00"
LABEL_MANIFEST = b"tac.manifest.v2\x00"
LABEL_POST_HEADER = b"tac.post.header.v2\x00"
LABEL_POST_SIG = b"tac.post.sig.v1\x00"
LABEL_CUSTODIAN_ID = b"tac.custodian.v2\x00"
LABEL_CUSTODIAN_SIGN = b"tac.custodian.sign.v1\x00"
LABEL_CUSTODIAN_ROTATE = b"tac.custodian.rotate.v1\x00"
LABEL_INVITE = b"tac.invite.v2\x00"
LABEL_KEY_CONFIRM = b"tac.key.confirm.v1\x00"
LABEL_LEAD_APPOINT = b"tac.lead.appoint.v1\x00"
LABEL_STATE_KEY = b"tac.state.key.v1\x00"
LABEL_STATE = b"tac.state.v1\x00"
LABEL_STATE_SIG = b"tac.state.sig.v1\x00"
ZERO_ID = uuid.UUID(int=0)
ZERO_HASH = bytes(32)
INVITE_NONCE_BYTES = 16
# Bodies are padded (libsodium's ISO/IEC 7816-4 padding) before encryption, so a ciphertext's length
# tells only a bucket: 256-byte steps for posts, 16 KiB steps for the child's details (one bucket for
# almost every child). The personal state is padded to 1 KiB steps.
POST_PAD_BLOCK = 256
DETAILS_PAD_BLOCK = 16 * 1024
STATE_PAD_BLOCK = 1024


def hash32(data: bytes) -> bytes:
    return blake2b(data, digest_size=KEY_BYTES, encoder=RawEncoder)


def keyed_hash32(key: bytes, data: bytes) -> bytes:
    return blake2b(data, digest_size=KEY_BYTES, key=key, encoder=RawEncoder)


def pad(data: bytes, block: int) -> bytes:
    return b.sodium_pad(data, block)


def unpad(data: bytes, block: int) -> bytes:
    try:
        return b.sodium_unpad(data, block)
    except (CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("the padding is not valid") from exc


def epoch_key_new() -> bytes:
    return os.urandom(KEY_BYTES)


def epoch_wrap_plaintext(workspace_id: uuid.UUID, epoch: int, epoch_key: bytes) -> bytes:
    return LABEL_EPOCH_WRAP + workspace_id.bytes + struct.pack(">I", epoch) + epoch_key


def epoch_key_wrap(workspace_id: uuid.UUID, epoch: int, epoch_key: bytes, recipient_box_public: bytes) -> bytes:
    """An anonymous sealed box (crypto_box_seal) of the epoch key with its workspace and epoch inside, so a
    server cannot replay one workspace's or epoch's wrap as another's. Anonymous, so anyone could make
    one: a reader checks the key it opens against the signed manifest's key commitment before use."""
    return b.crypto_box_seal(epoch_wrap_plaintext(workspace_id, epoch, epoch_key), recipient_box_public)


def epoch_key_unwrap(sealed: bytes, identity_or_secret, workspace_id: uuid.UUID, epoch: int) -> bytes:
    secret = identity_or_secret.box_secret if isinstance(identity_or_secret, Identity) else identity_or_secret
    public = b.crypto_scalarmult_base(secret)
    try:
        plain = b.crypto_box_seal_open(sealed, public, secret)
    except (CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("the epoch key is not wrapped for this key") from exc
    prefix = LABEL_EPOCH_WRAP + workspace_id.bytes + struct.pack(">I", epoch)
    if len(plain) != len(prefix) + KEY_BYTES or plain[: len(prefix)] != prefix:
        raise DecryptionError("the wrap is bound to another workspace or epoch")
    return plain[len(prefix) :]


def epoch_key_commitment(workspace_id: uuid.UUID, epoch: int, epoch_key: bytes) -> bytes:
    """Keyed BLAKE2b under the epoch key: the manifest signs it, so a reader can tell the key it unwrapped
    (from the manifest's wraps, a colleague's re-key or a history grant) is the lead's, not the server's."""
    return keyed_hash32(epoch_key, LABEL_EPOCH_COMMIT + workspace_id.bytes + struct.pack(">I", epoch))


def custodian_key_id(custodian_box_public: bytes, custodian_sign_public: bytes) -> bytes:
    return hash32(LABEL_CUSTODIAN_ID + custodian_box_public + custodian_sign_public)


def custodian_identity(master_secret: bytes) -> Identity:
    """The custodian key pair from the 32-byte secret the SLIP-39 shares rebuild: the secret is the X25519
    key every epoch is sealed to, and keyed BLAKE2b of it is the Ed25519 seed that signs the next key."""
    if len(master_secret) != KEY_BYTES:
        raise ValueError("the custodian secret is 32 bytes")
    return Identity(sign_seed=keyed_hash32(master_secret, LABEL_CUSTODIAN_SIGN), box_secret=master_secret)


def custodian_rotation_statement(previous_key_id: bytes, box_public: bytes, sign_public: bytes,
                                 created_ms: int) -> bytes:
    """Signed by the previous custodian key: the only way clients move their pin to a new one."""
    return LABEL_CUSTODIAN_ROTATE + previous_key_id + box_public + sign_public + struct.pack(">Q", created_ms)


def wraps_hash(wraps: dict[uuid.UUID, bytes], custodian_wrap: bytes) -> bytes:
    """Commits to every member's wrap (sorted by member id) and the custodian's."""
    parts = [struct.pack(">I", len(wraps))]
    for member_id in sorted(wraps, key=lambda u: u.bytes):
        sealed = wraps[member_id]
        parts.append(member_id.bytes + struct.pack(">I", len(sealed)) + sealed)
    parts.append(struct.pack(">I", len(custodian_wrap)) + custodian_wrap)
    return hash32(b"".join(parts))


ROLE_CODES = {"lead": 1, "member": 2, "oversight": 3, "deputy": 4}
MANIFEST_MEMBER_BYTES = 16 + 32 + 32 + 1


@dataclass(frozen=True)
class ManifestMember:
    """A member as the lead signed them into an epoch: both public keys, so a reader needs nothing from
    the server to check a signature or to wrap the next epoch's key for them."""

    public_id: uuid.UUID
    sign_public: bytes
    box_public: bytes
    role: str

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.sign_public, self.box_public)


def manifest_bytes(
    *,
    workspace_id: uuid.UUID,
    epoch: int,
    prev_manifest_hash: bytes,
    members: list[ManifestMember],
    custodian_id: bytes,
    wraps_digest: bytes,
    key_commitment: bytes,
    created_ms: int,
) -> bytes:
    """The signed statement of who holds an epoch key. Members sorted by public id."""
    ordered = sorted(members, key=lambda m: m.public_id.bytes)
    body = [
        LABEL_MANIFEST,
        workspace_id.bytes,
        struct.pack(">I", epoch),
        prev_manifest_hash,
        struct.pack(">Q", created_ms),
        custodian_id,
        wraps_digest,
        key_commitment,
        struct.pack(">H", len(ordered)),
    ]
    for m in ordered:
        body.append(m.public_id.bytes + m.sign_public + m.box_public + bytes([ROLE_CODES[m.role]]))
    return b"".join(body)


@dataclass(frozen=True)
class Manifest:
    workspace_id: uuid.UUID
    epoch: int
    prev_manifest_hash: bytes
    created_ms: int
    custodian_id: bytes
    wraps_digest: bytes
    key_commitment: bytes
    members: tuple[ManifestMember, ...]

    @property
    def lead_ids(self) -> list[uuid.UUID]:
        return [m.public_id for m in self.members if m.role == "lead"]

    @property
    def deputy_ids(self) -> list[uuid.UUID]:
        return [m.public_id for m in self.members if m.role == "deputy"]

    def member(self, public_id: uuid.UUID) -> ManifestMember | None:
        return next((m for m in self.members if m.public_id == public_id), None)


def manifest_parse(data: bytes) -> Manifest:
    fixed = len(LABEL_MANIFEST) + 16 + 4 + 32 + 8 + 32 + 32 + 32 + 2
    if len(data) < fixed or not data.startswith(LABEL_MANIFEST):
        raise ValueError("not an epoch manifest (version 2)")
    at = len(LABEL_MANIFEST)
    workspace_id = uuid.UUID(bytes=data[at : at + 16])
    (epoch,) = struct.unpack(">I", data[at + 16 : at + 20])
    prev = data[at + 20 : at + 52]
    (created_ms,) = struct.unpack(">Q", data[at + 52 : at + 60])
    custodian_id, digest, commitment = data[at + 60 : at + 92], data[at + 92 : at + 124], data[at + 124 : at + 156]
    (count,) = struct.unpack(">H", data[at + 156 : at + 158])
    at += 158
    size = MANIFEST_MEMBER_BYTES
    if len(data) != at + count * size:
        raise ValueError("the manifest's member list has the wrong length")
    roles = {v: k for k, v in ROLE_CODES.items()}
    members = []
    for i in range(count):
        chunk = data[at + i * size : at + (i + 1) * size]
        if chunk[80] not in roles:
            raise ValueError("unknown role code in the manifest")
        members.append(ManifestMember(uuid.UUID(bytes=chunk[:16]), chunk[16:48], chunk[48:80], roles[chunk[80]]))
    ids = [m.public_id.bytes for m in members]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise ValueError("manifest members must be sorted and distinct")
    return Manifest(workspace_id, epoch, prev, created_ms, custodian_id, digest, commitment, tuple(members))


def invite_statement(workspace_id: uuid.UUID, member_id: uuid.UUID, member_fingerprint: bytes, role: str,
                     epoch: int, nonce: bytes) -> bytes:
    """What the lead signs when inviting: this member, with this key, in this role, invited while `epoch`
    was current, once (a random nonce). The lead's client admits to a new epoch only a member with such a
    statement who no manifest after `epoch` has listed: so neither a member the server made up nor one
    the lead removed can be slipped in again on an old signature."""
    if len(nonce) != INVITE_NONCE_BYTES:
        raise ValueError("an invitation nonce is 16 bytes")
    return (LABEL_INVITE + workspace_id.bytes + member_id.bytes + member_fingerprint + bytes([ROLE_CODES[role]])
            + struct.pack(">I", epoch) + nonce)


def key_confirmation_statement(confirmer_id: uuid.UUID, subject_id: uuid.UUID, subject_fingerprint: bytes,
                               confirmed_ms: int) -> bytes:
    """What a professional signs after comparing a colleague's safety number with them in person or by
    phone: 'this key is theirs'. Clients wrap epoch keys only for keys a signed manifest lists or such a
    statement vouches for (signed by a current member's trusted key)."""
    return LABEL_KEY_CONFIRM + confirmer_id.bytes + subject_id.bytes + subject_fingerprint + struct.pack(">Q", confirmed_ms)


def lead_appointment_statement(workspace_id: uuid.UUID, epoch: int, manifest_hash: bytes, appointee_id: uuid.UUID,
                               appointee_fingerprint: bytes, created_ms: int) -> bytes:
    """What two custodians sign (the custodian key's Ed25519 half, rebuilt offline from two shares) when a
    workspace's lead has gone and no deputy remains: 'after epoch `epoch`, whose manifest hashes to
    `manifest_hash`, this member with this key leads'. It names one manifest, so it can start one epoch
    and cannot be replayed on a later record."""
    return (LABEL_LEAD_APPOINT + workspace_id.bytes + struct.pack(">I", epoch) + manifest_hash + appointee_id.bytes
            + appointee_fingerprint + struct.pack(">Q", created_ms))


def verify_detached(sign_public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(sign_public).verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


# --- the personal state: what a professional's clients remember, encrypted and signed by them ---------


def state_key(identity: Identity, user_id: uuid.UUID) -> bytes:
    return keyed_hash32(identity.box_secret, LABEL_STATE_KEY + user_id.bytes)


def state_ad(user_id: uuid.UUID, version: int) -> bytes:
    return LABEL_STATE + user_id.bytes + struct.pack(">Q", version)


def state_signed_message(user_id: uuid.UUID, version: int, blob: bytes) -> bytes:
    return LABEL_STATE_SIG + user_id.bytes + struct.pack(">Q", version) + hash32(blob)


def state_seal(identity: Identity, user_id: uuid.UUID, version: int, plaintext: bytes,
               nonce: bytes | None = None) -> tuple[bytes, bytes]:
    """(blob, signature): nonce || XChaCha20-Poly1305(padded plaintext) under a key only this identity
    can derive, bound to the account and the version; signed with the identity key."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    sealed = b.crypto_aead_xchacha20poly1305_ietf_encrypt(pad(plaintext, STATE_PAD_BLOCK), state_ad(user_id, version),
                                                          nonce, state_key(identity, user_id))
    blob = nonce + sealed
    return blob, identity.sign(state_signed_message(user_id, version, blob))


def state_open(identity: Identity, user_id: uuid.UUID, version: int, blob: bytes, signature: bytes) -> bytes:
    if not verify_detached(identity.sign_public, state_signed_message(user_id, version, blob), signature):
        raise DecryptionError("the saved state is not signed by this identity")
    try:
        padded = b.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[NONCE_BYTES:], state_ad(user_id, version),
                                                              blob[:NONCE_BYTES], state_key(identity, user_id))
    except (CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("the saved state did not open with this identity") from exc
    return unpad(padded, STATE_PAD_BLOCK)


KIND_CODES = {
    "concern": 1, "action": 2, "update": 3, "decision": 4, "details": 5,
    "action_status": 10, "acknowledgement": 11, "edit": 12, "retraction": 13, "history_shared": 14,
    "rating_change": 15,
}
RAG_CODES = {"": 0, "green": 1, "amber": 2, "red": 3}
STATUS_CODES = {"": 0, "open": 1, "done": 2, "reopened": 3, "cancelled": 4, "accepted": 5, "confirmed": 6, "reassigned": 7}
HEADER_VERSION = 2
HEADER_BYTES = len(LABEL_POST_HEADER) + 1 + 16 + 4 + 16 + 16 + 32 + 8 + 3 + 16 * 3 + 4 + 8 + 32
# A signed time must fit a JavaScript number exactly (2**53), which also keeps it a valid date.
MAX_TIME_MS = 2**53 - 1


@dataclass(frozen=True)
class PostHeader:
    """The plaintext a post carries for the server (oversight, clocks, threading) and the context that
    binds it: all of it is the AEAD's associated data and is covered by the author's signature.

    `prev_seq` and `prev_hash` name the newest post the author had seen (its sequence number and hash):
    readers check them to find gaps, reordering and replays (docs/crypto.md, "The post chain")."""

    workspace_id: uuid.UUID
    epoch: int
    post_id: uuid.UUID
    author_id: uuid.UUID
    author_fingerprint: bytes
    client_time_ms: int
    kind: str
    parent_id: uuid.UUID = ZERO_ID
    target_id: uuid.UUID = ZERO_ID
    rag: str = ""
    owner_id: uuid.UUID = ZERO_ID
    due_day: int = 0  # days since 1970-01-01, 0 for none
    status: str = ""
    prev_seq: int = 0
    prev_hash: bytes = ZERO_HASH
    version: int = HEADER_VERSION

    def to_bytes(self) -> bytes:
        return b"".join(
            [
                LABEL_POST_HEADER,
                bytes([self.version]),
                self.workspace_id.bytes,
                struct.pack(">I", self.epoch),
                self.post_id.bytes,
                self.author_id.bytes,
                self.author_fingerprint,
                struct.pack(">Q", self.client_time_ms),
                bytes([KIND_CODES[self.kind], RAG_CODES[self.rag], STATUS_CODES[self.status]]),
                self.parent_id.bytes,
                self.target_id.bytes,
                self.owner_id.bytes,
                struct.pack(">I", self.due_day),
                struct.pack(">Q", self.prev_seq),
                self.prev_hash,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PostHeader:
        if len(data) != HEADER_BYTES or not data.startswith(LABEL_POST_HEADER):
            raise ValueError(f"a post header is {HEADER_BYTES} bytes starting with its label")
        at = len(LABEL_POST_HEADER)

        def take(n: int) -> bytes:
            nonlocal at
            chunk = data[at : at + n]
            at += n
            return chunk

        version = take(1)[0]
        if version != HEADER_VERSION:
            raise ValueError(f"unknown post header version {version}")
        workspace_id = uuid.UUID(bytes=take(16))
        (epoch,) = struct.unpack(">I", take(4))
        post_id, author_id = uuid.UUID(bytes=take(16)), uuid.UUID(bytes=take(16))
        author_fingerprint = take(32)
        (client_time_ms,) = struct.unpack(">Q", take(8))
        if client_time_ms > MAX_TIME_MS:
            raise ValueError("the post header's time is out of range")
        kind_code, rag_code, status_code = take(3)
        kinds = {v: k for k, v in KIND_CODES.items()}
        rags = {v: k for k, v in RAG_CODES.items()}
        statuses = {v: k for k, v in STATUS_CODES.items()}
        if kind_code not in kinds or rag_code not in rags or status_code not in statuses:
            raise ValueError("unknown kind, RAG or status code in the post header")
        parent_id, target_id, owner_id = (uuid.UUID(bytes=take(16)) for _ in range(3))
        (due_day,) = struct.unpack(">I", take(4))
        (prev_seq,) = struct.unpack(">Q", take(8))
        if prev_seq > MAX_TIME_MS:
            raise ValueError("the post header's previous sequence number is out of range")
        return cls(
            workspace_id=workspace_id, epoch=epoch, post_id=post_id, author_id=author_id,
            author_fingerprint=author_fingerprint, client_time_ms=client_time_ms, kind=kinds[kind_code],
            parent_id=parent_id, target_id=target_id, rag=rags[rag_code], owner_id=owner_id,
            due_day=due_day, status=statuses[status_code], prev_seq=prev_seq, prev_hash=take(32), version=version,
        )


def pad_block(kind: str) -> int:
    return DETAILS_PAD_BLOCK if kind == "details" else POST_PAD_BLOCK


def post_signed_message(header: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return LABEL_POST_SIG + hash32(header) + hash32(nonce + ciphertext)


def post_seal(
    identity: Identity, header: PostHeader, body: bytes, epoch_key: bytes, nonce: bytes | None = None
) -> tuple[bytes, bytes, bytes, bytes]:
    """Pad, encrypt and sign. Returns (header bytes, nonce, ciphertext, signature): the exact bytes to send."""
    header_bytes = header.to_bytes()
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    ciphertext = b.crypto_aead_xchacha20poly1305_ietf_encrypt(pad(body, pad_block(header.kind)), header_bytes, nonce,
                                                              epoch_key)
    return header_bytes, nonce, ciphertext, identity.sign(post_signed_message(header_bytes, nonce, ciphertext))


def post_verify(author_sign_public: bytes, header: bytes, nonce: bytes, ciphertext: bytes, signature: bytes) -> bool:
    return verify_detached(author_sign_public, post_signed_message(header, nonce, ciphertext), signature)


def post_open(header: bytes, nonce: bytes, ciphertext: bytes, epoch_key: bytes) -> bytes:
    """Decrypt and strip the padding (the header's kind says which block size)."""
    kind = PostHeader.from_bytes(header).kind
    try:
        padded = b.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, header, nonce, epoch_key)
    except (CryptoError, ValueError, TypeError) as exc:
        raise DecryptionError("the post did not open with this epoch key") from exc
    return unpad(padded, pad_block(kind))


def post_hash(header: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    """What the next post's `prev_hash` names: the exact bytes of this one."""
    return hash32(header + nonce + ciphertext)
