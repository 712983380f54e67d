"""My work (issue 10 item 2): what is waiting for a professional across their workspaces, from metadata
only: actions they own (overdue first, then by due date), actions waiting for their acceptance, red and
amber concerns from other agencies that nobody at their agency has acknowledged, invitations."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from messaging import selectors, services
from tests.conftest import sign_in
from tests.messaging.factories import Client, join
from tests.messaging.test_api import API

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(lead, gp, manager, custodian):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    return workspace, lead_client, gp_client


def status(client, workspace, action, value):
    return client.post(workspace, "action_status", {"note": value}, target=action.post_id, status=value).post


def test_it_lists_my_actions_overdue_first_then_by_due_date(team, monkeypatch):
    workspace, lead_client, gp_client = team
    today = timezone.localdate()
    later = lead_client.post(workspace, "action", {"title": "b"}, owner=gp_client.user.public_id,
                             due=today + dt.timedelta(days=20)).post
    soon = lead_client.post(workspace, "action", {"title": "a"}, owner=gp_client.user.public_id,
                            due=today + dt.timedelta(days=3)).post
    undated = lead_client.post(workspace, "action", {"title": "c"}, owner=gp_client.user.public_id).post
    late = lead_client.post(workspace, "action", {"title": "d"}, owner=gp_client.user.public_id, due=today).post
    done = lead_client.post(workspace, "action", {"title": "e"}, owner=gp_client.user.public_id, due=today).post
    for action in (later, soon, late, done):
        status(gp_client, workspace, action, "accepted")
    status(gp_client, workspace, done, "done")
    lead_client.post(workspace, "action", {"title": "mine"}, owner=lead_client.user.public_id)

    monkeypatch.setattr(timezone, "localdate", lambda value=None: today + dt.timedelta(days=1))
    work = selectors.my_work(professional=gp_client.user)
    assert [a["seq"] for a in work["actions"]] == [late.seq, soon.seq, later.seq]
    assert [(a["overdue"], a["due_soon"]) for a in work["actions"]] == [(True, False), (False, True), (False, False)]
    assert [a["seq"] for a in work["to_accept"]] == [undated.seq]
    assert work["actions"][0] == {"workspace": str(workspace.public_id), "reference": workspace.reference,
                                  "action": str(late.post_id), "seq": late.seq, "status": "accepted",
                                  "due": today.isoformat(), "overdue": True, "due_soon": False}


def test_it_lists_red_and_amber_concerns_until_someone_at_my_agency_acknowledges(team, manager, custodian):
    workspace, lead_client, gp_client = team
    manager_client = Client(manager, custodian)  # the lead's agency (children's social care)
    join(lead_client, workspace, manager_client)
    red = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "x"}, rag="red").post
    amber = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "y"}, rag="amber").post
    gp_client.post(workspace, "concern", {"category": "neglect", "detail": "z"}, rag="green")
    own = lead_client.post(workspace, "concern", {"category": "neglect", "detail": "ours"}, rag="red").post
    retracted = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "oops"}, rag="red").post
    gp_client.post(workspace, "retraction", {"reason": "wrong child"}, target=retracted.post_id)

    assert [c["post"] for c in selectors.my_work(professional=lead_client.user)["concerns"]] == [
        str(red.post_id), str(amber.post_id)]
    assert str(own.post_id) in [c["post"] for c in selectors.my_work(professional=gp_client.user)["concerns"]]
    manager_client.post(workspace, "acknowledgement", {}, target=red.post_id)  # a colleague at my agency
    assert [c["post"] for c in selectors.my_work(professional=lead_client.user)["concerns"]] == [str(amber.post_id)]


def test_it_counts_invitations_and_forgets_a_workspace_i_left(team, outsider, custodian, capture_events):
    workspace, lead_client, gp_client = team
    lead_client.post(workspace, "action", {"title": "x"}, owner=gp_client.user.public_id)
    other = Client(outsider, custodian).create_workspace({"name": "Jo"})
    Client(outsider, custodian).invite(other, gp_client.user)
    work = selectors.my_work(professional=gp_client.user)
    assert (len(work["to_accept"]), work["invitations"]) == (1, 1)
    services.membership_leave(professional=gp_client.user, workspace=workspace)
    assert selectors.my_work(professional=gp_client.user)["to_accept"] == []


def test_it_answers_my_work_to_me_alone_and_never_with_content(team, outsider):
    workspace, lead_client, gp_client = team
    lead_client.post(workspace, "action", {"title": "Secret title"}, owner=gp_client.user.public_id)
    answer = sign_in(HttpClient(), gp_client.persona).get(f"{API}/me/work")
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert len(answer.json()["to_accept"]) == 1 and b"Secret" not in answer.content
    assert sign_in(HttpClient(), outsider).get(f"{API}/me/work").json()["to_accept"] == []
    assert HttpClient().get(f"{API}/me/work").status_code == 401
