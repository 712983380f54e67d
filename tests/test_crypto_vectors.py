"""Python's half of the shared vectors; tests/browser/test_crypto_vectors.py is the browser's."""

import base64
import json
import uuid
from pathlib import Path

import pytest

from tacprotocol import crypto
from tacprotocol.vectors import build

VECTORS = json.loads((Path(__file__).parent / "vectors" / "crypto.json").read_text())


def test_it_reproduces_the_committed_vectors():
    fresh = build()
    # Sealed boxes use a random ephemeral key: that one vector is checked by opening it instead.
    fresh["workspace"].pop("epoch_wrap_for_reader")
    committed = json.loads(json.dumps(VECTORS))
    committed["workspace"].pop("epoch_wrap_for_reader")
    assert fresh == committed


@pytest.mark.parametrize("vector", VECTORS["identity"], ids=lambda v: v["user_id"])
def test_it_opens_the_wrapped_secret_and_verifies_the_binding(vector):
    d = base64.b64decode
    user_id = uuid.UUID(vector["user_id"])
    identity = crypto.identity_unwrap(d(vector["wrapped_secret"]), d(vector["wrap_key"]), d(vector["wrap_ad"]))
    assert identity.sign_seed == d(vector["sign_seed"])
    assert crypto.identity_binding_verify(user_id, d(vector["sign_public"]), d(vector["box_public"]),
                                          d(vector["binding_signature"]))
    other = uuid.UUID(int=user_id.int ^ 1)
    assert not crypto.identity_binding_verify(other, d(vector["sign_public"]), d(vector["box_public"]),
                                              d(vector["binding_signature"]))


def test_it_refuses_to_open_with_other_associated_data():
    v = VECTORS["identity"][0]
    d = base64.b64decode
    ad = bytearray(d(v["wrap_ad"]))
    ad[-1] ^= 1  # another memlimit: a server quietly weakening the KDF cost is caught
    with pytest.raises(crypto.DecryptionError):
        crypto.identity_unwrap(d(v["wrapped_secret"]), d(v["wrap_key"]), bytes(ad))


def test_it_opens_the_committed_epoch_wrap_and_post():
    w = VECTORS["workspace"]
    d = base64.b64decode
    reader = crypto.Identity(sign_seed=d(w["reader_sign_seed"]), box_secret=d(w["reader_box_secret"]))
    ws = uuid.UUID(w["workspace_id"])
    key = crypto.epoch_key_unwrap(d(w["epoch_wrap_for_reader"]), reader, ws, w["epoch"])
    assert key == d(w["epoch_key"])
    with pytest.raises(crypto.DecryptionError):
        crypto.epoch_key_unwrap(d(w["epoch_wrap_for_reader"]), reader, ws, w["epoch"] + 1)
    p = w["post"]
    author = crypto.Identity(sign_seed=d(w["author_sign_seed"]), box_secret=d(w["author_box_secret"]))
    assert crypto.post_verify(author.sign_public, d(p["header"]), d(p["nonce"]), d(p["ciphertext"]), d(p["signature"]))
    assert crypto.post_open(d(p["header"]), d(p["nonce"]), d(p["ciphertext"]), key) == p["body"].encode()
    header = crypto.PostHeader.from_bytes(d(p["header"]))
    assert (header.kind, header.rag, header.status, header.due_day) == ("action", "amber", "open", 20_500)


def test_it_opens_the_committed_rating_change_as_kind_15_with_the_new_rating():
    w = VECTORS["workspace"]
    r = w["rating_change"]
    d = base64.b64decode
    author = crypto.Identity(sign_seed=d(w["author_sign_seed"]), box_secret=d(w["author_box_secret"]))
    header_bytes = d(r["header"])
    # kind, RAG and status are one byte each after the label, version, ids, fingerprint and time.
    at = len(crypto.LABEL_POST_HEADER) + 1 + 16 + 4 + 16 + 16 + 32 + 8
    assert header_bytes[at : at + 3] == bytes([15, 3, 0])
    header = crypto.PostHeader.from_bytes(header_bytes)
    assert (header.kind, header.rag, header.status, str(header.target_id), header.owner_id, header.due_day) == (
        "rating_change", "red", "", r["target_id"], crypto.ZERO_ID, 0)
    assert crypto.post_verify(author.sign_public, header_bytes, d(r["nonce"]), d(r["ciphertext"]), d(r["signature"]))
    assert crypto.post_open(header_bytes, d(r["nonce"]), d(r["ciphertext"]), d(w["epoch_key"])) == r["body"].encode()


def test_it_detects_a_tampered_post():
    p = VECTORS["workspace"]["post"]
    d = base64.b64decode
    author = crypto.Identity(sign_seed=d(VECTORS["workspace"]["author_sign_seed"]),
                             box_secret=d(VECTORS["workspace"]["author_box_secret"]))
    header = bytearray(d(p["header"]))
    header[-48] ^= 1  # the due date: a server moving a deadline is caught by the signature
    assert not crypto.post_verify(author.sign_public, bytes(header), d(p["nonce"]), d(p["ciphertext"]), d(p["signature"]))
    with pytest.raises(crypto.DecryptionError):
        crypto.post_open(bytes(header), d(p["nonce"]), d(p["ciphertext"]), d(VECTORS["workspace"]["epoch_key"]))


