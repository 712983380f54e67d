"""The managers' dashboards (issue 10, item 6): who sees them and what, the figures on a small known story
built through the real services under a moving clock, the trends, the drill-down, the CSV, and that no
dashboard query reads a post.

The story (November 2026, GMT): Sam Lead (children's social care) leads Robin's workspace with Dr Priya
GP; Tess Teacher (St Anne's) leads another with the GP. Morgan Manager manages Sam's agency, Grace the
GP's, Sasha the school's; Pat is the safeguarding partnership's lead; Olly is a practitioner."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Agency, Professional
from audit.models import AuditEvent
from messaging import services
from messaging.models import ActionSummary, ConcernAcknowledgement, Membership
from oversight import access, selectors
from oversight.services import clocks_run
from oversight.views import csv_safe
from tacprotocol import actions
from tests.conftest import sign_in
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
SECRET = "Robin Example"  # the child's name, inside the encrypted details
TITLE = "Arrange a child protection medical"  # every action's title, inside its encrypted body


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


NOW = at(2026, 11, 25, 12, 0)  # a Wednesday
DASHBOARD, WORKSPACES, EXPORT = "/oversight/", "/oversight/workspaces/", "/oversight/export.csv"


@pytest.fixture
def gp_manager(make_persona):
    return make_persona("manager@gp.example", "gp", full_name="Grace GP Manager", role="manager")


@pytest.fixture
def school_manager(make_persona):
    return make_persona("manager@school.example", "school", full_name="Sasha School Manager", role="manager")


@pytest.fixture
def partnership(make_persona):
    return make_persona("partnership@school.example", "school", full_name="Pat Partnership", role="partnership",
                        job_title="Safeguarding partnership business manager")


@pytest.fixture
def teacher(make_persona):
    return make_persona("teacher@school.example", "school", full_name="Tess Teacher",
                        job_title="Designated safeguarding lead")


def action(client: Client, workspace, owner, due: dt.date | None = None):
    return client.post(workspace, "action", {"title": TITLE, "detail": ""}, owner=owner.public_id, due=due,
                       status="open").post


def change(client: Client, workspace, target, status: str):
    return client.post(workspace, "action_status", {"note": f"{status}: the medical was arranged"},
                       target=target.post_id, status=status).post


def concern(client: Client, workspace, rag: str):
    return client.post(workspace, "concern", {"category": "neglect", "detail": "Seen hungry at school"}, rag=rag).post


def acknowledge(client: Client, workspace, target):
    return client.post(workspace, "acknowledgement", {}, target=target.post_id).post


@pytest.fixture
def story(lead, gp, teacher, custodian):
    """Built through post_create as members' clients post, with the clock moved between steps."""
    s = SimpleNamespace()
    with time_machine.travel(at(2026, 11, 2, 9, 0), tick=False) as clock:
        s.lead, s.gp, s.teacher = Client(lead, custodian), Client(gp, custodian), Client(teacher, custodian)
        s.robin = s.lead.create_workspace({"name": SECRET})
        join(s.lead, s.robin, s.gp)
        s.other = s.teacher.create_workspace({"name": "Alex Other"})
        join(s.teacher, s.other, s.gp)
        g, sam = gp.user, lead.user

        s.on_time = action(s.lead, s.robin, g, dt.date(2026, 11, 6))
        s.late = action(s.lead, s.robin, g, dt.date(2026, 11, 6))
        s.undated = action(s.lead, s.robin, g)
        s.cancelled = action(s.lead, s.robin, g, dt.date(2026, 11, 30))
        change(s.gp, s.robin, s.cancelled, "cancelled")
        s.school_action = action(s.teacher, s.other, teacher.user, dt.date(2026, 11, 10))

        clock.move_to(at(2026, 11, 2, 10, 0))
        s.red_answered = concern(s.gp, s.robin, "red")
        clock.move_to(at(2026, 11, 2, 11, 0))
        acknowledge(s.lead, s.robin, s.red_answered)  # after an hour

        clock.move_to(at(2026, 11, 3, 9, 0))
        change(s.gp, s.robin, s.on_time, "accepted")
        clock.move_to(at(2026, 11, 3, 10, 0))
        s.red_breached = concern(s.gp, s.robin, "red")  # due by 14:00
        clock.move_to(at(2026, 11, 3, 15, 0))
        assert clocks_run()["concerns_breached"] == 1
        clock.move_to(at(2026, 11, 4, 10, 0))
        acknowledge(s.lead, s.robin, s.red_breached)  # after a day
        clock.move_to(at(2026, 11, 4, 12, 0))
        change(s.gp, s.robin, s.undated, "done")
        clock.move_to(at(2026, 11, 5, 16, 0))
        change(s.gp, s.robin, s.on_time, "done")  # a day early
        clock.move_to(at(2026, 11, 5, 17, 0))
        change(s.lead, s.robin, s.on_time, "confirmed")

        clock.move_to(at(2026, 11, 9, 9, 0))
        change(s.gp, s.robin, s.late, "done")  # three days late
        clock.move_to(at(2026, 11, 9, 10, 0))
        s.overdue = action(s.lead, s.robin, g, dt.date(2026, 11, 20))
        clock.move_to(at(2026, 11, 10, 9, 0))
        s.leads_red = concern(s.lead, s.robin, "red")
        clock.move_to(at(2026, 11, 10, 9, 30))
        acknowledge(s.gp, s.robin, s.leads_red)  # after half an hour
        s.leads_own = action(s.lead, s.robin, sam, dt.date(2026, 11, 30))

        clock.move_to(at(2026, 11, 16, 10, 0))
        s.amber = concern(s.gp, s.robin, "amber")  # one working day: due Tuesday 10:00
        clock.move_to(at(2026, 11, 17, 11, 0))
        assert clocks_run()["concerns_breached"] == 1
    return s


