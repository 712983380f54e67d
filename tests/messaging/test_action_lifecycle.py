"""An action's life on the server (tacprotocol/actions.py's rule, issue 10 item 1): open, accepted by its
owner, done, confirmed by the lead or reopened; reassigned by the lead to a member who accepts; cancelled.
Every change is a signed post, audited, and kept in the action's summary row in the same transaction;
the server says which actions are overdue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from messaging import selectors
from messaging.custodian import Conflict
from messaging.models import ActionSummary, Post
from tacprotocol import actions
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(lead, gp, manager, custodian):
    lead_client, gp_client, manager_client = (Client(p, custodian) for p in (lead, gp, manager))
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client, manager_client)
    return workspace, lead_client, gp_client, manager_client


def change(client: Client, workspace, action: Post, status: str, **fields):
    return client.post(workspace, "action_status", {"note": f"{status} by {client.user.full_name}"},
                       target=action.post_id, status=status, **fields).post


def summary(action: Post) -> ActionSummary:
    return ActionSummary.objects.get(action=action)


def test_it_walks_an_action_from_open_to_confirmed_and_keeps_its_summary(team):
    workspace, lead_client, gp_client, _ = team
    due = timezone.localdate() + dt.timedelta(days=3)
    action = lead_client.post(workspace, "action", {"title": "Medical"}, owner=gp_client.user.public_id, due=due,
                              status="open").post
    assert (summary(action).status, summary(action).owner, summary(action).due_date) == ("open", gp_client.user, due)

    with pytest.raises(PermissionDenied, match="only its owner can make an action accepted"):
        change(lead_client, workspace, action, "accepted")
    change(gp_client, workspace, action, "accepted")
    assert summary(action).status == "accepted" and summary(action).accepted_at is not None
    with pytest.raises(PermissionDenied, match="only the lead professional can make an action confirmed"):
        change(gp_client, workspace, action, "confirmed")
    with pytest.raises(Conflict, match="an action that is accepted cannot be confirmed"):
        change(lead_client, workspace, action, "confirmed")
    change(gp_client, workspace, action, "done")
    assert summary(action).status == "done" and summary(action).done_at is not None
    change(lead_client, workspace, action, "confirmed")
    final = summary(action)
    assert final.status == "confirmed" and final.confirmed_at is not None
    for who, status, fields in ((lead_client, "done", {}), (lead_client, "reopened", {}), (gp_client, "cancelled", {}),
                                (gp_client, "accepted", {}),
                                (lead_client, "reassigned", {"owner": lead_client.user.public_id})):
        with pytest.raises(Conflict, match=f"an action that is confirmed cannot be {status}"):
            change(who, workspace, action, status, **fields)
    assert summary(action).status == "confirmed"
    audited = list(AuditEvent.objects.filter(kind="post.created", data__kind="action_status")
                   .values_list("data__status", flat=True).order_by("pk"))
    assert audited == ["accepted", "done", "confirmed"]


def test_it_reopens_a_done_action_for_its_owner(team):
    workspace, lead_client, gp_client, _ = team
    action = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id).post
    change(gp_client, workspace, action, "done")
    change(lead_client, workspace, action, "reopened")
    assert (summary(action).status, summary(action).done_at) == ("reopened", None)
    change(gp_client, workspace, action, "done")
    assert summary(action).status == "done"


def test_it_reassigns_only_by_the_lead_and_to_a_member_who_then_accepts(team, outsider):
    workspace, lead_client, gp_client, manager_client = team
    action = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id).post
    change(gp_client, workspace, action, "accepted")
    with pytest.raises(PermissionDenied, match="only the lead professional can make an action reassigned"):
        change(gp_client, workspace, action, "reassigned", owner=manager_client.user.public_id)
    with pytest.raises(ValidationError, match="a reassignment names a new owner who is a member"):
        change(lead_client, workspace, action, "reassigned", owner=outsider.user.public_id)
    with pytest.raises(ValidationError, match="a reassignment names a new owner"):
        change(lead_client, workspace, action, "reassigned")
    with pytest.raises(Conflict, match="someone other than the current owner"):
        change(lead_client, workspace, action, "reassigned", owner=gp_client.user.public_id)
    moved = change(lead_client, workspace, action, "reassigned", owner=manager_client.user.public_id)
    assert moved.owner == manager_client.user
    now = summary(action)
    assert (now.status, now.owner, now.accepted_at) == ("open", manager_client.user, None)
    with pytest.raises(PermissionDenied, match="only its owner can make an action accepted"):
        change(gp_client, workspace, action, "accepted")  # the former owner
    change(manager_client, workspace, action, "accepted")
    assert summary(action).status == "accepted"
    with pytest.raises(ValidationError, match="only actions have an owner"):
        change(lead_client, workspace, action, "done", owner=gp_client.user.public_id)


def test_it_cancels_by_owner_or_lead_and_stops_a_retracted_action(team):
    workspace, lead_client, gp_client, manager_client = team
    action = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id).post
    with pytest.raises(PermissionDenied, match="only its owner or the lead professional can make an action cancelled"):
        change(manager_client, workspace, action, "cancelled")
    change(gp_client, workspace, action, "cancelled")
    assert summary(action).status == "cancelled"
    other = lead_client.post(workspace, "action", {"title": "Call"}, owner=gp_client.user.public_id).post
    lead_client.post(workspace, "retraction", {"reason": "posted twice"}, target=other.post_id)
    assert summary(other).retracted
    with pytest.raises(Conflict, match="retracted"):
        change(gp_client, workspace, other, "done")


def test_it_says_which_actions_are_overdue(team, monkeypatch):
    workspace, lead_client, gp_client, _ = team
    today = timezone.localdate()
    late = lead_client.post(workspace, "action", {"title": "Late"}, owner=gp_client.user.public_id,
                            due=today).post
    done = lead_client.post(workspace, "action", {"title": "Done"}, owner=gp_client.user.public_id, due=today).post
    change(gp_client, workspace, done, "done")
    later = lead_client.post(workspace, "action", {"title": "Later"}, owner=gp_client.user.public_id,
                             due=today + dt.timedelta(days=5)).post
    undated = lead_client.post(workspace, "action", {"title": "Whenever"}, owner=gp_client.user.public_id).post
    assert [a["overdue"] for a in selectors.action_list(workspace=workspace)] == [False, False, False, False]

    monkeypatch.setattr(timezone, "localdate", lambda value=None: today + dt.timedelta(days=2))
    listed = {a["action"]: a for a in selectors.action_list(workspace=workspace)}
    assert {k: v["overdue"] for k, v in listed.items()} == {
        str(late.post_id): True, str(done.post_id): False, str(later.post_id): False, str(undated.post_id): False}
    assert listed[str(late.post_id)] == {
        "action": str(late.post_id), "seq": late.seq, "owner": str(gp_client.user.public_id), "status": "open",
        "due": today.isoformat(), "overdue": True, "accepted_at": None, "done_at": None, "confirmed_at": None,
        "updated_at": listed[str(late.post_id)]["updated_at"]}


@pytest.mark.parametrize("start", actions.STATES)
@pytest.mark.parametrize("status", actions.CHANGES)
def test_the_rule_allows_exactly_what_its_table_says(start, status):
    owner, lead, other, new = "owner", "lead", "other", "new"
    sources, who = actions.RULES[status]
    for author in (owner, lead, other):
        after, why = actions.change(actions.ActionState(start, owner), status=status, author=author, lead=lead,
                                    new_owner=new if status == "reassigned" else None)
        allowed = start in sources and (("owner" in who and author == owner) or ("lead" in who and author == lead))
        assert (after is not None) == allowed, (start, status, author, why)
        if allowed:
            assert after == (actions.ActionState("open", new) if status == "reassigned"
                             else actions.ActionState(status, owner))


def test_it_lists_actions_to_active_members_only(team, outsider, custodian):
    from django.test import Client as HttpClient

    from tests.conftest import sign_in
    from tests.messaging.test_api import API

    workspace, lead_client, gp_client, _ = team
    action = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id).post
    path = f"{API}/workspaces/{workspace.public_id}/actions"
    answer = sign_in(HttpClient(), gp_client.persona).get(path)
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert [(a["action"], a["status"], a["overdue"]) for a in answer.json()["actions"]] == [
        (str(action.post_id), "open", False)]
    assert b"Visit" not in answer.content  # metadata only: the title is in the encrypted body
    assert sign_in(HttpClient(), outsider).get(path).status_code == 404
    invited_lead = Client(outsider, custodian)
    lead_client.invite(workspace, invited_lead.user)
    assert sign_in(HttpClient(), outsider).get(path).status_code == 404
    assert HttpClient().get(path).status_code == 401


def test_the_migration_summarises_actions_stored_before_summaries(team):
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("messaging.migrations.0004_action_summary").summarise_existing_actions
    workspace, lead_client, gp_client, _ = team
    done = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id).post
    change(gp_client, workspace, done, "done")
    reopened = lead_client.post(workspace, "action", {"title": "Call"}, owner=gp_client.user.public_id).post
    change(gp_client, workspace, reopened, "done")
    change(lead_client, workspace, reopened, "reopened")
    gone = lead_client.post(workspace, "action", {"title": "Twice"}, owner=gp_client.user.public_id).post
    lead_client.post(workspace, "retraction", {"reason": "posted twice"}, target=gone.post_id)
    oversight = importlib.import_module("messaging.migrations.0005_oversight_summaries").summarise_existing
    row = lambda a: (a.status, a.owner_id, a.owner_agency_id, a.due_date, a.retracted, a.done_at is not None,  # noqa: E731
                     a.last_change_seq, a.breach_at)
    kept = {a.pk: row(a) for a in ActionSummary.objects.all()}
    ActionSummary.objects.all().delete()

    # 0004 wrote rows before 0005 added the owner's agency (and 0006 required it): undone inside this
    # test's transaction, which rolls back.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # PostgreSQL alters no table with checks pending
        cursor.execute("ALTER TABLE messaging_actionsummary ALTER COLUMN owner_agency_id DROP NOT NULL")
    backfill(apps, None)
    oversight(apps, None)
    assert {a.pk: row(a) for a in ActionSummary.objects.all()} == kept
