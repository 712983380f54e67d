"""The data controller's recovery key and the pin clients read (messaging/custodian.py): installed by
`manage.py custodian_key_create`, each new key signed by the one before unless a new pin is started, and
served as a static file beside the scripts, never as an API answer that a server could change."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import sys

import pytest
import shamir_mnemonic
from django.core.management import CommandError, call_command
from django.test import Client as HttpClient

from audit.models import AuditEvent
from messaging import custodian as custodian_pin
from messaging.custodian import Conflict, custodian_key_current, custodian_key_install
from messaging.models import CustodianKey
from tacprotocol import crypto
from tacprotocol.workspace import CustodianPin, TrustError

pytestmark = pytest.mark.django_db


@pytest.fixture
def pin_dir(settings, tmp_path):
    """A pin directory of this test's own, empty: as on a new deployment."""
    settings.TAC_PIN_DIR = tmp_path
    return tmp_path


def new_custodian() -> crypto.Identity:
    return crypto.custodian_identity(os.urandom(32))


def install(identity: crypto.Identity, label: str = "Northshire Council 2026", **options):
    return custodian_key_install(box_public=identity.box_public, sign_public=identity.sign_public, label=label,
                                 **options)


def key_id(identity: crypto.Identity) -> bytes:
    return crypto.custodian_key_id(identity.box_public, identity.sign_public)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flipped(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def pinned_ids() -> list[bytes]:
    return CustodianPin.parse(custodian_pin.pin_read()).ids


def test_it_installs_a_key_and_writes_the_pin(pin_dir):
    assert custodian_pin.pin_read() is None
    first = new_custodian()
    key, digest = install(first)
    text = (pin_dir / "custodian.json").read_text()
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    pin = CustodianPin.parse(json.loads(text))
    assert pin.current == (key_id(first), first.box_public, first.sign_public)
    assert (bytes(key.key_id), bytes(key.sign_public), key.is_current) == (key_id(first), first.sign_public, True)
    assert custodian_key_current() == key
    event = AuditEvent.objects.filter(kind="custodian.key_installed").latest("pk")
    assert (event.actor_label, event.data) == ("manage.py custodian_key_create", {
        "key_id": key_id(first).hex(), "pin_sha256": digest, "rotated": False})


def test_it_extends_the_pin_only_with_a_key_the_previous_one_signed(pin_dir):
    first, second, stranger = new_custodian(), new_custodian(), new_custodian()
    install(first, new_pin=True)
    before = (pin_dir / "custodian.json").read_text()
    with pytest.raises(Conflict, match="a custodian key is already pinned: rebuild it from two shares"):
        install(second)
    with pytest.raises(Conflict, match="the shares rebuild another key than the one pinned last"):
        install(second, previous=stranger)
    # Nothing changed: the pin, and the key the server checks manifests against.
    assert (pin_dir / "custodian.json").read_text() == before
    assert bytes(custodian_key_current().key_id) == key_id(first)

    key, digest = install(second, label="After the recovery", previous=first)
    assert pinned_ids() == [key_id(first), key_id(second)]  # the chain verifies, oldest first
    assert custodian_key_current() == key
    retired = CustodianKey.objects.get(key_id=key_id(first))
    assert not retired.is_current and retired.retired_at is not None
    event = AuditEvent.objects.filter(kind="custodian.key_installed").latest("pk")
    assert event.data == {"key_id": key_id(second).hex(), "pin_sha256": digest, "rotated": True}
    # The next key needs the second's signature, not the first's.
    with pytest.raises(Conflict, match="another key than the one pinned last"):
        install(new_custodian(), previous=first)


def test_it_starts_a_new_pin_only_when_asked(pin_dir):
    first, second = new_custodian(), new_custodian()
    install(first, new_pin=True)
    install(second, new_pin=True)
    assert pinned_ids() == [key_id(second)]


@pytest.mark.parametrize("case", ["an altered rotation signature", "no rotation signature", "another key id",
                                  "a key swapped in"])
def test_a_client_refuses_a_pin_whose_chain_does_not_verify(pin_dir, case):
    first, second = new_custodian(), new_custodian()
    install(first)
    install(second, previous=first)
    pin = custodian_pin.pin_read()
    last = pin["keys"][-1]
    if case in ("an altered rotation signature", "no rotation signature"):
        last["rotation_signature"] = None if case == "no rotation signature" else flipped(last["rotation_signature"])
    elif case == "another key id":
        last["key_id"] = key_id(first).hex()
    else:  # a server's own key, with a correct id, put where the signed one was
        mine = new_custodian()
        pin["keys"][-1] = {**last, "box_public": b64(mine.box_public), "sign_public": b64(mine.sign_public),
                           "key_id": key_id(mine).hex()}
    with pytest.raises(TrustError):
        CustodianPin.parse(pin)


def test_it_serves_the_pin_as_a_static_file(custodian):
    """Where clients read it (tacclient.client.PIN_PATH, the browser's pins), beside the scripts."""
    response = HttpClient().get("/static/tac/pins/custodian.json")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert json.loads(body) == custodian_pin.pin_read()
    assert CustodianPin.parse(json.loads(body)).current[0] == key_id(custodian)


# --- manage.py custodian_key_create ---------------------------------------------------------------------


def create(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command("custodian_key_create", *args, stdout=out)
    finally:
        sys.stdin = saved
    return out.getvalue()


def shares_in(output: str) -> list[str]:
    return re.findall(r"^Share \d:\n  (.+)$", output, re.M)


def test_the_command_installs_quietly_on_a_new_pin(pin_dir):
    out = create("--label", "Demo council", "--quiet", "--new-pin")
    digest = hashlib.sha256((pin_dir / "custodian.json").read_bytes()).hexdigest()
    assert out.strip() == (f"custodian key Demo council installed and pinned (pin sha256 {digest}); its private key "
                           f"was discarded")
    assert shares_in(out) == []
    assert custodian_key_current().label == "Demo council" and len(pinned_ids()) == 1


def test_the_command_prints_three_shares_any_two_of_which_rebuild_the_key(pin_dir):
    out = create("--label", "Northshire Council 2026")
    shares = shares_in(out)
    assert len(shares) == 3 and len(set(shares)) == 3
    assert re.search(r"its sha256 is [0-9a-f]{64}", out)
    current = custodian_key_current()
    for pair in ((0, 1), (0, 2), (1, 2)):
        rebuilt = crypto.custodian_identity(shamir_mnemonic.combine_mnemonics([shares[i] for i in pair]))
        assert key_id(rebuilt) == bytes(current.key_id)
    with pytest.raises(shamir_mnemonic.MnemonicError):
        shamir_mnemonic.combine_mnemonics(shares[:1])


def test_the_command_signs_the_next_key_with_two_shares_of_the_previous_one(pin_dir):
    shares = shares_in(create("--label", "First"))
    with pytest.raises(CommandError, match="a custodian key is already pinned"):
        create("--label", "Second", "--quiet")
    with pytest.raises(CommandError, match="the shares do not rebuild a key"):
        create("--label", "Second", "--quiet", "--previous-shares", stdin=shares[0] + "\n")
    other = shares_in(create("--label", "Elsewhere", "--new-pin"))
    with pytest.raises(CommandError, match="the shares rebuild another key than the one pinned last"):
        create("--label", "Second", "--quiet", "--previous-shares", stdin="\n".join(shares[:2]) + "\n")
    create("--label", "Second", "--quiet", "--previous-shares", stdin=f"\n  {other[2]}\n\n{other[0]}\n")
    assert [k.label for k in CustodianKey.objects.order_by("pk")] == ["First", "Elsewhere", "Second"]
    assert len(pinned_ids()) == 2 and custodian_key_current().label == "Second"
    assert AuditEvent.objects.filter(kind="custodian.key_installed").latest("pk").data["rotated"] is True
