"""WCAG 2.2.1 (timing adjustable): before the idle sign-out (SESSION_IDLE_SECONDS) every signed-in page
warns, with a button that keeps the session, and after it says what happened with a way to sign in
again. The limit comes from the session itself, so a test shortens it for one session in the live
server instead of waiting half an hour."""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from playwright.sync_api import Page, expect

from tests.browser.journeys import expect_keys_unlocked, sign_in, wrap_key_in_tab
from tests.browser.test_accessibility import Auditor

pytestmark = pytest.mark.browser

IDLE_SECONDS = 20


@pytest.fixture
def audit(new_page):
    return Auditor(new_page(bypass_csp=True))


def session_key(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)


def shorten_idle_limit(page: Page, seconds: int) -> None:
    """What SESSION_IDLE_SECONDS=seconds would do, for this session only (the server is already running)."""
    page.wait_for_load_state("networkidle")  # no request in flight would save the session over this
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key(page))
    store.set_expiry(seconds)
    store.save()


def expires_at(page: Page):
    return Session.objects.get(session_key=session_key(page)).expire_date


def test_it_warns_before_the_idle_sign_out_and_says_so_after_it(audit, lead):
    page = audit.page
    body = page.locator("body")
    sign_in(page, lead)
    expect(body).to_have_attribute("data-tac-idle-seconds", str(settings.SESSION_COOKIE_AGE))
    expect(body).to_have_attribute("data-tac-session", "active")
    expect_keys_unlocked(page, lead.user)
    shorten_idle_limit(page, IDLE_SECONDS)
    page.reload()
    expect(body).to_have_attribute("data-tac-idle-seconds", str(IDLE_SECONDS))
    expect_keys_unlocked(page, lead.user)

    warning = page.get_by_role("dialog", name="You will be signed out soon")
    expect(warning).to_be_visible(timeout=IDLE_SECONDS * 1000)
    expect(body).to_have_attribute("data-tac-session", "warning")
    expect(warning).to_contain_text("we will sign you out in")
    stay = warning.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    audit("idle warning")

    before = expires_at(page)
    stay.click()
    expect(warning).to_be_hidden()
    expect(body).to_have_attribute("data-tac-session", "active")
    assert expires_at(page) > before, "staying signed in did not restart the session's idle clock"

    # Nothing more is done: the warning comes back, and then the session ends.
    expect(warning).to_be_visible(timeout=IDLE_SECONDS * 1000)
    ended = page.get_by_role("dialog", name="You have been signed out")
    expect(ended).to_contain_text("You have been signed out because you were inactive", timeout=IDLE_SECONDS * 1000)
    expect(body).to_have_attribute("data-tac-session", "ended")
    link = ended.get_by_role("link", name="Sign in again")
    expect(link).to_have_attribute("href", "/accounts/sign-in/?next=%2F")
    assert wrap_key_in_tab(page) is None  # the tab forgets its keys with the session
    audit("signed out after inactivity")

    # The server agrees: the session has ended.
    link.click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    audit.assert_clean(2)


def test_it_counts_activity_in_another_tab(page, lead):
    sign_in(page, lead)
    expect_keys_unlocked(page, lead.user)
    shorten_idle_limit(page, IDLE_SECONDS)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-tac-idle-seconds", str(IDLE_SECONDS))
    expect_keys_unlocked(page, lead.user)

    # Another tab of the same session keeps using the service: this one must not warn meanwhile.
    other = page.context.new_page()
    warning = page.get_by_role("dialog", name="You will be signed out soon")
    for _ in range(4):
        page.wait_for_timeout(IDLE_SECONDS * 1000 // 5)
        other.goto("/accounts/account/")
        expect(warning).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-tac-session", "active")


def test_it_loads_no_idle_timer_when_signed_out(page):
    page.goto("/accounts/sign-in/")
    expect(page.locator("body")).not_to_have_attribute("data-tac-idle-seconds", str(settings.SESSION_COOKIE_AGE))
    assert page.locator("dialog[data-tac-idle]").count() == 0