def viewer_dashboard(persona, filters=selectors.NO_FILTERS) -> dict:
    with time_machine.travel(NOW, tick=False):
        return selectors.dashboard(viewer=persona.user, filters=filters)


def agencies(figures: dict) -> dict[str, tuple]:
    return {a["agency"]: (a["open"], a["overdue"], a["unowned"], a["completed"], a["completed_dated"], a["on_time"])
            for a in figures["by_agency"]}


GP, CSC, SCHOOL = "Riverside Medical Practice", "Northshire Children's Social Care", "St Anne's Primary"


# --- who sees what -------------------------------------------------------------------------------------


def test_it_shows_a_manager_the_figures_of_the_workspaces_their_agency_takes_part_in(story, manager):
    figures = viewer_dashboard(manager)
    # Robin's workspace only: open, overdue, unowned, completed, completed with a due date, on time.
    assert agencies(figures) == {GP: (1, 1, 0, 3, 2, 1), CSC: (1, 0, 0, 0, 0, 0)}
    totals = figures["actions"]
    assert (totals["open"], totals["overdue"], totals["completed"], totals["cancelled"]) == (2, 1, 3, 1)
    assert totals["on_time_share"] == 0.5
    owners = {o["owner"]: (o["open"], o["overdue"], o["completed"], o["on_time_share"]) for o in figures["by_owner"]}
    assert owners == {"Dr Priya GP": (1, 1, 3, 0.5), "Sam Lead": (1, 0, 0, None)}
    assert figures["by_owner"][0]["owner"] == "Dr Priya GP"  # the most overdue first

    concerns = {c["rag"]: (c["total"], c["answered"], c["waiting"], c["late"], c["breached"]) for c in figures["concerns"]}
    assert concerns == {"red": (3, 3, 0, 0, 1), "amber": (1, 0, 0, 1, 1), "green": (0, 0, 0, 0, 0)}
    assert (figures["concern_totals"]["breaches"], figures["concern_totals"]["late"]) == (2, 1)
    medians = {m["agency"]: (m["count"], m["median_seconds"]) for m in figures["red_acknowledgements"]}
    # The lead's agency: after an hour and after a day, so 12 hours 30 minutes; the GP's: half an hour.
    assert medians == {CSC: (2, 45000.0), GP: (1, 1800.0)}


def test_a_manager_of_another_agency_sees_nothing_of_ours(story, school_manager):
    figures = viewer_dashboard(school_manager)
    assert agencies(figures) == {SCHOOL: (1, 1, 0, 0, 0, 0)}  # Tess's own workspace only
    assert [o["owner"] for o in figures["by_owner"]] == ["Tess Teacher"]
    assert all(c["total"] == 0 for c in figures["concerns"]) and figures["red_acknowledgements"] == []


