"""WCAG AA contrast (4.5:1) where the service's own CSS sets colours, checked with axe's color-contrast
rule on the elements themselves, and the home page's list of workspaces at 320 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from messaging.models import Post
from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import AXE, DESKTOP, NARROW, Auditor
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.browser

CONTRAST = """
async (selector) => {
  const results = await axe.run({ include: [selector] }, { runOnly: ['color-contrast'] });
  const nodes = (list) => list.flatMap((r) => r.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary || n.any.map((a) => a.message).join('; ')}`));
  return { violations: nodes(results.violations), incomplete: nodes(results.incomplete), passes: nodes(results.passes) };
}
"""


def check_contrast(page: Page, selector: str) -> None:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    for size in (DESKTOP, NARROW):
        page.set_viewport_size(size)
        result = page.evaluate(CONTRAST, selector)
        assert not result["violations"], result["violations"]
        assert not result["incomplete"], result["incomplete"]
        assert result["passes"], f"axe checked no text in {selector}"
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def team(lead, gp, custodian, capture_events):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    gp_client.post(workspace, "update", {"text": "This one will be altered"})
    return workspace


def test_it_keeps_the_signature_warning_readable(new_page, lead, team):
    altered = Post.objects.get(kind="update")
    ciphertext = bytearray(altered.ciphertext)
    ciphertext[0] ^= 1
    Post.objects.filter(pk=altered.pk).update(ciphertext=bytes(ciphertext))
    page = new_page(bypass_csp=True)
    sign_in(page, lead)
    page.goto(f"/workspaces/{team.public_id}/")
    warning = page.locator(f"#post-{altered.post_id} .tac-post__problem", has_text="signature does not verify")
    expect(warning).to_be_visible()

    check_contrast(page, f"#post-{altered.post_id} .tac-post__problem")


def test_it_keeps_the_focused_sign_out_link_readable(new_page, lead):
    page = new_page(bypass_csp=True)
    sign_in(page, lead)
    sign_out = page.get_by_role("button", name="Sign out", exact=True)
    sign_out.focus()
    expect(sign_out).to_be_focused()

    check_contrast(page, "form[data-tac-sign-out] button")
    assert sign_out.evaluate("(el) => getComputedStyle(el).color") == "rgb(11, 12, 12)"  # GOV.UK's focus text


OUTSIDE = """
(row) => [row, ...row.querySelectorAll('*')]
  .filter((el) => el.getClientRects().length && !el.closest('.govuk-visually-hidden'))
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${el.textContent.trim().slice(0, 30)}" right=${Math.round(el.getBoundingClientRect().right)}`)
"""


def test_it_fits_the_workspace_list_at_320_px(new_page, lead, gp, custodian, capture_events):
    Client(lead, custodian).create_workspace({"name": "Alex Narrow"})
    gp_client = Client(gp, custodian)
    invited = gp_client.create_workspace({"name": "Jo Invited"})
    gp_client.invite(invited, lead.user)
    audit = Auditor(new_page(bypass_csp=True))
    page = audit.page
    sign_in(page, lead)
    row = page.locator("[data-tac-workspace-row]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-tac-child-name]")).to_have_text("Alex Narrow")
    expect(row.locator("[data-tac-rag-verified]")).to_have_text("None (verified from 0 signed concerns)")
    for label in ("Highest concern", "Unread", "Status"):
        expect(row.get_by_text(label, exact=True)).to_be_visible()

    page.set_viewport_size(NARROW)
    assert row.evaluate(OUTSIDE) == []
    page.set_viewport_size(DESKTOP)
    audit("home with a workspace and an invitation")
    audit.assert_clean(1)
