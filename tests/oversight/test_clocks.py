"""Response clocks (issue 10, item 3): working time across weekends and bank holidays, concerns answered by
the lead in time or escalated, actions reminded, overdue and escalated, under a frozen clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from messaging.custodian import Conflict
from messaging.models import ConcernAcknowledgement, ConcernSummary, Workspace
from notifications.models import Notification
from oversight import clocks
from oversight.services import clocks_run
from tests.messaging.factories import Client, join

LONDON = ZoneInfo("Europe/London")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


# --- working time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("started", "rag", "due"), [
    (at(2026, 12, 18, 17, 0), "red", at(2026, 12, 18, 21, 0)),  # around the clock, on a Friday evening
    (at(2026, 12, 18, 22, 0), "red", at(2026, 12, 19, 2, 0)),  # into Saturday
    (at(2026, 12, 18, 10, 0), "amber", at(2026, 12, 21, 10, 0)),  # Friday -> Monday, over the weekend
    (at(2026, 12, 19, 10, 0), "amber", at(2026, 12, 22, 0, 0)),  # Saturday: counts from Monday 00:00
    # Christmas Eve: Christmas Day, the weekend and Boxing Day (observed on Monday 28th) are not working days.
    (at(2026, 12, 24, 10, 0), "amber", at(2026, 12, 29, 10, 0)),
    (at(2026, 12, 23, 15, 0), "green", at(2026, 12, 30, 15, 0)),
    # Good Friday and Easter Monday 2027.
    (at(2027, 3, 25, 9, 30), "amber", at(2027, 3, 30, 9, 30)),
])
def test_it_counts_working_days_over_weekends_and_bank_holidays(started, rag, due):
    assert clocks.concern_due(rag, started) == due


def test_it_keeps_the_wall_clock_hour_across_a_change_of_summer_time():
    # British Summer Time starts on Sunday 28 March 2027: Thursday 09:00 GMT -> Tuesday 09:00 BST (Good
    # Friday and Easter Monday between), which is 07:00 and 08:00 UTC.
    due = clocks.add_working_days(at(2027, 3, 25, 9, 0), 1)
    assert due == at(2027, 3, 30, 9, 0) and due.utcoffset() == dt.timedelta(hours=1)
    # Raised on Good Friday itself: counts from Tuesday 00:00, so it runs to the end of Tuesday.
    assert clocks.concern_due("amber", at(2027, 3, 26, 9, 0)) == at(2027, 3, 31, 0, 0)


def test_it_uses_the_configured_region(settings):
    # 2 January is a bank holiday in Scotland, not in England and Wales.
    started = at(2026, 12, 31, 12, 0)
    assert clocks.concern_due("amber", started) == at(2027, 1, 4, 12, 0)  # 1 Jan holiday, weekend
    settings.TAC_HOLIDAYS_SUBDIV = "SCT"
    assert clocks.concern_due("amber", started) == at(2027, 1, 5, 12, 0)  # and 4 Jan (2 Jan observed)


def test_it_takes_timescales_from_settings(settings):
    settings.TAC_CONCERN_CLOCK_HOURS = {"red": 2}
    settings.TAC_CONCERN_CLOCK_WORKING_DAYS = {"amber": 2, "green": 5}
    started = at(2026, 12, 14, 9, 0)  # a Monday
    assert clocks.concern_due("red", started) == at(2026, 12, 14, 11, 0)
    assert clocks.concern_due("amber", started) == at(2026, 12, 16, 9, 0)
    assert clocks.concern_due("green", started) == at(2026, 12, 21, 9, 0)


def test_an_actions_clock_reminds_the_working_day_before_and_escalates_a_working_day_after():
    # Due Tuesday 29 December 2026: the working day before is Thursday 24th (25th, the weekend and the
    # 28th are not working days); overdue from Wednesday 30th; escalated a working day later, Thursday 31st.
    remind, breach, escalate = clocks.action_clock(dt.date(2026, 12, 29))
    assert (remind, breach, escalate) == (at(2026, 12, 24, 8, 0), at(2026, 12, 30, 0, 0), at(2026, 12, 31, 0, 0))
    # Due on a Friday: overdue on Saturday, escalated on Tuesday (Monday is the working day in between).
    assert clocks.action_clock(dt.date(2026, 12, 11))[1:] == (at(2026, 12, 12, 0, 0), at(2026, 12, 15, 0, 0))
    assert clocks.action_clock(None) == (None, None, None)


# --- concerns ------------------------------------------------------------------------------------------


@pytest.fixture
def gp_manager(make_persona):
    return make_persona("manager@gp.example", "gp", full_name="Grace GP Manager", role="manager")


@pytest.fixture
def team(lead, gp, manager, gp_manager, outsider, custodian):
    """The lead's workspace with the GP admitted. `manager` manages the lead's agency, `gp_manager` the
    GP's, and neither is a member."""
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    workspace.refresh_from_db()
    return workspace, lead_client, gp_client