def test_a_member_agencys_manager_and_the_partnership_see_every_workspace_they_take_part_in(story, gp_manager,
                                                                                          partnership):
    both = {GP: (1, 1, 0, 3, 2, 1), CSC: (1, 0, 0, 0, 0, 0), SCHOOL: (1, 1, 0, 0, 0, 0)}
    assert agencies(viewer_dashboard(gp_manager)) == both  # the GP is an active member of both
    assert agencies(viewer_dashboard(partnership)) == both


def test_the_scope_follows_the_active_member_rule(story, gp_manager, gp):
    # The GP leaves Tess's workspace: its figures leave Grace's dashboard. Offboarding the GP (is_active
    # false) takes Robin's too, since Sam's agency and not Grace's leads it.
    services.membership_leave(professional=gp.user, workspace=story.other)
    assert agencies(viewer_dashboard(gp_manager)) == {GP: (1, 1, 0, 3, 2, 1), CSC: (1, 0, 0, 0, 0, 0)}
    Professional.objects.filter(pk=gp.user.pk).update(is_active=False)
    gp_manager.user.refresh_from_db()
    assert agencies(viewer_dashboard(gp_manager)) == {}
    scoped = set(access.workspaces_overseen(gp_manager.user).values_list("reference", flat=True))
    assert scoped == set()


def test_only_managers_and_partnership_leads_may_see_a_dashboard(lead, manager, partnership):
    assert access.may_see_dashboard(manager.user) and access.may_see_dashboard(partnership.user)
    assert not access.may_see_dashboard(lead.user)
    manager.user.is_active = False
    assert not access.may_see_dashboard(manager.user)


def test_it_counts_an_action_whose_owner_has_left_as_unowned(story, gp, school_manager):
    with time_machine.travel(at(2026, 11, 20, 9, 0), tick=False):
        left_behind = action(story.teacher, story.other, gp.user, dt.date(2026, 11, 30))
        services.membership_leave(professional=gp.user, workspace=story.other)
    figures = viewer_dashboard(school_manager)
    assert agencies(figures) == {SCHOOL: (1, 1, 0, 0, 0, 0), GP: (1, 0, 1, 0, 0, 0)}
    assert figures["actions"]["unowned"] == 1
    with time_machine.travel(NOW, tick=False):
        detail = selectors.workspace_detail(viewer=school_manager.user, reference=story.other.reference)
    assert [a["owner_member"] for a in detail["actions"] if a["id"] == left_behind.pk] == [False]


# --- the figures -----------------------------------------------------------------------------------------


def test_its_overdue_agrees_with_the_action_rule(story):
    for today in (dt.date(2026, 11, 5), dt.date(2026, 11, 7), dt.date(2026, 11, 21), dt.date(2026, 12, 1)):
        in_sql = set(ActionSummary.objects.filter(selectors._overdue(today)).values_list("pk", flat=True))
        by_rule = {a.pk for a in ActionSummary.objects.all() if actions.overdue(a.status, a.due_date, today)}
        assert in_sql == by_rule, today


def test_it_filters_by_agency_lead_dates_and_status(story, partnership, gp, lead, teacher):
    gp_agency = gp.user.agency_id
    by_gp = viewer_dashboard(partnership, selectors.Filters(agency_id=gp_agency))
    assert agencies(by_gp) == {GP: (1, 1, 0, 3, 2, 1)}
    assert [c["total"] for c in by_gp["concerns"]] == [2, 1, 0]  # raised by the GP
    assert [m["agency"] for m in by_gp["red_acknowledgements"]] == [GP]

    by_lead = viewer_dashboard(partnership, selectors.Filters(lead_id=teacher.user.pk))
    assert agencies(by_lead) == {SCHOOL: (1, 1, 0, 0, 0, 0)}

    # Created in the second week of November: the overdue action and Sam's own.
    week = viewer_dashboard(partnership, selectors.Filters(date_from=dt.date(2026, 11, 9),
                                                           date_to=dt.date(2026, 11, 15)))
    assert agencies(week) == {GP: (1, 1, 0, 0, 0, 0), CSC: (1, 0, 0, 0, 0, 0)}
    assert [c["total"] for c in week["concerns"]] == [1, 0, 0]
    assert [(m["agency"], m["count"]) for m in week["red_acknowledgements"]] == [(GP, 1)]

    completed = viewer_dashboard(partnership, selectors.Filters(action_status="completed"))
    assert agencies(completed) == {GP: (0, 0, 0, 3, 2, 1)}
    overdue = viewer_dashboard(partnership, selectors.Filters(action_status="overdue"))
    assert agencies(overdue) == {GP: (1, 1, 0, 0, 0, 0), SCHOOL: (1, 1, 0, 0, 0, 0)}
    services.workspace_close(lead=lead.user, workspace=story.robin, status="closed")
    closed = viewer_dashboard(partnership, selectors.Filters(workspace_status="closed"))
    assert set(agencies(closed)) == {GP, CSC}


