"""The browser's half of the shared vectors (tests/test_crypto_vectors.py is Python's): the crypto.js the
pages load, run in Chromium, must give the bytes of tests/vectors/crypto.json, and what the browser
seals with random nonces must open in PyNaCl and the other way round."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from accounts.schemas import KeyEnrolment
from tacprotocol import crypto

pytestmark = pytest.mark.browser

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "crypto.json").read_text())

# The module is imported from the page's own origin, as the pages import it. page.evaluate runs over
# CDP, which the page's Content-Security-Policy does not govern.
COMPUTE_VECTORS = """
async (vectors) => {
  const c = await import('/static/tac/crypto.js');
  await c.ready();
  const kdf = vectors.kdf.map((v) => {
    const keys = c.deriveKeys(v.password, c.fromB64(v.salt), v.opslimit, v.memlimit);
    return {
      password: v.password, salt: v.salt, opslimit: v.opslimit, memlimit: v.memlimit,
      auth_key: c.toHex(keys.authKey), wrap_key: c.toB64(keys.wrapKey),
    };
  });
  const identity = vectors.identity.map((v) => {
    const id = c.identityFromSecrets(c.fromB64(v.sign_seed), c.fromB64(v.box_secret));
    const wrapKey = c.fromB64(v.wrap_key);
    const ad = c.identityWrapAd(v.user_id, c.fromB64(v.salt), v.opslimit, v.memlimit);
    const wrapped = c.identityWrap(id, wrapKey, ad, c.fromB64(v.nonce));
    const fp = c.fingerprint(id.signPublic, id.boxPublic);
    const binding = c.identityBindingSignature(id, v.user_id);
    const opened = c.identityUnwrap(c.fromB64(v.wrapped_secret), wrapKey, ad);
    const otherUser = v.user_id.slice(0, -1) + (v.user_id.endsWith('0') ? '1' : '0');
    return {
      computed: {
        sign_seed: c.toB64(id.signSeed), box_secret: c.toB64(id.boxSecret), user_id: v.user_id,
        wrap_key: c.toB64(wrapKey), salt: v.salt, opslimit: v.opslimit, memlimit: v.memlimit,
        nonce: c.toB64(wrapped.subarray(0, c.NONCE_BYTES)),
        sign_public: c.toB64(id.signPublic), box_public: c.toB64(id.boxPublic),
        binding_signature: c.toB64(binding),
        wrap_ad: c.toB64(ad),
        wrapped_secret: c.toB64(wrapped),
        fingerprint: c.toB64(fp), safety_number: c.safetyNumber(fp),
      },
      unwrapped: {
        sign_seed: c.toB64(opened.signSeed), box_secret: c.toB64(opened.boxSecret),
        sign_public: c.toB64(opened.signPublic), box_public: c.toB64(opened.boxPublic),
      },
      binding_verifies: c.identityBindingVerify(
        v.user_id, c.fromB64(v.sign_public), c.fromB64(v.box_public), c.fromB64(v.binding_signature)),
      binding_verifies_for_another_user: c.identityBindingVerify(
        otherUser, c.fromB64(v.sign_public), c.fromB64(v.box_public), c.fromB64(v.binding_signature)),
    };
  });
  return { kdf, identity };
}
"""

BROWSER_WRAP = """
async () => {
  const c = await import('/static/tac/crypto.js');
  await c.ready();
  const userId = crypto.randomUUID();
  const opslimit = 1, memlimit = 8 * 1024 * 1024;
  const salt = c.newSalt();
  const wrapKey = c.randomBytes(c.KEY_BYTES);
  const identity = c.identityGenerate();
  const blob = c.identityWrap(identity, wrapKey, c.identityWrapAd(userId, salt, opslimit, memlimit));
  return {
    userId, opslimit, memlimit, salt: c.toB64(salt), wrapKey: c.toB64(wrapKey), blob: c.toB64(blob),
    signPublic: c.toB64(identity.signPublic), boxPublic: c.toB64(identity.boxPublic),
    binding: c.toB64(c.identityBindingSignature(identity, userId)),
    safetyNumber: c.safetyNumber(c.fingerprint(identity.signPublic, identity.boxPublic)),
  };
}
"""

BROWSER_UNWRAP = """
async ({ blob, wrapKey, ad }) => {
  const c = await import('/static/tac/crypto.js');
  await c.ready();
  const identity = c.identityUnwrap(c.fromB64(blob), c.fromB64(wrapKey), c.fromB64(ad));
  let tampered;
  try {
    const bad = c.fromB64(ad);
    bad[bad.length - 1] ^= 1;
    c.identityUnwrap(c.fromB64(blob), c.fromB64(wrapKey), bad);
    tampered = 'opened';
  } catch (error) {
    tampered = error.message;
  }
  return { signPublic: c.toB64(identity.signPublic), boxPublic: c.toB64(identity.boxPublic), tampered };
}
"""

BROWSER_ENROLMENT = """
async ({ password, userId }) => {
  const c = await import('/static/tac/crypto.js');
  await c.ready();
  const { keys, payload } = c.keyEnrolment(password, userId, 1, 8 * 1024 * 1024);
  return { payload, wrapKey: c.toB64(keys.wrapKey) };
}
"""


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def crypto_page(page):
    page.goto("/accounts/sign-in/")
    return page


def test_it_reproduces_every_shared_vector_in_chromium(crypto_page):
    result = crypto_page.evaluate(COMPUTE_VECTORS, VECTORS)

    assert result["kdf"] == VECTORS["kdf"]
    assert len(result["identity"]) == len(VECTORS["identity"])
    for vector, got in zip(VECTORS["identity"], result["identity"], strict=True):
        assert got["computed"] == vector
        assert got["unwrapped"] == {k: vector[k] for k in ("sign_seed", "box_secret", "sign_public", "box_public")}
        assert got["binding_verifies"] is True
        assert got["binding_verifies_for_another_user"] is False


def test_it_makes_wraps_that_pynacl_opens(crypto_page):
    made = crypto_page.evaluate(BROWSER_WRAP)

    user_id = uuid.UUID(made["userId"])
    ad = crypto.identity_wrap_ad(user_id, b64d(made["salt"]), made["opslimit"], made["memlimit"])
    identity = crypto.identity_unwrap(b64d(made["blob"]), b64d(made["wrapKey"]), ad)
    assert identity.sign_public == b64d(made["signPublic"])
    assert identity.box_public == b64d(made["boxPublic"])
    assert crypto.identity_binding_verify(user_id, identity.sign_public, identity.box_public, b64d(made["binding"]))
    assert crypto.safety_number(identity.fingerprint()) == made["safetyNumber"]
    with pytest.raises(crypto.DecryptionError):
        crypto.identity_unwrap(b64d(made["blob"]), b64d(made["wrapKey"]), ad[:-1] + bytes([ad[-1] ^ 1]))


def test_it_opens_wraps_that_pynacl_makes(crypto_page):
    identity = crypto.Identity.generate()
    wrap_key = crypto.new_salt() * 2
    ad = crypto.identity_wrap_ad(uuid.uuid4(), crypto.new_salt(), 1, 8 * 1024 * 1024)
    blob = crypto.identity_wrap(identity, wrap_key, ad)

    got = crypto_page.evaluate(BROWSER_UNWRAP, {"blob": b64(blob), "wrapKey": b64(wrap_key), "ad": b64(ad)})
    assert got["signPublic"] == b64(identity.sign_public)
    assert got["boxPublic"] == b64(identity.box_public)
    assert got["tampered"] == "the identity keys did not open with this password"


def test_it_makes_an_enrolment_the_server_accepts_and_python_can_unlock(crypto_page):
    """What the invitation and reset pages send parses on the server, and the Python client can open
    its sealed keys with the same password: the two halves agree on a whole account, not only parts."""
    public_id = uuid.uuid4()
    password = "a shared password for both sides"
    made = crypto_page.evaluate(BROWSER_ENROLMENT, {"password": password, "userId": str(public_id)})

    enrolment = KeyEnrolment.parse(made["payload"], public_id=public_id)
    secrets = enrolment.secrets
    keys = crypto.derive_keys(password, secrets.salt, secrets.opslimit, secrets.memlimit)
    assert keys.auth_password == secrets.auth_key
    assert keys.wrap_key == b64d(made["wrapKey"])
    ad = crypto.identity_wrap_ad(public_id, secrets.salt, secrets.opslimit, secrets.memlimit)
    identity = crypto.identity_unwrap(secrets.wrapped_secret, keys.wrap_key, ad)
    assert identity.sign_public == enrolment.identity.sign_public
    assert identity.box_public == enrolment.identity.box_public
