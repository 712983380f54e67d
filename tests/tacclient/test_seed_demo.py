"""`manage.py seed_demo` (what `make run` runs): demo workspaces of real ciphertext, made once."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Agency, Professional
from demo.management.commands.seed_demo import DEMO_NAMESPACE, DEMO_WORKSPACES, PEOPLE, SAM
from messaging import custodian as custodian_pin
from messaging.models import (
    ActionSummary,
    ConcernAcknowledgement,
    ConcernSummary,
    CustodianKey,
    EpochWrap,
    Post,
    Workspace,
)
from notifications.models import Notification
from tacprotocol.workspace import CustodianPin
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
    assert len(posts) == len(DEMO_WORKSPACES) and all(n >= 5 for n in posts.values())

    second = seed(creds)
    assert "custodian key installed" not in second and "(new)" not in second
    assert {w.reference: w.posts.count() for w in Workspace.objects.all()} == posts
    assert Professional.objects.count() == len(PEOPLE)
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
    [leo] = [w for w in client.workspaces() if w["id"] == str(uuid.uuid5(DEMO_NAMESPACE, "demo-workspace-leo"))]
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


def test_it_seeds_a_past_for_the_managers_dashboards(tmp_path, live_server_url, connect):
    creds = tmp_path / "creds"
    out = seed(creds)
    stored = json.loads(creds.read_text())

    # A manager at every agency, and the partnership's oversight lead, each with a printed login.
    for agency in Agency.objects.exclude(kind=Agency.Kind.OTHER):
        assert agency.professionals.filter(role=Professional.Role.MANAGER).exists(), agency
    partnership = Professional.objects.get(role=Professional.Role.PARTNERSHIP)
    for person in Professional.objects.filter(role__in=[Professional.Role.MANAGER, Professional.Role.PARTNERSHIP]):
        assert set(stored[person.email]) == {"password", "totp_secret"}
        assert f"email {person.email}   password {stored[person.email]['password']}" in out
    assert partnership.email in out

    # Twelve weeks of actions: done on time, done late, overdue now, accepted and waiting for acceptance.
    today = timezone.localdate()
    actions = list(ActionSummary.objects.all())
    done = [a for a in actions if a.done_at is not None]
    assert any(timezone.localdate(a.done_at) <= a.due_date for a in done)
    assert any(timezone.localdate(a.done_at) > a.due_date for a in done)
    assert any(a.status in ("open", "accepted") and a.due_date < today for a in actions)
    assert any(a.status == "accepted" and a.due_date >= today for a in actions)
    assert any(a.status == "open" and a.due_date >= today for a in actions)
    assert {a.status for a in actions} >= {"open", "accepted", "done", "confirmed", "cancelled"}
    assert min(a.created_at for a in actions) < timezone.now() - dt.timedelta(weeks=11)
    assert len({a.owner_agency_id for a in actions}) == 5
    # Overdue actions were escalated to their owners' managers by the clock job.
    escalated = Notification.objects.filter(kind=Notification.Kind.ACTION_ESCALATED)
    assert set(escalated.values_list("recipient__role", flat=True)) == {Professional.Role.MANAGER}

    # Red concerns acknowledged by other agencies, after minutes, hours or days.
    red_acks = ConcernAcknowledgement.objects.filter(rag="red")
    assert red_acks.values("agency").distinct().count() >= 3
    assert min(a.seconds for a in red_acks) < 3600 < 24 * 3600 < max(a.seconds for a in red_acks)

    # Last night's red concern: the lead never answered it, its 4 hours ran out, and the clock job run at the
    # end of the seed recorded the breach and told the lead and the lead's manager.
    [breached] = ConcernSummary.objects.filter(rag="red", responded_at__isnull=True, breached_at__isnull=False)
    assert breached.due_at == breached.clock_started_at + dt.timedelta(hours=4) < timezone.now()
    assert breached.workspace.lead.email == SAM
    told = Notification.objects.filter(kind=Notification.Kind.CONCERN_BREACHED, workspace=breached.workspace)
    assert set(told.values_list("recipient__email", flat=True)) == {SAM, "morgan.manager@demo.tac"}
    assert told.filter(read_at__isnull=True).count() == 2
    # ... and an amber concern answered only after its clock had run out, weeks ago.
    assert ConcernSummary.objects.filter(rag="amber", breach_count=1, responded_at__isnull=False).exists()

    # The longest story is verified and read whole by its lead's client: keys renewed on the 30-day schedule,
    # every post signed at its own moment.
    password = stored[SAM]["password"]
    lead = Persona(user=Professional.objects.get(email=SAM), password=password)
    client = connect(lead)
    totp_reusable(lead)
    mia = Workspace.objects.get(public_id=uuid.uuid5(DEMO_NAMESPACE, "demo-workspace-mia"))
    thread = client.read(mia.reference)
    assert len(thread) == mia.posts.count() and mia.current_epoch >= 4
    signed = [p.signed_time for p in thread]
    assert signed == sorted(signed) and signed[0] < timezone.now() - dt.timedelta(weeks=11)
    assert [p.kind for p in thread].count("details") == mia.current_epoch  # the first, then one per new epoch
