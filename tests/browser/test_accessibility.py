"""Every account page passes axe-core (WCAG 2.x A/AA and best practice) at desktop width and at 320 px, and
reflows to 320 px without horizontal scrolling (WCAG 1.4.10), as a professional on a phone needs.

Each test walks one journey and audits each page on the way; problems are collected and reported
together, so one run shows everything that is wrong rather than the first page's problem only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from accounts import services
from accounts.models import Professional
from tests.browser.journeys import (
    KEY_STATUS,
    choose_password,
    enrolment_code,
    enter_code,
    expect_keys_unlocked,
    forgive_failed_codes,
    sign_in_password_only,
    submit_password,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}
# Sub-pixel rounding only: anything wider than this is a horizontal scrollbar.
REFLOW_TOLERANCE = 1

RUN_AXE = """
async () => {
  const results = await axe.run(document, { resultTypes: ['violations'] });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html, summary: n.failureSummary })),
  }));
}
"""

# What sticks out past the right edge, to say where the horizontal scroll comes from.
WIDE_ELEMENTS = """
(limit) => [...document.querySelectorAll('body *')]
  .filter((el) => el.getBoundingClientRect().right > limit)
  .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= limit)
  .slice(0, 5)
  .map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`
    + ` right=${Math.round(el.getBoundingClientRect().right)}`)
"""


class Auditor:
    """Audits pages of one journey and keeps every problem found, page by page."""

    def __init__(self, page: Page):
        self.page = page
        self.problems: list[str] = []
        self.audited: list[str] = []
        page.set_viewport_size(DESKTOP)

    def _axe(self, name: str, width: str) -> None:
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        for v in self.page.evaluate(RUN_AXE):
            nodes = "\n".join(f"      {n['target']}: {n['html'][:200]}\n        {n['summary']}" for n in v["nodes"])
            self.problems.append(f"{name} ({width}): [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})\n{nodes}")

    def __call__(self, name: str) -> None:
        self.audited.append(name)
        self._axe(name, "desktop")
        self.page.set_viewport_size(NARROW)
        try:
            scroll_width = self.page.evaluate("() => document.documentElement.scrollWidth")
            if scroll_width > NARROW["width"] + REFLOW_TOLERANCE:
                culprits = self.page.evaluate(WIDE_ELEMENTS, NARROW["width"] + REFLOW_TOLERANCE)
                self.problems.append(
                    f"{name} (320 px): scrolls horizontally, {scroll_width} px wide; sticking out: {culprits}"
                )
            self._axe(name, "320 px")
        finally:
            self.page.set_viewport_size(DESKTOP)

    def assert_clean(self, expected_pages: int) -> None:
        assert not self.problems, f"{len(self.problems)} accessibility problem(s):\n\n" + "\n\n".join(self.problems)
        assert len(self.audited) == expected_pages, self.audited


@pytest.fixture
def audit(new_page):
    # bypass_csp so that add_script_tag may inject axe; the pages' own scripts run as usual.
    return Auditor(new_page(bypass_csp=True))


def test_it_keeps_the_signed_out_pages_accessible(audit, lead):
    page = audit.page

    page.goto("/accounts/sign-in/")
    audit("sign-in")

    submit_password(page, lead.user.email, "not the right password")
    expect(page.locator(".govuk-error-summary").filter(has_text="Enter the correct email")).to_be_focused()
    audit("sign-in with a wrong password")

    page.goto("/accounts/sign-in/")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("[data-tac-error-summary]")).to_be_focused()
    audit("sign-in with nothing entered (script errors)")

    page.goto("/accounts/password-reset/")
    audit("password reset request")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    audit("password reset request with an error")

    _invitation, token = services.invitation_create(
        admin=lead.user, email="new.hv@csc.example", full_name="Hari Visitor", job_title="Health visitor",
        role=Professional.Role.PRACTITIONER, is_agency_admin=False, accept_url_for=lambda t: t,
    )
    page.goto(f"/accounts/invitations/{token}/")
    audit("invitation accept")
    choose_password(page, "too short", "Create account")
    expect(page.locator("[data-tac-error-summary]")).to_be_focused()
    audit("invitation accept with errors")

    audit.assert_clean(7)


def test_it_keeps_the_signed_in_pages_accessible(audit, lead, gp):
    page = audit.page
    services.invitation_create(
        admin=lead.user, email="new.hv@csc.example", full_name="Hari Visitor", job_title="Health visitor",
        role=Professional.Role.PRACTITIONER, is_agency_admin=False, accept_url_for=lambda t: t,
    )

    sign_in_password_only(page, lead)
    audit("two-factor")
    enter_code(page, "000000")
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    audit("two-factor with a wrong code")
    forgive_failed_codes(lead.user)

    enter_code(page, lead.totp())
    expect(page.get_by_role("heading", name="Welcome, Sam Lead")).to_be_visible()
    expect_keys_unlocked(page, lead.user)
    audit("home")

    page.goto("/accounts/account/")
    expect_keys_unlocked(page, lead.user)
    audit("account")

    page.goto("/accounts/agency/")
    expect(page.get_by_role("heading", name="Northshire Children's Social Care")).to_be_visible()
    audit("agency staff")

    page.get_by_role("link", name="Invite a professional").click()
    audit("invite")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    audit("invite with errors")

    page.goto("/accounts/account/password/")
    audit("password change")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("[data-tac-error-summary]")).to_be_focused()
    audit("password change with errors")

    # A tab opened fresh shows the unlock form instead of the safety number.
    page.evaluate("() => sessionStorage.clear()")
    page.goto("/")
    expect(page.locator(KEY_STATUS)).to_have_attribute("data-state", "locked")
    audit("home with keys locked")

    audit.assert_clean(10)


def test_it_keeps_two_factor_enrolment_accessible(audit, make_persona):
    persona = make_persona("new.sw@csc.example", full_name="Nia Newcomer", with_totp=False)
    page = audit.page

    submit_password(page, persona.user.email, persona.password)
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    audit("two-factor enrolment")

    enter_code(page, "000000")
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    audit("two-factor enrolment with a wrong code")
    forgive_failed_codes(persona.user)

    enter_code(page, enrolment_code(page))
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    audit("backup codes")

    audit.assert_clean(3)


def test_it_reports_violations_it_is_given(audit):
    """The auditor itself: a page with an unlabelled input and a too-wide element is reported for both."""
    audit.page.goto("/accounts/sign-in/")
    audit.page.evaluate(
        """() => {
          const input = document.createElement('input');
          document.querySelector('main').append(input);
          const wide = document.createElement('div');
          wide.className = 'tac-too-wide';
          wide.style.width = '900px';
          wide.style.height = '1px';
          document.querySelector('main').append(wide);
        }"""
    )
    audit("a broken page")
    report = json.dumps(audit.problems)
    assert "label" in report
    assert "scrolls horizontally" in report
    assert "tac-too-wide" in report
