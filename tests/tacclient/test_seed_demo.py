"""`manage.py seed_demo` (what `make run` runs): demo workspaces of real ciphertext, made once."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command

from accounts.models import Professional
from messaging import custodian as custodian_pin
from messaging.models import CustodianKey, EpochWrap, Post, Workspace
from tacclient.workspace import CustodianPin
from tests.conftest import Persona

from .conftest import totp_reusable

pytestmark = pytest.mark.django_db(transaction=True)

CONCERN = "Leo has missed his 2-year review"


def seed(path) -> str:
    out = io.StringIO()
    call_command("seed_demo", credentials=str(path), stdout=out)
    return out.getvalue()


def test_it_seeds_encrypted_workspaces_once(tmp_path, live_server_url, connect):
    creds = tmp_path / "creds"
    first = seed(creds)
    assert "Demo custodian key installed; its private key was discarded" in first
    posts = {w.reference: w.posts.count() for w in Workspace.objects.all()}
    assert len(posts) == 2 and all(n >= 5 for n in posts.values())

    second = seed(creds)
    assert "custodian key installed" not in second and "(new)" not in second
    assert {w.reference: w.posts.count() for w in Workspace.objects.all()} == posts
    assert CustodianKey.objects.count() == 1
    # ... and pinned, where clients read it.
    assert CustodianPin.parse(custodian_pin.pin_read()).current[0] == bytes(CustodianKey.objects.get().key_id)

    # Ciphertext only: no words of the demo anywhere in what the server stores for a post.
    for row in Post.objects.all():
        stored = b"".join(bytes(getattr(row, f)) for f in ("header", "nonce", "ciphertext", "signature"))
        assert CONCERN.encode() not in stored and b"Leo Marsh" not in stored
    # Every epoch is wrapped for the custodian too.
    assert all(EpochWrap.objects.filter(epoch__workspace=w, custodian_key__isnull=False).count() == w.current_epoch
               for w in Workspace.objects.all())

    # The lead's client signs in with the stored password and reads it all, verified and decrypted.
    password = json.loads(creds.read_text())["sam.lead@demo.tac"]["password"]
    lead = Persona(user=Professional.objects.get(email="sam.lead@demo.tac"), password=password)
    client = connect(lead)
    totp_reusable(lead)
    [leo] = [w for w in client.workspaces() if w["current_rag"] == "red"]
    thread = client.read(leo["reference"])
    kinds = [p.kind for p in thread]
    assert kinds[:3] == ["details", "details", "concern"]
    assert {"action", "action_status", "acknowledgement", "update"} <= set(kinds)
    assert CONCERN in thread[2].body["detail"] and thread[2].rag == "red"
    assert thread[1].body == thread[0].body and thread[1].epoch == 2  # re-posted for the admitted members
    # One action overdue, one done.
    actions = {p.post_id: p for p in thread if p.kind == "action"}
    done = {p.target for p in thread if p.kind == "action_status" and p.status == "done"}
    assert len(done) == 1 and done <= set(actions)
    assert any(p.due is not None and p.post_id not in done and p.due < dt.date.today() for p in actions.values())