def test_on_time_means_done_by_the_end_of_the_due_day_in_london(lead, gp, manager, custodian):
    # Summer time: London is an hour ahead of UTC, so 00:10 on 11 July in London is still 10 July in UTC.
    with time_machine.travel(at(2026, 7, 6, 9, 0), tick=False) as clock:
        lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
        workspace = lead_client.create_workspace({"name": SECRET})
        join(lead_client, workspace, gp_client)
        just_in_time, just_late = (action(lead_client, workspace, gp.user, dt.date(2026, 7, 10)) for _ in range(2))
        clock.move_to(at(2026, 7, 10, 23, 59))
        change(gp_client, workspace, just_in_time, "done")
        clock.move_to(at(2026, 7, 11, 0, 10))
        change(gp_client, workspace, just_late, "done")
        figures = selectors.dashboard(viewer=manager.user)
        weeks = selectors.trends(viewer=manager.user)["weeks"]
    assert (figures["actions"]["completed_dated"], figures["actions"]["on_time"]) == (2, 1)
    assert [(w["completed"], w["on_time"]) for w in weeks if w["start"] == dt.date(2026, 7, 6)] == [(2, 1)]
    for row in ActionSummary.objects.all():
        assert (row.done_at < row.breach_at) == (row.done_at.astimezone(LONDON).date() <= row.due_date)


def test_its_trends_follow_the_weeks(story, manager):
    with time_machine.travel(NOW, tick=False):
        weeks = selectors.trends(viewer=manager.user)["weeks"]
    assert len(weeks) == 12 and weeks[0]["start"] == dt.date(2026, 9, 7) and weeks[-1]["start"] == dt.date(2026, 11, 23)
    assert [w["iso"] for w in weeks[-4:]] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
    figures = {w["start"].isoformat(): (w["created"], w["completed"], w["on_time"], w["overdue"], w["red_raised"],
                                        w["breaches"]) for w in weeks}
    assert figures["2026-11-02"] == (4, 2, 1, 1, 2, 1)  # the late action was still not done at the week's end
    assert figures["2026-11-09"] == (2, 1, 0, 0, 1, 0)
    assert figures["2026-11-16"] == (0, 0, 0, 1, 0, 1)  # due on the 20th, not done
    assert figures["2026-11-23"] == (0, 0, 0, 1, 0, 0)  # so far this week
    assert all(f == (0, 0, 0, 0, 0, 0) for day, f in figures.items() if day < "2026-11-02")


def test_its_median_fallback_matches_percentile_cont(story, partnership):
    rows = ConcernAcknowledgement.objects.filter(rag="red").values_list("agency_id", "seconds")
    names = dict(Agency.objects.values_list("pk", "name"))
    in_python = {names[r["agency_id"]]: (r["count"], r["median_seconds"]) for r in selectors._medians_in_python(rows)}
    in_sql = {m["agency"]: (m["count"], m["median_seconds"]) for m in viewer_dashboard(partnership)["red_acknowledgements"]}
    assert in_python == in_sql == {CSC: (2, 45000.0), GP: (1, 1800.0)}


def test_it_never_reads_a_post_and_its_queries_do_not_grow_with_the_data(story, partnership, manager, gp):
    def queries(viewer) -> dict[str, list[str]]:
        counted = {}
        for name, selector in (("dashboard", selectors.dashboard), ("trends", selectors.trends),
                               ("workspace_list", selectors.workspace_list)):
            with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
                selector(viewer=viewer)
            counted[name] = [q["sql"] for q in captured.captured_queries]
        return counted

    before = {viewer: queries(viewer) for viewer in (partnership.user, manager.user)}
    for counted in before.values():
        assert not [sql for sqls in counted.values() for sql in sqls if '"messaging_post"' in sql]
        assert {name: len(sqls) for name, sqls in counted.items()} == {"dashboard": 6, "trends": 3,
                                                                        "workspace_list": 4}
    with time_machine.travel(at(2026, 11, 24, 9, 0), tick=False):
        for _ in range(3):
            action(story.lead, story.robin, gp.user, dt.date(2026, 12, 1))
    for viewer, counted in before.items():
        assert {k: len(v) for k, v in queries(viewer).items()} == {k: len(v) for k, v in counted.items()}


