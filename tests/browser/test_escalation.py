"""A red concern left unanswered escalates to the lead's manager (issue 10, items 3 and 5), in Chromium:
Dr Priya GP raises a red concern from her browser; Sam Lead does not answer it; four hours on, the clock job
runs; Morgan Manager (Sam's agency, not a member of the workspace) signs in to find the notification,
which names the workspace's reference and nothing of what was written, and the breach on the dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import ConcernSummary
from notifications.models import Notification
from oversight.services import clocks_run
from tests.browser.journeys import sign_in
from tests.browser.test_action_lifecycle import open_workspace
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

DETAIL = "Came to school hungry again and would not go home"


def test_an_unanswered_red_concern_reaches_the_leads_manager(new_page, lead, gp, manager, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)

    gp_page = new_page()
    open_workspace(gp_page, gp, workspace)
    gp_page.get_by_label("Concern", exact=True).check()
    gp_page.get_by_label("Red", exact=True).check()
    gp_page.get_by_label("What is the concern?").fill(DETAIL)
    gp_page.get_by_role("button", name="Post", exact=True).click()
    expect(gp_page.locator("[data-tac-posted]")).to_contain_text("posted")

    summary = ConcernSummary.objects.get(workspace=workspace)
    assert (summary.rag, summary.responded_at) == ("red", None)
    assert summary.due_at - summary.raised_at == dt.timedelta(hours=4)
    # Nothing before its time; once four hours have passed unanswered, the clock job tells the lead and the
    # managers of the lead's agency.
    assert clocks_run()["concerns_breached"] == 0
    with time_machine.travel(summary.due_at + dt.timedelta(minutes=1), tick=False):
        assert clocks_run()["concerns_breached"] == 1
    told = {n.recipient.email for n in Notification.objects.filter(kind=Notification.Kind.CONCERN_BREACHED)}
    assert told == {lead.user.email, manager.user.email}

    page = new_page()
    sign_in(page, manager)
    nav = page.get_by_role("navigation", name="Menu")
    expect(nav.get_by_role("link", name="Notifications 1 unread")).to_be_visible()
    nav.get_by_role("link", name="Notifications 1 unread").click()
    item = page.locator("main li", has_text="A concern has not been responded to in time")
    expect(item).to_contain_text(workspace.reference)
    expect(page.locator("main")).not_to_contain_text(DETAIL)

    nav.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.get_by_role("heading", name="Oversight dashboard")).to_be_visible()
    expect(page.locator("[data-tac-figure='breaches']").first).to_contain_text("1")
    expect(page.locator("main")).not_to_contain_text(DETAIL)
    assert timezone.now() < summary.due_at  # the pages ran on today's clock; only the job was moved on
