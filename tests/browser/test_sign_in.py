"""Signing in in Chromium: password turned into keys in the browser, a TOTP code, and identity keys
unlocked in the tab with the safety number the server's public keys give."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.journeys import (
    KEY_STATUS,
    expect_keys_unlocked,
    expected_safety_number,
    sign_in,
    sign_in_password_only,
    submit_password,
    wrap_key_in_tab,
)

pytestmark = pytest.mark.browser


def test_it_signs_in_with_password_and_code_and_unlocks_the_keys(page, gp):
    sign_in_password_only(page, gp)
    page.get_by_label("Security code").fill(gp.totp())
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Dr Priya GP")
    expect_keys_unlocked(page, gp.user)
    digits = page.locator("[data-tac-safety-number]").inner_text()
    assert re.fullmatch(r"\d{5}( \d{5}){5}", digits), digits
    assert wrap_key_in_tab(page)


def test_it_shows_the_error_summary_and_focuses_it_for_a_wrong_password(page, gp):
    submit_password(page, gp.user.email, "not the right password at all")

    summary = page.locator(".govuk-error-summary").filter(has_text="Enter the correct email address and password")
    expect(summary).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    focus_in_summary = (
        "() => { const a = document.activeElement;"
        " return !!a && (a.matches('.govuk-error-summary') || !!a.closest('.govuk-error-summary')); }"
    )
    page.wait_for_function(focus_in_summary)
    assert wrap_key_in_tab(page) is None


def test_it_forgets_the_wrapping_key_when_signing_out(page, gp):
    sign_in(page, gp)
    assert wrap_key_in_tab(page)

    # The sign-out still reaches the server, but the browser gets a page that runs no script instead
    # of the redirect to the sign-in page (whose own script also clears the key): so only the sign-out
    # button's handler (page.js) can have cleared it.
    def sign_out_without_redirect(route):
        response = route.fetch(max_redirects=0)
        assert response.status == 302
        route.fulfill(content_type="text/html", body="<p>stub</p>")

    page.route("**/accounts/sign-out/", sign_out_without_redirect)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.locator("body")).to_have_text("stub")
    assert wrap_key_in_tab(page) is None

    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_it_asks_a_new_tab_for_the_password_to_unlock_the_keys(page, gp):
    sign_in(page, gp)

    # A second tab shares the session cookie but not sessionStorage: signed in, keys locked.
    tab = page.context.new_page()
    tab.goto("/")
    expect(tab.get_by_role("heading", name="Welcome, Dr Priya GP")).to_be_visible()
    status = tab.locator(KEY_STATUS)
    expect(status).to_have_attribute("data-state", "locked")
    assert wrap_key_in_tab(tab) is None

    unlock_field = tab.get_by_label("Enter your password to unlock your encryption keys in this tab")
    unlock_field.fill("a wrong password")
    tab.get_by_role("button", name="Unlock").click()
    expect(tab.get_by_label("That password did not unlock your keys. Try again.")).to_be_focused()
    expect(status).to_have_attribute("data-state", "locked")

    tab.get_by_label("That password did not unlock your keys. Try again.").fill(gp.password)
    tab.get_by_role("button", name="Unlock").click()
    expect_keys_unlocked(tab, gp.user)
    assert wrap_key_in_tab(tab) == wrap_key_in_tab(page)


def test_it_asks_another_browser_context_with_the_same_session_to_unlock(page, new_page, gp):
    sign_in(page, gp)

    other = new_page(storage_state=page.context.storage_state())
    other.goto("/")
    expect(other.locator(KEY_STATUS)).to_have_attribute("data-state", "locked")
    other.get_by_label("Enter your password to unlock your encryption keys in this tab").fill(gp.password)
    other.get_by_role("button", name="Unlock").click()
    expect_keys_unlocked(other, gp.user)
    assert other.locator("[data-tac-safety-number]").inner_text() == expected_safety_number(gp.user)
