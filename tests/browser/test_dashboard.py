"""The managers' dashboards in Chromium (issue 10, item 6): axe-clean at 1280 px and 320 px (the dashboard
with its filters, charts and tables, the workspace list and a workspace's drill-down, and the 403 a
practitioner gets); and the journey the issue names: Sam Lead gives Dr Priya GP an action due in three
days, she accepts it and completes it with a note, Sam confirms it, and Morgan Manager (Sam's agency)
signs in, opens the Dashboard from the navigation and sees it completed by its due date."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.services import clocks_run
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.browser.test_action_lifecycle import action_on, control, expect_state, open_workspace
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

TITLE = "Arrange a child protection medical"
NOTE = "Medical done at Riverside, findings shared by phone"
GP = "Riverside Medical Practice"


def figure(page: Page, table: str, row: str, name: str):
    return page.locator(f"[data-tac-table='{table}'] tr[data-tac-row='{row}'] [data-tac-figure='{name}']")


@pytest.fixture
def history(transactional_db, lead, gp, custodian, capture_events):
    """Six weeks of metadata made through the services (the clock moved back for it): actions done on
    time, late and not at all, a red concern acknowledged, another left to run out of time."""
    now = timezone.now()
    with time_machine.travel(now - dt.timedelta(weeks=6), tick=False) as clock:
        lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
        workspace = lead_client.create_workspace({"name": "Robin Example"})
        join(lead_client, workspace, gp_client)
        due = timezone.localdate() + dt.timedelta(days=3)
        posts = [lead_client.post(workspace, "action", {"title": TITLE, "detail": ""}, owner=gp.user.public_id,
                                  due=due, status="open").post for _ in range(3)]
        red = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Seen hungry"}, rag="red").post
        lead_client.post(workspace, "concern", {"category": "neglect", "detail": "Missed visit"}, rag="amber")
        clock.shift(dt.timedelta(hours=2))
        lead_client.post(workspace, "acknowledgement", {}, target=red.post_id)
        late = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Bruise"}, rag="red").post
        clock.shift(dt.timedelta(days=1))
        gp_client.post(workspace, "action_status", {"note": "Done"}, target=posts[0].post_id, status="done")
        clock.shift(dt.timedelta(weeks=1))
        gp_client.post(workspace, "action_status", {"note": "Done late"}, target=posts[1].post_id, status="done")
        clocks_run()
        lead_client.post(workspace, "acknowledgement", {}, target=late.post_id)
    return workspace


def test_the_dashboards_are_accessible_at_both_widths(new_page, manager, lead, history):
    audit = Auditor(new_page(bypass_csp=True))
    page = audit.page
    sign_in(page, manager)
    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.get_by_role("heading", name="Oversight dashboard")).to_be_visible()
    expect(figure(page, "by-agency", GP, "overdue")).to_have_text("1")
    expect(page.locator("svg[role='img'][data-tac-chart]")).to_have_count(3)
    audit("dashboard")

    page.get_by_label("Action status").select_option("completed")
    page.get_by_label("To", exact=True).fill("2026-01-01")
    page.get_by_label("From", exact=True).fill("2026-02-01")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("The end date must be the same as or after")
    expect(page).to_have_title(re.compile(r"^Error: "))
    audit("dashboard with an error in the filters")

    page.get_by_role("link", name="Clear filters").click()
    page.get_by_role("link", name="See the workspaces behind these figures").click()
    expect(page.get_by_role("heading", name="Workspaces you oversee")).to_be_visible()
    audit("workspace list")

    page.get_by_role("link", name=history.reference).click()
    expect(page.get_by_role("heading", name=history.reference)).to_be_visible()
    expect(page.get_by_role("link", name="Open workspace (members only)")).to_be_visible()
    audit("drill-down")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, lead)
    expect(page.get_by_role("link", name="Dashboard", exact=True)).to_have_count(0)
    page.goto("/oversight/")
    expect(page.get_by_role("heading", name="You cannot see this page")).to_be_visible()
    audit("the 403 a practitioner gets")
    audit.assert_clean(5)


def test_a_manager_sees_an_action_completed_on_time(new_page, lead, gp, manager, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    lead_page, gp_page = new_page(), new_page()
    open_workspace(lead_page, lead, workspace)
    open_workspace(gp_page, gp, workspace)
    pages = (lead_page, gp_page)

    # Sam gives Dr Priya an action due in three days.
    due = timezone.localdate() + dt.timedelta(days=3)
    lead_page.get_by_role("radio", name="Action").check()
    lead_page.get_by_label("What needs doing?").fill(TITLE)
    lead_page.get_by_label("Who will do it?").select_option(str(gp.user.public_id))
    lead_page.get_by_label("Due by").fill(due.isoformat())
    lead_page.get_by_role("button", name="Post", exact=True).click()
    expect_state(pages, TITLE, f"Waiting for {gp.user.full_name} to accept")

    # She accepts it and completes it with a note; Sam confirms it.
    gp_action = action_on(gp_page, TITLE)
    control(gp_action, "Accept").click()
    expect_state(pages, TITLE, f"Accepted by {gp.user.full_name}")
    control(gp_action, "Mark done").click()
    gp_action.get_by_label("Completion note").fill(NOTE)
    gp_action.get_by_role("button", name="Save").click()
    expect_state(pages, TITLE, "Done — waiting for the lead to confirm")
    control(action_on(lead_page, TITLE), "Confirm done").click()
    expect_state(pages, TITLE, "Confirmed")

    # Morgan manages Sam's agency and is not a member: the dashboard shows the action's metadata only.
    manager_page = new_page()
    sign_in(manager_page, manager)
    manager_page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(figure(manager_page, "by-agency", GP, "completed")).to_have_text("1")
    expect(figure(manager_page, "by-agency", GP, "on_time")).to_have_text("100% (1 of 1)")
    expect(figure(manager_page, "by-owner", gp.user.full_name, "on_time")).to_have_text("100% (1 of 1)")
    expect(manager_page.locator("[data-tac-figure='on_time_share']")).to_contain_text("100%")
    this_week = manager_page.locator("[data-tac-trend='actions'] tr").last
    expect(this_week.locator("[data-tac-figure='on_time']")).to_have_text("1")

    manager_page.get_by_role("link", name="See the workspaces behind these figures").click()
    manager_page.get_by_role("link", name=workspace.reference).click()
    row = manager_page.locator("[data-tac-table='actions'] tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(gp.user.full_name)
    expect(row.locator("[data-tac-field='status']")).to_have_text("Confirmed By the due date")
    expect(manager_page.locator("main")).not_to_contain_text(TITLE)
    expect(manager_page.locator("main")).not_to_contain_text(NOTE)
    expect(manager_page.locator("main")).not_to_contain_text("Robin Example")
