"""Lead continuity through the Python client and `tac`, against the live server: the lead is asked for a
deputy once the team reaches three, names one, is offboarded; the deputy's client takes the lead in the
next epoch and the team carries on. With no deputy, `tac` says the workspace is frozen and why."""

from __future__ import annotations

import pytest

from accounts.services import professional_offboard
from messaging.models import Epoch, Workspace
from tacprotocol import crypto

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin(make_persona):
    return make_persona("admin@csc.example", "csc", full_name="Ada Admin", is_agency_admin=True)


@pytest.fixture
def team_of_three(connect, lead, gp, outsider, custodian):
    sam, priya, olly = connect(lead), connect(gp), connect(outsider)
    created = sam.create_workspace({"name": "Noah Example"})
    for persona, member in ((gp, priya), (outsider, olly)):
        sam.invite(created["id"], persona.user.email)
        member.accept(created["id"])
    sam.rotate(created["id"], admit=[priya.me, olly.me])
    return created["reference"], sam, priya, olly


def test_a_deputy_carries_the_workspace_on_after_the_lead_is_offboarded(tac, team_of_three, lead, gp, outsider, admin):
    reference, sam, priya, olly = team_of_three
    code, out, _ = tac(lead, "team", reference)
    assert code == 0 and "no deputy: name one (`tac deputies`)" in out
    code, out, _ = tac(lead, "deputies", reference, gp.user.email)
    assert code == 0 and out.startswith(f"Deputies: {gp.user.email}. Keys renewed: epoch 3.")
    code, out, _ = tac(lead, "team", reference)
    assert "Dr Priya GP              deputy" in out and "no deputy" not in out
    assert tac(outsider, "deputies", reference)[0] == 1  # not the lead: refused before anything is signed

    professional_offboard(admin=admin.user, professional=lead.user)
    # Only the server says Sam left: his deputy takes the lead when she says so.
    code, _, err = tac(gp, "renew-keys", reference)
    assert code == 2 and "Team Around the Child says Sam Lead left on " in err and "--take-over" in err
    assert Workspace.objects.get(reference=reference).current_epoch == 3
    code, out, _ = tac(gp, "renew-keys", reference, "--take-over")
    assert (code, out) == (0, "Keys renewed: epoch 4, 2 members; you are the lead.\n")
    epoch = Epoch.objects.get(workspace__reference=reference, number=4)
    manifest = crypto.manifest_parse(bytes(epoch.manifest))
    assert epoch.signed_by == gp.user and manifest.lead_ids == [gp.user.public_id]
    assert tac(outsider, "update", reference, "Carrying on")[:2] == (0, "Update posted as #5.\n")
    code, out, _ = tac(outsider, "show", reference)
    assert code == 0 and "lead Dr Priya GP" in out.splitlines()[0] and "Carrying on" in out
    assert olly.workspace(reference).keys.signed_by[4] == ("deputy", gp.user.public_id)


def test_tac_says_why_a_workspace_is_frozen(tac, team_of_three, lead, outsider, admin):
    reference, *_ = team_of_three
    professional_offboard(admin=admin.user, professional=lead.user)
    code, out, _ = tac(outsider, "show", reference)
    assert code == 0
    assert "FROZEN: the lead professional, Sam Lead, left on " in out
    assert "Two of the site's key custodians can appoint a new lead" in out
    code, _, err = tac(outsider, "renew-keys", reference)
    assert code == 1 and "only the lead professional or a deputy" in err
    assert Workspace.objects.get(reference=reference).current_epoch == 2


def test_tac_does_not_count_oversight_when_asking_for_a_deputy(tac, connect, lead, gp, manager, custodian):
    """As the page counts the team: a lead, a GP and a manager with oversight is a team of two."""
    sam, priya, morgan = connect(lead), connect(gp), connect(manager)
    created = sam.create_workspace({"name": "Ivy Example"})
    sam.invite(created["id"], gp.user.email)
    sam.invite(created["id"], manager.user.email, role="oversight")
    priya.accept(created["id"])
    morgan.accept(created["id"])
    sam.rotate(created["id"], admit=[priya.me, morgan.me])
    code, out, _ = tac(lead, "team", created["reference"])
    assert code == 0 and "oversight" in out and "no deputy" not in out


def test_tac_cleans_the_servers_words_about_a_frozen_workspace():
    """The lead's name and the date come from the server: no terminal escapes reach the screen, and a
    `continuity` that is not an object is not taken as frozen (it printed 'unexpected error' before)."""
    from tacclient.cli import frozen, frozen_sentence

    sentence = frozen_sentence({"state": "frozen", "lead_name": "Sam\x1b]0;pwned\x07", "left_at": "\x1b[2J2026-12-01"})
    assert "\x1b" not in sentence and "\x07" not in sentence and sentence.startswith("FROZEN: the lead professional, Sam")
    assert frozen_sentence({"state": "frozen", "lead_name": "Sam", "left_at": 20261201}).startswith(
        "FROZEN: the lead professional, Sam, left on 20261201 ")
    assert not frozen({"continuity": "frozen"}) and not frozen({}) and frozen({"continuity": {"state": "frozen"}})