def told(kind: str) -> set[str]:
    return {n.recipient.email for n in Notification.objects.filter(kind=kind)}


def concern(client: Client, workspace: Workspace, rag: str):
    return client.post(workspace, "concern", {"category": "neglect", "detail": "Seen hungry"}, rag=rag).post


def test_an_unanswered_red_concern_escalates_to_the_lead_and_the_leads_managers(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 18, 17, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "red")
        summary = ConcernSummary.objects.get(concern=post)
        assert (summary.rag, summary.due_at, summary.responded_at) == ("red", at(2026, 12, 18, 21, 0), None)

        traveller.move_to(at(2026, 12, 18, 20, 59))
        assert clocks_run()["concerns_breached"] == 0
        traveller.move_to(at(2026, 12, 18, 21, 1))
        assert clocks_run()["concerns_breached"] == 1
        # Run again (another worker, a retry): nobody is told twice.
        assert clocks_run()["concerns_breached"] == 0

    summary.refresh_from_db()
    assert (summary.breached_at, summary.breach_count) == (at(2026, 12, 18, 21, 1), 1)
    assert told(Notification.Kind.CONCERN_BREACHED) == {"lead@csc.example", "manager@csc.example"}
    assert Notification.objects.get(recipient__email="manager@csc.example").as_manager
    event = AuditEvent.objects.get(kind="clock.concern_breached")
    assert event.data["post"] == str(post.post_id) and event.target_id == str(workspace.pk)


@pytest.mark.parametrize("answer", ["acknowledgement", "reply", "action", "decision"])
def test_the_leads_answer_stops_the_clock(team, answer):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 18, 17, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "red")
        traveller.move_to(at(2026, 12, 18, 18, 0))
        if answer == "acknowledgement":
            lead_client.post(workspace, "acknowledgement", {}, target=post.post_id)
        elif answer == "action":
            lead_client.post(workspace, "action", {"title": "Home visit"}, owner=lead_client.user.public_id,
                             parent=post.post_id)
        else:
            lead_client.post(workspace, "update" if answer == "reply" else "decision", {"text": "Seen"},
                             parent=post.post_id)
        traveller.move_to(at(2026, 12, 19, 9, 0))
        assert clocks_run()["concerns_breached"] == 0
    assert ConcernSummary.objects.get(concern=post).responded_at == at(2026, 12, 18, 18, 0)
    assert not Notification.objects.filter(kind=Notification.Kind.CONCERN_BREACHED).exists()


def test_someone_elses_answer_does_not_stop_it_and_the_leads_own_concern_needs_none(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 18, 9, 0), tick=False) as traveller:
        gps = concern(gp_client, workspace, "amber")
        leads = concern(lead_client, workspace, "red")
        gp_client.post(workspace, "update", {"text": "More to say"}, parent=gps.post_id)
        assert ConcernSummary.objects.get(concern=leads).responded_at == at(2026, 12, 18, 9, 0)
        # Friday 09:00 amber: due Monday 09:00, over the weekend.
        traveller.move_to(at(2026, 12, 21, 8, 59))
        assert clocks_run()["concerns_breached"] == 0
        traveller.move_to(at(2026, 12, 21, 9, 0))
        assert clocks_run()["concerns_breached"] == 1
    assert ConcernSummary.objects.get(concern=gps).breached_at is not None