# --- the pages -------------------------------------------------------------------------------------------


def page(persona, path: str, **params):
    with time_machine.travel(NOW, tick=False):
        return sign_in(HttpClient(), persona).get(path, params)


def test_the_dashboard_page_shows_the_figures(story, manager):
    answer = page(manager, DASHBOARD)
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    html = answer.content.decode()
    assert "Workspaces led by, or with an active member from, Northshire Children&#x27;s Social Care" in html
    assert 'data-tac-figure="on_time_share">50%' in html and "1 of 2 with a due date" in html
    assert 'data-tac-figure="overdue">1<' in html
    assert 'data-tac-figure="median">12 hours 30 minutes<' in html and 'data-tac-figure="median">30 minutes<' in html
    assert 'href="/oversight/">Dashboard</a>' in html  # the navigation offers it
    for chart in ("actions", "overdue", "concerns"):
        svg = html.split(f'data-tac-chart="{chart}"')[1].split("</svg>")[0]
        assert f'aria-labelledby="chart-{chart}-title chart-{chart}-desc"' in html
        assert f'<title id="chart-{chart}-title">' in svg and f'<desc id="chart-{chart}-desc">' in svg
        assert f'data-tac-trend="{chart}"' in html.split(f'data-tac-chart="{chart}"')[1]  # its table follows
    assert 'role="img"' in html and "<script>" not in html and "style=" not in html
    for secret in (SECRET, TITLE, "Seen hungry", "the medical was arranged"):
        assert secret not in html


def test_the_dashboard_page_filters_and_says_what_is_wrong(story, partnership, gp, lead):
    answer = page(partnership, DASHBOARD, agency=gp.user.agency_id, action_status="overdue")
    assert answer.status_code == 200
    figures = answer.context["figures"]
    assert agencies(figures) == {GP: (1, 1, 0, 0, 0, 0)}
    assert "Showing agency: Riverside Medical Practice; action status: Overdue." in answer.content.decode()

    wrong = page(partnership, DASHBOARD, date_from="2026-11-09", date_to="2026-11-01", lead="not-a-lead")
    html = wrong.content.decode()
    assert "There is a problem" in html and "The end date must be the same as or after the start date" in html
    assert "Choose a lead professional from the list" in html and 'href="#filter-lead"' in html
    # What was wrong is left out; what was right still applies: the two actions created from 9 November.
    assert wrong.context["figures"]["actions"]["total"] == 2


def test_the_lead_choices_are_the_managers_agencys_or_the_chosen_agencys(story, manager, partnership, teacher, lead):
    def names(viewer, agency_id=None) -> list[str]:
        return list(selectors.lead_choices(viewer, agency_id).values_list("full_name", flat=True))

    assert names(manager.user) == names(manager.user, teacher.user.agency_id) == ["Sam Lead"]
    # A partnership lead chooses an agency first: every agency's leads would be thousands of choices.
    assert names(partnership.user) == []
    assert names(partnership.user, teacher.user.agency_id) == ["Tess Teacher"]
    refused = page(manager, DASHBOARD, lead=str(teacher.user.public_id))
    assert "Choose a lead professional from the list" in refused.content.decode()
    assert agencies(refused.context["figures"]) == {GP: (1, 1, 0, 3, 2, 1), CSC: (1, 0, 0, 0, 0, 0)}
    chosen = page(partnership, DASHBOARD, agency=lead.user.agency_id, lead=str(lead.user.public_id))
    assert not chosen.context["errors"] and agencies(chosen.context["figures"]) == {CSC: (1, 0, 0, 0, 0, 0)}


