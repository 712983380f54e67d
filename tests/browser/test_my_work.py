"""My work on everyone's home (issue 10 item 2), in Chromium: what is waiting for me, kept current live as
colleagues post, with no content in it; axe-clean at desktop and 320 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from messaging.models import Post
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser


@pytest.fixture
def team(lead, gp, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    lead_client.post(workspace, "action", {"title": "Book the medical", "detail": ""}, owner=gp.user.public_id,
                     status="open")
    return workspace


def test_it_keeps_my_work_current_live(new_page, lead, gp, team):
    audit = Auditor(new_page(bypass_csp=True))
    gp_home = audit.page
    sign_in(gp_home, gp)
    work = gp_home.locator("[data-tac-my-work]")
    expect(work.locator("[data-tac-work-count='to_accept']")).to_have_text("Actions waiting for you to accept (1)")
    expect(work).not_to_contain_text("Book the medical")
    expect(gp_home.locator("[data-tac-my-work-source]")).to_contain_text("From the server's records")
    audit("home with my work")

    lead_page = new_page()
    sign_in(lead_page, lead)
    lead_page.goto(f"/workspaces/{team.public_id}/")
    expect(lead_page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")
    lead_page.get_by_label("Concern", exact=True).check()
    lead_page.get_by_label("Red").check()
    lead_page.locator("#post-text").fill("Seen with a bruise")
    lead_page.get_by_role("button", name="Post", exact=True).click()
    expect(lead_page.locator("[data-tac-posted]")).to_contain_text("Your concern was posted")
    lead_page.get_by_label("Action", exact=True).check()
    lead_page.get_by_label("What needs doing?").fill("Call the health visitor")
    lead_page.locator("#action-owner").select_option(str(gp.user.public_id))
    lead_page.get_by_role("button", name="Post", exact=True).click()

    # Without a reload: the GP's home counts the new action and the lead's red concern.
    expect(work.locator("[data-tac-work-count='to_accept']")).to_have_text("Actions waiting for you to accept (2)")
    expect(work.locator("[data-tac-work-count='concerns']")).to_have_text(
        "Concerns waiting for your agency's acknowledgement (1)")
    expect(work).not_to_contain_text("bruise")
    concern = Post.objects.get(workspace=team, kind="concern")
    expect(work.locator(f"[data-tac-work-concern='{concern.post_id}'] a")).to_have_attribute(
        "href", f"/workspaces/{team.public_id}/#post-{concern.post_id}")
    audit.assert_clean(1)