def test_an_amber_clock_runs_over_christmas(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 24, 10, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "amber")
        for moment in (at(2026, 12, 25, 11, 0), at(2026, 12, 28, 23, 0), at(2026, 12, 29, 9, 59)):
            traveller.move_to(moment)
            assert clocks_run()["concerns_breached"] == 0, moment
        traveller.move_to(at(2026, 12, 29, 10, 0))
        assert clocks_run()["concerns_breached"] == 1
    assert ConcernSummary.objects.get(concern=post).breach_count == 1


def test_a_closed_workspace_and_a_retracted_concern_have_no_clock(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 18, 9, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "red")
        gp_client.post(workspace, "retraction", {"reason": "wrong child"}, target=post.post_id)
        traveller.move_to(at(2026, 12, 19, 9, 0))
        assert clocks_run()["concerns_breached"] == 0
    assert ConcernSummary.objects.get(concern=post).retracted


def test_each_agencys_first_acknowledgement_is_kept_with_how_long_it_took(team, outsider, custodian):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 14, 9, 0), tick=False) as traveller:
        post = concern(lead_client, workspace, "red")
        traveller.move_to(at(2026, 12, 14, 9, 45))
        gp_client.post(workspace, "acknowledgement", {}, target=post.post_id)
        traveller.move_to(at(2026, 12, 14, 10, 0))
        lead_client.post(workspace, "acknowledgement", {}, target=post.post_id)
    rows = {a.agency.name: (a.rag, a.seconds) for a in ConcernAcknowledgement.objects.filter(concern_id=post.pk)}
    assert rows == {"Riverside Medical Practice": ("red", 45 * 60),
                    "Northshire Children's Social Care": ("red", 60 * 60)}


# --- rating changes --------------------------------------------------------------------------------------


def rate(client: Client, workspace: Workspace, post, rag: str):
    return client.post(workspace, "rating_change", {"reason": f"now {rag}"}, target=post.post_id, rag=rag).post


def test_a_rating_change_by_the_author_starts_a_new_clock_and_moves_the_workspace_rating(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 14, 9, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "green")
        traveller.move_to(at(2026, 12, 14, 11, 0))
        change = rate(gp_client, workspace, post, "red")
    summary = ConcernSummary.objects.get(concern=post)
    assert (summary.rag, summary.clock_started_at, summary.due_at) == ("red", at(2026, 12, 14, 11, 0),
                                                                         at(2026, 12, 14, 15, 0))
    assert change.rag == "red" and change.target_id == post.pk
    workspace.refresh_from_db()
    assert workspace.current_rag == "red"
    event = AuditEvent.objects.filter(kind="post.created").latest("pk")
    assert (event.data["kind"], event.data["from"], event.data["to"]) == ("rating_change", "green", "red")


def test_the_leads_rating_change_is_an_answer(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 14, 9, 0), tick=False) as traveller:
        post = concern(gp_client, workspace, "red")
        traveller.move_to(at(2026, 12, 14, 10, 0))
        rate(lead_client, workspace, post, "amber")
        traveller.move_to(at(2026, 12, 15, 12, 0))
        assert clocks_run()["concerns_breached"] == 0
    summary = ConcernSummary.objects.get(concern=post)
    assert (summary.rag, summary.responded_at) == ("amber", at(2026, 12, 14, 10, 0))
    workspace.refresh_from_db()
    assert workspace.current_rag == "amber"