def test_the_workspace_list_and_drill_down_show_metadata_only(story, manager):
    listed = page(manager, WORKSPACES)
    assert listed.status_code == 200
    assert [(w["reference"], w["overdue"], w["completed"], w["red"], w["late"]) for w in listed.context["page"]] == [
        (story.robin.reference, 1, 3, 3, 1)]
    assert story.other.reference not in listed.content.decode()

    detail = page(manager, f"{WORKSPACES}{story.robin.reference}/")
    html = detail.content.decode()
    assert detail.status_code == 200 and "Open workspace (members only)" in html
    assert f'href="/workspaces/{story.robin.public_id}/"' in html
    rows = {a["id"]: a for a in detail.context["actions"]}
    assert (rows[story.on_time.pk]["status"], rows[story.on_time.pk]["on_time"]) == ("confirmed", True)
    assert (rows[story.late.pk]["status"], rows[story.late.pk]["on_time"]) == ("done", False)
    assert rows[story.overdue.pk]["overdue"] and "Overdue" in html and "After the due date" in html
    concerns = {c["id"]: c for c in detail.context["concerns"]}
    assert concerns[story.red_breached.pk]["breach_count"] == 1
    assert [k["agency"] for k in concerns[story.leads_red.pk]["acknowledgements"]] == [GP]
    assert "Dr Priya GP" in html and "1 day" in html
    for secret in (SECRET, TITLE, "Seen hungry", "the medical was arranged"):
        assert secret not in html


def test_another_agencys_manager_gets_no_drill_down_and_no_rows(story, school_manager):
    assert page(school_manager, f"{WORKSPACES}{story.robin.reference}/").status_code == 404
    assert page(school_manager, f"{WORKSPACES}TAC-1999-0001/").status_code == 404
    listed = page(school_manager, WORKSPACES)
    assert [w["reference"] for w in listed.context["page"]] == [story.other.reference]
    exported = page(school_manager, EXPORT).content.decode()
    assert story.robin.reference not in exported and story.other.reference in exported


def test_the_csv_has_the_filtered_actions_metadata_and_is_audited(story, manager, gp):
    answer = page(manager, EXPORT, agency=gp.user.agency_id)
    assert answer.status_code == 200 and answer["Content-Type"] == "text/csv; charset=utf-8"
    assert answer["Content-Disposition"] == 'attachment; filename="tac-actions-2026-11-25.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert list(rows[0]) == list(selectors.EXPORT_HEADER)
    assert {r["workspace"] for r in rows} == {story.robin.reference} and len(rows) == 5
    by_id = {int(r["action_id"]): r for r in rows}
    expected = {"status": "confirmed", "owner": "Dr Priya GP", "owner_agency": GP, "completed_by_due_date": "yes",
                "overdue": "no", "due_date": "2026-11-06", "done_at": "2026-11-05T16:00:00+00:00",
                "owner_still_member": "yes", "lead_professional": "Sam Lead", "workspace_status": "open"}
    assert {k: by_id[story.on_time.pk][k] for k in expected} == expected
    assert (by_id[story.late.pk]["completed_by_due_date"], by_id[story.overdue.pk]["overdue"]) == ("no", "yes")
    assert TITLE not in answer.content.decode() and SECRET not in answer.content.decode()
    event = AuditEvent.objects.get(kind="oversight.exported")
    assert (event.actor_id, event.data) == (manager.user.pk, {"filters": {"agency_id": str(gp.user.agency_id)},
                                                             "rows": 5})


def test_the_csv_defuses_cells_a_spreadsheet_would_run(story, manager, gp):
    Professional.objects.filter(pk=gp.user.pk).update(full_name='=HYPERLINK("http://evil.example","GP")')
    rows = list(csv.reader(io.StringIO(page(manager, EXPORT).content.decode())))
    owners = {r[4] for r in rows[1:]}
    assert owners == {"'=HYPERLINK(\"http://evil.example\",\"GP\")", "Sam Lead"}
    assert [csv_safe(v) for v in ("+1", "-1", "@SUM(A1)", "\tx", "ok", None, 3)] == [
        "'+1", "'-1", "'@SUM(A1)", "'\tx", "ok", "", "3"]


@pytest.mark.parametrize("path", [DASHBOARD, WORKSPACES, f"{WORKSPACES}TAC-2026-0001/", EXPORT])
def test_a_practitioner_gets_the_403_page_and_no_link(path, lead, outsider):
    for persona in (lead, outsider):
        answer = page(persona, path)
        assert answer.status_code == 403, persona
        assert "You cannot see this page" in answer.content.decode()
    assert 'href="/oversight/"' not in page(lead, "/").content.decode()
    assert not AuditEvent.objects.filter(kind="oversight.exported").exists()


