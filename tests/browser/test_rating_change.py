"""A concern's rating change in Chromium (issue 10, item 3): Dr Priya GP raised an amber concern; Sam Lead
raises it to red with a reason, and the GP's and Morgan Manager's pages show the new rating and the line
saying who changed it, when and why, live. Only the concern's author and the lead are offered the change;
a retracted concern offers it to nobody. Home's verified rating follows the change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from messaging.models import Post
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

DETAIL = "Missed two health visitor appointments"
REASON = "Police called to the home overnight <b>twice</b>"


@pytest.fixture
def team(lead, gp, manager, custodian, capture_events):
    lead_client, gp_client, manager_client = Client(lead, custodian), Client(gp, custodian), Client(manager, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client, manager_client)
    concern = gp_client.post(workspace, "concern", {"category": "neglect", "detail": DETAIL}, rag="amber").post
    retracted = gp_client.post(workspace, "concern", {"category": "housing", "detail": "Damp"}, rag="green").post
    gp_client.post(workspace, "retraction", {"reason": "Wrong family"}, target=retracted.post_id)
    return workspace, concern, retracted


def open_workspace(page: Page, persona, workspace) -> None:
    sign_in(page, persona)
    page.goto(f"/workspaces/{workspace.public_id}/")
    expect(page.locator("[data-tac-connection]")).to_have_text("Live: new posts appear here as they are made.")


def post_on(page: Page, post: Post):
    return page.locator(f"[data-tac-post='{post.post_id}']")


def change_control(node):
    """The control is named after its post: "Change rating of concern #4 from Dr Priya GP"."""
    return node.get_by_role("button", name=re.compile(r"^Change rating of concern #\d+ from "))


def test_the_lead_raises_a_concern_and_every_member_sees_it_live(new_page, lead, gp, manager, team):
    workspace, concern, retracted = team
    audit = Auditor(new_page(bypass_csp=True))
    lead_page, gp_page, manager_page = audit.page, new_page(), new_page()
    for page, persona in ((lead_page, lead), (gp_page, gp), (manager_page, manager)):
        open_workspace(page, persona, workspace)
    pages = (lead_page, gp_page, manager_page)
    for page in pages:
        expect(post_on(page, concern).locator("[data-rag]")).to_have_text("Amber")
        expect(change_control(post_on(page, retracted))).to_have_count(0)
    # The author and the lead are offered the change; Morgan is not.
    expect(change_control(post_on(lead_page, concern))).to_have_count(1)
    expect(change_control(post_on(gp_page, concern))).to_have_count(1)
    expect(change_control(post_on(manager_page, concern))).to_have_count(0)

    node = post_on(lead_page, concern)
    change_control(node).click()
    form = node.locator("form[data-tac-rating]")
    expect(form.get_by_role("radio")).to_have_count(2)  # not the rating it has
    expect(form.get_by_role("radio", name="Red")).to_be_focused()
    expect(form.get_by_role("radio", name="Amber")).to_have_count(0)
    expect(form.locator(".govuk-character-count__status")).to_have_text("You have 20,000 characters remaining")
    audit("workspace with the change of rating open")
    form.get_by_role("button", name="Change rating").click()
    summary = lead_page.locator("[data-tac-error-summary]")
    expect(summary).to_contain_text("Choose the new rating")
    expect(summary).to_contain_text("Say why the rating changed")
    form.get_by_role("radio", name="Red").check()
    form.get_by_label("Why has the rating changed?").fill(REASON)
    form.get_by_role("button", name="Change rating").click()
    expect(form).to_have_count(0)

    line = re.compile(rf"^Rating changed from amber to red by {lead.user.full_name}, .+: {re.escape(REASON)}$")
    for page in pages:
        shown = post_on(page, concern)
        expect(shown.locator("[data-rag]")).to_have_text("Red")
        expect(shown.locator("[data-rag] .govuk-tag--red")).to_have_count(1)
        expect(page.locator(f"#post-{concern.post_id}")).to_have_class(re.compile(r"\btac-post--red\b"))
        expect(shown.locator("[data-events] li")).to_have_text([line])
        expect(shown.locator("[data-events] b")).to_have_count(0)  # words, never HTML
        expect(shown.locator("[data-notes]")).to_be_hidden()
    change = Post.objects.get(workspace=workspace, kind="rating_change")
    assert (change.rag, change.target_id, change.author_id) == ("red", concern.pk, lead.user.pk)
    # The change is shown on the concern, not as a post of its own.
    for page in pages:
        expect(post_on(page, change)).to_have_count(0)
    expect(change_control(post_on(manager_page, concern))).to_have_count(0)

    # Home verifies the highest rating from the signed posts, rating changes included, and it agrees with
    # the server's summary.
    gp_page.goto("/")
    rag = gp_page.locator(f"[data-tac-workspace-row='{workspace.public_id}'] [data-tac-rag]")
    expect(rag.locator("[data-tac-rag-verified]")).to_have_text("Red (verified from 2 signed concerns)")
    expect(rag.locator("[data-tac-rag-note]")).to_be_hidden()
    audit.assert_clean(1)