def test_a_rating_change_is_refused_from_others_to_the_same_rating_and_on_a_retracted_concern(
        team, manager, custodian):
    workspace, lead_client, gp_client = team
    manager_client = Client(manager, custodian)
    join(lead_client, workspace, manager_client)
    post = concern(gp_client, workspace, "amber")
    with pytest.raises(PermissionDenied, match="only the concern's author or the lead"):
        rate(manager_client, workspace, post, "red")
    with pytest.raises(ValidationError, match="already rated amber"):
        rate(gp_client, workspace, post, "amber")
    with pytest.raises(ValidationError, match="needs a RAG rating"):
        gp_client.post(workspace, "rating_change", {"reason": "x"}, target=post.post_id)
    update = gp_client.post(workspace, "update", {"text": "not a concern"}).post
    with pytest.raises(ValidationError, match="targets a concern"):
        rate(gp_client, workspace, update, "red")
    gp_client.post(workspace, "retraction", {"reason": "wrong child"}, target=post.post_id)
    with pytest.raises(Conflict, match="retracted"):
        rate(gp_client, workspace, post, "red")
    workspace.refresh_from_db()
    assert workspace.current_rag == ""


# --- actions -------------------------------------------------------------------------------------------


def test_an_actions_owner_is_reminded_then_told_with_the_lead_then_their_managers(team):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 23, 10, 0), tick=False) as traveller:
        action = lead_client.post(workspace, "action", {"title": "Medical"}, owner=gp_client.user.public_id,
                                  due=dt.date(2026, 12, 29)).post
        assert told(Notification.Kind.ACTION_ASSIGNED) == {"gp@gp.example"}
        steps = [
            (at(2026, 12, 24, 7, 59), {}),
            (at(2026, 12, 24, 8, 0), {"actions_reminded": 1}),
            (at(2026, 12, 29, 23, 59), {}),
            (at(2026, 12, 30, 0, 0), {"actions_breached": 1}),
            (at(2026, 12, 30, 23, 0), {}),
            (at(2026, 12, 31, 0, 0), {"actions_escalated": 1}),
            (at(2027, 1, 5, 0, 0), {}),
        ]
        for moment, expected in steps:
            traveller.move_to(moment)
            ran = {k: v for k, v in clocks_run().items() if v}
            assert ran == expected, moment
    assert told(Notification.Kind.ACTION_DUE) == {"gp@gp.example"}
    assert told(Notification.Kind.ACTION_OVERDUE) == {"gp@gp.example"}
    assert told(Notification.Kind.ACTION_OVERDUE_LEAD) == {"lead@csc.example"}
    assert told(Notification.Kind.ACTION_ESCALATED) == {"manager@gp.example"}
    assert {e.data["post"] for e in AuditEvent.objects.filter(kind__startswith="clock.action_")} == {str(action.post_id)}


def test_a_done_action_has_no_more_clock_and_a_removed_member_is_told_nothing_more(team, gp, custodian):
    workspace, lead_client, gp_client = team
    with time_machine.travel(at(2026, 12, 14, 10, 0), tick=False) as traveller:
        done = lead_client.post(workspace, "action", {"title": "Letter"}, owner=gp_client.user.public_id,
                                due=dt.date(2026, 12, 16)).post
        kept = lead_client.post(workspace, "action", {"title": "Visit"}, owner=gp_client.user.public_id,
                                due=dt.date(2026, 12, 16)).post
        gp_client.post(workspace, "action_status", {"note": "sent"}, target=done.post_id, status="done")
        lead_client.rotate(workspace, remove=gp.user)
        traveller.move_to(at(2026, 12, 18, 0, 0))
        clocks_run()
    # Invited, then assigned two actions; nothing after the removal, though one of them is overdue.
    assert sorted((n.kind, n.post_seq) for n in Notification.objects.filter(recipient=gp.user)) == [
        ("action_assigned", done.seq), ("action_assigned", kept.seq), ("invitation", None)]
    assert told(Notification.Kind.ACTION_OVERDUE_LEAD) == {"lead@csc.example"}