@pytest.mark.parametrize("path", [DASHBOARD, WORKSPACES, f"{WORKSPACES}TAC-2026-0001/", EXPORT])
def test_signed_out_it_asks_to_sign_in(path, manager):
    answer = HttpClient().get(path)
    assert answer.status_code == 302 and answer["Location"].startswith(f"{reverse('accounts:login')}?next=")
    # A password without the second factor is not enough either.
    assert sign_in(HttpClient(), manager, verify=False).get(path)["Location"].startswith(
        reverse("accounts:two_factor"))


def test_a_workspace_page_of_the_drill_down_is_still_members_only(story, manager):
    # The link says "members only" and means it: the manager is not a member of Robin's workspace.
    assert not Membership.objects.filter(workspace=story.robin, professional=manager.user).exists()
    assert page(manager, f"/workspaces/{story.robin.public_id}/").status_code == 404


# --- make run's SQLite ---------------------------------------------------------------------------------

SQLITE_CHECKS = """
import datetime as dt, json, statistics
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.utils import timezone
from accounts.models import Agency, Professional
from messaging.models import ActionSummary, ConcernAcknowledgement, Workspace
from oversight import selectors, views
from tacprotocol import actions

viewer = Professional.objects.get(role="partnership")
viewer.is_verified = lambda: True
today = timezone.localdate()
figures = selectors.dashboard(viewer=viewer)
weeks = selectors.trends(viewer=viewer)["weeks"]
rows = [a for a in ActionSummary.objects.all() if not a.retracted]
seconds = {}
for k in ConcernAcknowledgement.objects.filter(rag="red", concern__retracted=False).select_related("agency"):
    seconds.setdefault(k.agency.name, []).append(k.seconds)
reference = Workspace.objects.order_by("pk").first().reference
answers = {}
for path, view, kwargs in (("/oversight/", views.dashboard, {}), ("/oversight/workspaces/", views.workspaces, {}),
                           (f"/oversight/workspaces/{reference}/", views.workspace, {"reference": reference}),
                           ("/oversight/export.csv", views.export, {})):
    request = RequestFactory().get(path, {"date_from": "2020-01-01"})
    request.user, request.session = viewer, SessionStore()
    request._messages = FallbackStorage(request)
    answers[path] = view(request, **kwargs).status_code
print(json.dumps({
    "overdue": [figures["actions"]["overdue"], sum(actions.overdue(a.status, a.due_date, today) for a in rows)],
    "completed": [figures["actions"]["completed"], sum(a.status in ("done", "confirmed") for a in rows)],
    "on_time": [figures["actions"]["on_time"], sum(a.status in ("done", "confirmed") and a.due_date is not None
                                                   and timezone.localdate(a.done_at) <= a.due_date for a in rows)],
    "medians": [{m["agency"]: m["median_seconds"] for m in figures["red_acknowledgements"]},
                {name: float(statistics.median(v)) for name, v in seconds.items()}],
    "created": [sum(w["created"] for w in weeks), sum(
        a.created_at >= timezone.make_aware(dt.datetime.combine(weeks[0]["start"], dt.time.min)) for a in rows)],
    "pages": answers,
}))
"""


def test_it_works_on_make_runs_sqlite(tmp_path):
    """The quick start's database has no percentile_cont and converts times in Python: the same figures,
    checked against a count made here in Python from the summary rows, and every page answers."""
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="teamaroundchild.settings.dev", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
               SECRET_KEY="sqlite-dashboard-test", TAC_KDF_OPSLIMIT="1", TAC_KDF_MEMLIMIT="8388608",
               TAC_PIN_DIR=str(tmp_path / "pins"))

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run("migrate", "--noinput")
    run("seed_demo", "--credentials", str(tmp_path / "creds.json"))
    out = json.loads(run("shell", "-c", SQLITE_CHECKS).strip().splitlines()[-1])
    for name in ("overdue", "completed", "on_time", "medians", "created"):
        assert out[name][0] == out[name][1], (name, out[name])
    assert out["completed"][0] > 0 and out["medians"][0], out  # the demo has a history to count
    assert set(out["pages"].values()) == {200}, out["pages"]
