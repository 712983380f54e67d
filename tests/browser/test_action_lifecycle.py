"""An action's life in Chromium (tacprotocol/actions.py is the rule; frontend/static/tac/actions.js its twin):
Sam Lead gives Dr Priya GP an action; she accepts it, completes it with a note, and Sam confirms it, each
step shown live on both pages and only to whom the rule allows it. A second action Sam reassigns to Morgan
Manager (a third browser), who accepts it. The server's summary row ends where the pages say."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from messaging.models import ActionSummary, Post
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

FIRST = "Arrange a child protection medical"
SECOND = "Book the review meeting"
NOTE = "Medical done at Riverside, findings shared by phone"


@pytest.fixture
def team(lead, gp, manager, custodian, capture_events):
    lead_client, gp_client, manager_client = Client(lead, custodian), Client(gp, custodian), Client(manager, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client, manager_client)
    second = lead_client.post(workspace, "action", {"title": SECOND, "detail": ""}, owner=gp.user.public_id,
                              status="open").post
    return workspace, second


def open_workspace(page: Page, persona, workspace) -> None:
    sign_in(page, persona)
    page.goto(f"/workspaces/{workspace.public_id}/")
    expect(page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")


def action_on(page: Page, title: str):
    return page.locator(".tac-post[data-kind='action']", has_text=title)


def control(action, label: str):
    """A control named after its post: "Accept action #7 from Sam Lead"."""
    return action.get_by_role("button", name=re.compile(rf"^{label} action #\d+ from "))


def expect_state(pages, title: str, words: str) -> None:
    for page in pages:
        expect(action_on(page, title).locator("[data-tac-action-state]")).to_have_text(words)


def test_it_takes_an_action_from_assigned_to_confirmed_and_reassigns_another(new_page, lead, gp, manager, team):
    workspace, second = team
    audit = Auditor(new_page(bypass_csp=True))
    lead_page, gp_page = audit.page, new_page()
    open_workspace(lead_page, lead, workspace)
    open_workspace(gp_page, gp, workspace)
    pages = (lead_page, gp_page)

    lead_page.get_by_role("radio", name="Action").check()
    lead_page.get_by_label("What needs doing?").fill(FIRST)
    lead_page.get_by_label("Who will do it?").select_option(str(gp.user.public_id))
    lead_page.get_by_role("button", name="Post", exact=True).click()
    expect_state(pages, FIRST, f"Waiting for {gp.user.full_name} to accept")
    lead_action, gp_action = action_on(lead_page, FIRST), action_on(gp_page, FIRST)

    # Open: the owner may accept (a button), complete or cancel; the lead may complete, reassign or cancel.
    expect(control(gp_action, "Accept")).to_have_class(re.compile(r"\bgovuk-button\b"))
    for label in ("Confirm done", "Reassign", "Reopen"):
        expect(control(gp_action, label)).to_have_count(0)
    for label in ("Mark done", "Cancel action"):
        expect(control(gp_action, label)).to_have_count(1)
    for label in ("Accept", "Confirm done", "Reopen"):
        expect(control(lead_action, label)).to_have_count(0)
    for label in ("Mark done", "Reassign", "Cancel action"):
        expect(control(lead_action, label)).to_have_count(1)

    control(gp_action, "Accept").click()
    expect_state(pages, FIRST, f"Accepted by {gp.user.full_name}")
    for page in pages:
        expect(action_on(page, FIRST).locator("[data-events] li")).to_have_text(
            [re.compile(rf"^Accepted by {gp.user.full_name} \(")])
    expect(control(gp_action, "Accept")).to_have_count(0)

    # Done needs a note; then it waits for the lead, and only the lead may confirm.
    control(gp_action, "Mark done").click()
    gp_action.get_by_role("button", name="Save").click()
    expect(gp_page.locator("[data-tac-error-summary]")).to_contain_text("Enter a completion note: say what was done")
    gp_action.get_by_label("Completion note").fill(NOTE)
    gp_action.get_by_role("button", name="Save").click()
    expect_state(pages, FIRST, "Done — waiting for the lead to confirm")
    expect(lead_action.locator("[data-events] li").last).to_have_text(
        re.compile(rf"^Marked done by {gp.user.full_name}: {NOTE} \("))
    expect(control(gp_action, "Confirm done")).to_have_count(0)
    expect(control(gp_action, "Reopen")).to_have_count(1)
    expect(control(lead_action, "Confirm done")).to_have_count(1)

    control(lead_action, "Confirm done").click()
    expect_state(pages, FIRST, "Confirmed")
    expect(gp_action.locator("[data-events] li").last).to_have_text(re.compile(rf"^Confirmed by {lead.user.full_name} \("))
    for action in (lead_action, gp_action):
        for label in ("Accept", "Mark done", "Confirm done", "Reopen", "Reassign", "Cancel action"):
            expect(control(action, label)).to_have_count(0)
    first = Post.objects.get(workspace=workspace, kind="action", seq__gt=second.seq)
    summary = ActionSummary.objects.get(action=first)
    assert (summary.status, summary.owner_id) == ("confirmed", gp.user.pk)

    # Reassigning: the lead picks another active member (never the current owner), who then accepts.
    manager_page = new_page()
    open_workspace(manager_page, manager, workspace)
    pages = (lead_page, gp_page, manager_page)
    expect_state(pages, SECOND, f"Waiting for {gp.user.full_name} to accept")
    lead_second = action_on(lead_page, SECOND)
    control(lead_second, "Reassign").click()
    form = lead_second.locator("form[data-tac-reassign]")
    chooser = form.get_by_label(re.compile(r"^Who should action #\d+ from .* go to\?"))
    expect(chooser).to_be_focused()
    offered = chooser.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    assert str(gp.user.public_id) not in offered
    assert {str(lead.user.public_id), str(manager.user.public_id)} <= set(offered)
    audit("workspace with the reassign form open")
    form.get_by_role("button", name="Reassign").click()
    expect(lead_page.locator("[data-tac-error-summary]")).to_contain_text("Choose who the action goes to")
    chooser.select_option(str(manager.user.public_id))
    form.get_by_role("button", name="Reassign").click()
    expect_state(pages, SECOND, f"Waiting for {manager.user.full_name} to accept")
    for page in pages:
        action = action_on(page, SECOND)
        expect(action.locator("[data-events] li")).to_have_text(
            [re.compile(rf"^Reassigned to {manager.user.full_name} by {lead.user.full_name} \(")])
        expect(action.locator("[data-action-meta]")).to_contain_text(f"Owner: {manager.user.full_name}")
    expect(control(action_on(gp_page, SECOND), "Accept")).to_have_count(0)
    expect(control(action_on(gp_page, SECOND), "Mark done")).to_have_count(0)

    control(action_on(manager_page, SECOND), "Accept").click()
    expect_state(pages, SECOND, f"Accepted by {manager.user.full_name}")
    summary = ActionSummary.objects.get(action=second)
    assert (summary.status, summary.owner_id) == ("accepted", manager.user.pk)
    audit.assert_clean(1)