def test_the_manifest_lists_both_public_keys_and_commits_to_the_epoch_key():
    w = VECTORS["workspace"]
    d = base64.b64decode
    manifest = crypto.manifest_parse(d(w["manifest"]["bytes"]))
    assert sorted((str(m.public_id), m.role) for m in manifest.members) == sorted(
        (m["public_id"], m["role"]) for m in w["manifest"]["members"])
    assert manifest.key_commitment == crypto.epoch_key_commitment(uuid.UUID(w["workspace_id"]), 7, d(w["epoch_key"]))
    assert manifest.key_commitment != crypto.epoch_key_commitment(uuid.UUID(w["workspace_id"]), 7, bytes(32))
    author = crypto.Identity(sign_seed=d(w["author_sign_seed"]), box_secret=d(w["author_box_secret"]))
    assert crypto.verify_detached(author.sign_public, d(w["manifest"]["bytes"]), d(w["manifest"]["signature"]))


def test_the_custodian_key_pair_comes_from_one_secret_and_signs_its_successor():
    w = VECTORS["workspace"]
    d = base64.b64decode
    custodian = crypto.custodian_identity(d(w["custodian_secret"]))
    assert (custodian.box_public, custodian.sign_public) == (d(w["custodian_box_public"]), d(w["custodian_sign_public"]))
    r = w["custodian_rotation"]
    statement = crypto.custodian_rotation_statement(d(w["custodian_id"]), d(r["next_box_public"]),
                                                    d(r["next_sign_public"]), r["created_ms"])
    assert statement == d(r["statement"])
    assert crypto.verify_detached(custodian.sign_public, statement, d(r["signature"]))


def test_the_saved_state_opens_only_for_its_owner_and_version():
    w = VECTORS["workspace"]
    d = base64.b64decode
    reader = crypto.Identity(sign_seed=d(w["reader_sign_seed"]), box_secret=d(w["reader_box_secret"]))
    reader_id, st = uuid.UUID(w["reader_id"]), w["state"]
    assert crypto.state_open(reader, reader_id, st["version"], d(st["blob"]), d(st["signature"])) == st["plaintext"].encode()
    with pytest.raises(crypto.DecryptionError):
        crypto.state_open(reader, reader_id, st["version"] - 1, d(st["blob"]), d(st["signature"]))
    author = crypto.Identity(sign_seed=d(w["author_sign_seed"]), box_secret=d(w["author_box_secret"]))
    with pytest.raises(crypto.DecryptionError):
        crypto.state_open(author, reader_id, st["version"], d(st["blob"]), d(st["signature"]))


@pytest.mark.parametrize("case", VECTORS["workspace"]["padding"], ids=lambda c: f"{len(c['data'])}-{c['block']}")
def test_padding_round_trips(case):
    d = base64.b64decode
    assert len(d(case["padded"])) % case["block"] == 0
    assert crypto.unpad(d(case["padded"]), case["block"]) == d(case["data"])


def test_the_lead_appointment_is_signed_by_the_custodian_key_for_one_manifest():
    w = VECTORS["workspace"]
    d = base64.b64decode
    a = w["lead_appointment"]
    reader = crypto.Identity(sign_seed=d(w["reader_sign_seed"]), box_secret=d(w["reader_box_secret"]))
    statement = crypto.lead_appointment_statement(uuid.UUID(w["workspace_id"]), a["epoch"],
                                                  crypto.hash32(d(w["manifest"]["bytes"])), uuid.UUID(a["appointee"]),
                                                  reader.fingerprint(), a["created_ms"])
    assert statement == d(a["statement"])
    assert crypto.verify_detached(d(w["custodian_sign_public"]), statement, d(a["signature"]))
    # Another epoch's manifest: the same signature does not carry over.
    other = crypto.lead_appointment_statement(uuid.UUID(w["workspace_id"]), a["epoch"], bytes(32),
                                              uuid.UUID(a["appointee"]), reader.fingerprint(), a["created_ms"])
    assert not crypto.verify_detached(d(w["custodian_sign_public"]), other, d(a["signature"]))


def test_a_manifest_names_a_deputy_with_role_code_4():
    w = VECTORS["workspace"]
    d = base64.b64decode
    dm = w["deputy_manifest"]
    manifest = crypto.manifest_parse(d(dm["bytes"]))
    assert (manifest.epoch, manifest.prev_manifest_hash) == (dm["epoch"], d(dm["prev_manifest_hash"]))
    assert sorted((str(m.public_id), m.role) for m in manifest.members) == sorted(
        (m["public_id"], m["role"]) for m in dm["members"])
    assert [str(p) for p in manifest.deputy_ids] == [w["reader_id"]]
    assert crypto.ROLE_CODES["deputy"] == 4
