"""Python's half of the shared vectors; tests/browser/test_crypto_vectors.py is the browser's."""

import base64
import json
import uuid
from pathlib import Path

import pytest

from tacclient import crypto
from tacclient.vectors import build

VECTORS = json.loads((Path(__file__).parent / "vectors" / "crypto.json").read_text())


def test_it_reproduces_the_committed_vectors():
    assert build() == VECTORS


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
