"""Notifications in Chromium (issue 10 item 5): Dr Priya GP has her home open; Sam Lead gives her an
action; her navigation's unread count goes up live, without a reload; she opens her notifications, sees
what happened and where (the kind's sentence and the workspace reference, never content), and follows the
link to the action in the workspace. The list and the email choice are axe-clean at desktop and 320 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.models import Post
from notifications.models import Notification
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

TITLE = "Share the health visitor's notes"


@pytest.fixture
def team(lead, gp, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)  # the GP is told of the invitation: one unread
    return workspace


def test_it_counts_a_new_notification_live_and_leads_to_the_action(new_page, lead, gp, team):
    audit = Auditor(new_page(bypass_csp=True))
    gp_page = audit.page
    sign_in(gp_page, gp)
    nav = gp_page.get_by_role("navigation", name="Menu")
    count = nav.locator("[data-tac-unread-count]")
    expect(nav.get_by_role("link", name="Notifications 1 unread")).to_be_visible()
    gp_page.evaluate("() => { window.tacNotReloaded = true; }")

    lead_page = new_page()
    sign_in(lead_page, lead)
    lead_page.goto(f"/workspaces/{team.public_id}/")
    expect(lead_page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")
    lead_page.get_by_label("Action", exact=True).check()
    lead_page.get_by_label("What needs doing?").fill(TITLE)
    lead_page.get_by_label("Who will do it?").select_option(str(gp.user.public_id))
    lead_page.get_by_role("button", name="Post", exact=True).click()
    expect(lead_page.locator("[data-tac-posted]")).to_contain_text("posted")

    # Live, on the page she had open.
    expect(count).to_have_text("2")
    expect(nav.get_by_role("link", name="Notifications 2 unread")).to_be_visible()
    assert gp_page.evaluate("() => window.tacNotReloaded === true")
    expect(lead_page.get_by_role("navigation", name="Menu").locator("[data-tac-unread]")).to_be_hidden()

    nav.get_by_role("link", name=re.compile(r"^Notifications")).click()
    expect(gp_page).to_have_url(re.compile(r"/notifications$"))
    expect(gp_page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    action = Post.objects.get(workspace=team, kind="action")
    item = gp_page.locator("[data-tac-notification]").first
    expect(item).to_contain_text("An action has been assigned to you: it is waiting for you to accept it")
    expect(item).to_contain_text(f"Workspace {team.reference}, post #{action.seq}")
    expect(item).to_contain_text("Unread")
    expect(gp_page.locator("main")).not_to_contain_text(TITLE)
    audit("notifications")

    link = item.get_by_role("link", name="An action has been assigned to you: it is waiting for you to accept it")
    expect(link).to_have_attribute("href", f"/workspaces/{team.public_id}/#post-{action.post_id}")
    link.click()
    expect(gp_page).to_have_url(re.compile(rf"/workspaces/{team.public_id}/#post-{action.post_id}$"))
    expect(gp_page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")
    expect(gp_page.locator(f"#post-{action.post_id}")).to_contain_text(TITLE)
    # The page goes to the linked post once the thread is drawn (it is drawn after the page loads).
    expect(gp_page.locator(f"#post-{action.post_id}")).to_be_focused()
    expect(gp_page.get_by_role("navigation", name="Menu").locator("[data-tac-unread-count]")).to_have_text("2")

    # Marked read from the list: the count goes, here and on the workspace page still open in another tab.
    workspace_tab = gp_page
    list_tab = gp_page.context.new_page()
    list_tab.goto("/notifications")
    list_tab.get_by_role("button", name="Mark all as read").click()
    expect(list_tab.locator(".govuk-notification-banner")).to_contain_text("2 notifications marked as read.")
    expect(list_tab.locator("[data-tac-unread]")).to_be_hidden()
    expect(workspace_tab.get_by_role("navigation", name="Menu").locator("[data-tac-unread]")).to_be_hidden()
    assert not Notification.objects.filter(recipient=gp.user, read_at__isnull=True).exists()
    audit.assert_clean(1)


def test_it_keeps_the_email_choice_accessible_and_saved(new_page, gp):
    audit = Auditor(new_page(bypass_csp=True))
    page = audit.page
    sign_in(page, gp)
    page.goto("/notifications")
    expect(page.locator("main")).to_contain_text("You have no notifications.")
    page.get_by_role("link", name=re.compile(r"^Change when we email you")).click()
    expect(page.get_by_role("group", name="When should we email you about routine notifications?")).to_be_visible()
    expect(page.get_by_label("Straight away")).to_be_checked()
    audit("email choice")
    page.get_by_label("In one email a day").check()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Your email choice has been saved.")
    expect(page.locator("main")).to_contain_text("We email you once a day about routine notifications.")
    audit("notifications, none yet")
    audit.assert_clean(2)
