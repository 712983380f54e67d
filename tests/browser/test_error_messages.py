"""Errors are shown the GOV.UK way: in the error summary, linked to the field, and at the field itself
(the group's error border, a message with a visually hidden "Error:", the input's error style,
aria-invalid, aria-describedby), with "Error:" before the page title while they show. A failed request
says what happened and what to do, never a bare status code."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accounts import services as account_services
from accounts.models import Professional
from tests.browser.journeys import choose_password, sign_in, sign_out, submit_password
from tests.messaging.factories import Client

pytestmark = pytest.mark.browser

TITLE_END = " – Team Around the Child"
SERVER_TROUBLE = "Something went wrong on the server. Try again in a few minutes."
SIGNED_OUT = "You have been signed out. Sign in again to carry on."


def expect_field_error(page: Page, field_id: str, message: str | re.Pattern, *, control_class: str = "govuk-input--error"):
    control = page.locator(f"#{field_id}")
    error = page.locator(f"#{field_id}-error")
    expect(error).to_have_count(1)
    expect(error).to_have_class(re.compile(r"\bgovuk-error-message\b"))
    expect(error.locator(".govuk-visually-hidden")).to_have_text("Error:")
    if isinstance(message, str):
        expect(error).to_have_text(f"Error: {message}")
    else:
        expect(error).to_have_text(message)
    expect(control).to_have_class(re.compile(rf"\b{control_class}\b"))
    expect(control).to_have_attribute("aria-invalid", "true")
    expect(control).to_have_attribute("aria-describedby", re.compile(rf"(^|\s){field_id}-error(\s|$)"))
    expect(page.locator(".govuk-form-group--error").filter(has=control)).to_have_count(1)
    # The summary links to the field with the same words.
    text = error.inner_text().removeprefix("Error:").strip()
    link = page.locator(".govuk-error-summary:visible a", has_text=text)
    expect(link).to_have_attribute("href", f"#{field_id}")


def expect_no_field_error(page: Page, field_id: str):
    control = page.locator(f"#{field_id}")
    expect(page.locator(f"#{field_id}-error")).to_have_count(0)
    expect(control).not_to_have_attribute("aria-invalid", "true")
    expect(control).not_to_have_class(re.compile(r"--error\b"))
    expect(page.locator(".govuk-form-group--error").filter(has=control)).to_have_count(0)


def expect_no_status_codes(page: Page):
    body = page.locator("body")
    expect(body).not_to_contain_text("answered")
    expect(body).not_to_contain_text(re.compile(r"\b(401|403|500|503)\b"))


def test_it_marks_each_sign_in_field_and_the_title_until_the_errors_are_cleared(page):
    page.goto("/accounts/sign-in/")
    expect(page).to_have_title(f"Sign in{TITLE_END}")
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_title(f"Error: Sign in{TITLE_END}")
    expect_field_error(page, "email", "Enter your email address")
    expect_field_error(page, "password", "Enter your password")
    page.locator(".govuk-error-summary a", has_text="Enter your password").click()
    expect(page.locator("#password")).to_be_focused()

    # Put right, the field's error goes; the other stays.
    page.get_by_label("Email address").fill("someone@csc.example")
    page.get_by_role("button", name="Sign in").click()
    expect_no_field_error(page, "email")
    expect_field_error(page, "password", "Enter your password")
    expect(page).to_have_title(f"Error: Sign in{TITLE_END}")

    # With nothing wrong the errors and the title's prefix go while the request is under way...
    held = []
    page.route("**/accounts/api/v1/prelogin", lambda route: held.append(route))
    page.get_by_label("Password", exact=True).fill("a password of some length")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_title(f"Sign in{TITLE_END}")
    expect(page.locator(".govuk-form-group--error")).to_have_count(0)
    expect(page.locator("[data-tac-error-summary]")).to_be_hidden()

    # ...and a server in trouble is said in words, at the field the summary links to.
    for _ in range(100):  # the request leaves once libsodium is ready
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the sign-in request was not made"
    held[0].fulfill(status=503, content_type="text/html", body="<html><body>Bad gateway</body></html>")
    expect_field_error(page, "email", SERVER_TROUBLE)
    expect(page).to_have_title(f"Error: Sign in{TITLE_END}")
    expect_no_status_codes(page)


def test_it_marks_the_email_field_after_a_wrong_password(page, gp):
    submit_password(page, gp.user.email, "not the right password at all")

    expect(page).to_have_title(f"Error: Sign in{TITLE_END}")
    expect_field_error(page, "email", "Enter the correct email address and password")


def test_it_says_so_when_the_session_ended_in_another_tab(page, lead, gp, custodian, capture_events):
    gp_client = Client(gp, custodian)
    workspace = gp_client.create_workspace({"name": "Robin Example"})
    gp_client.invite(workspace, lead.user)
    sign_in(page, lead)

    other = page.context.new_page()
    other.goto("/")
    sign_out(other)

    page.get_by_role("button", name=f"Accept {workspace.reference}").click()
    link = page.locator("[data-tac-error-summary] a", has_text=SIGNED_OUT)
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", "/accounts/sign-in/?next=%2F")
    expect(page).to_have_title(f"Error: Home{TITLE_END}")
    expect_no_status_codes(page)
    link.click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_it_says_what_a_refusal_means_at_the_invitation(page, lead, gp, custodian, capture_events):
    gp_client = Client(gp, custodian)
    workspace = gp_client.create_workspace({"name": "Robin Example"})
    gp_client.invite(workspace, lead.user)
    sign_in(page, lead)

    page.route(f"**/api/v1/workspaces/{workspace.public_id}/membership/accept", lambda route: route.fulfill(
        status=403, content_type="application/json",
        body='{"error": "forbidden", "reason": "this invitation has been withdrawn"}'))
    page.get_by_role("button", name=f"Accept {workspace.reference}").click()

    field = f"accept-{workspace.public_id}"
    error = page.locator(f"#{field}-error")
    expect(error).to_have_text("Error: You may not do that: this invitation has been withdrawn.")
    expect(page.locator(f"#{field}")).to_have_attribute("aria-describedby", re.compile(rf"\b{field}-error\b"))
    expect(page.locator(".govuk-form-group--error").filter(has=page.locator(f"#{field}"))).to_have_count(1)
    expect(page.locator("[data-tac-error-summary] a", has_text="You may not do that")).to_have_attribute("href", f"#{field}")
    expect(page).to_have_title(f"Error: Home{TITLE_END}")
    expect_no_status_codes(page)


def test_it_marks_the_new_workspace_form(page, lead, custodian):
    sign_in(page, lead)
    page.goto("/workspaces/new/")
    page.get_by_role("button", name="Open workspace").click()
    expect_field_error(page, "child-name", "Enter the child's name")
    expect(page).to_have_title(re.compile(r"^Error: "))

    page.route("**/api/v1/workspaces", lambda route: route.fulfill(
        status=403, content_type="application/json", body='{"error": "forbidden", "reason": "you may not do that"}')
        if route.request.method == "POST" else route.continue_())
    page.locator("#child-name").fill("Robin Example")
    page.get_by_role("button", name="Open workspace").click()
    expect_field_error(page, "child-name", re.compile(r"^Error: You may not do that\b"))
    expect_no_status_codes(page)


def test_it_marks_the_password_change_fields(page, lead):
    sign_in(page, lead)
    page.goto("/accounts/account/password/")
    page.get_by_role("button", name="Change password").click()
    expect_field_error(page, "current-password", "Enter your current password")
    expect_field_error(page, "password", "Your password must be at least 12 characters")
    expect(page).to_have_title(re.compile(r"^Error: "))

    page.locator("#current-password").fill("not my current password")
    page.locator("#password").fill("a brand new long password")
    page.locator("#password-confirm").fill("a brand new long password")
    page.get_by_role("button", name="Change password").click()
    expect_field_error(page, "current-password", "Your current password is wrong")
    expect_no_field_error(page, "password")


def test_it_marks_the_invitation_accept_password(page, lead):
    _invitation, token = account_services.invitation_create(
        admin=lead.user, email="new.hv@csc.example", full_name="Hari Visitor", job_title="Health visitor",
        role=Professional.Role.PRACTITIONER, is_agency_admin=False, accept_url_for=lambda t: t,
    )
    page.goto(f"/accounts/invitations/{token}/")
    choose_password(page, "too short", "Create account")
    expect_field_error(page, "password", "Your password must be at least 12 characters")
    expect(page).to_have_title(re.compile(r"^Error: "))


def test_it_marks_the_composer_and_the_invite_search_at_their_fields(page, lead, custodian, capture_events):
    """thread.js's own showErrors calls: the shared helper puts them at the field."""
    workspace = Client(lead, custodian).create_workspace({"name": "Robin Example"})
    sign_in(page, lead)
    page.goto(f"/workspaces/{workspace.public_id}/")
    composer = page.locator("form[data-tac-composer]")
    expect(composer).to_be_visible()

    composer.get_by_role("button", name="Post").click()
    expect_field_error(page, "post-text", re.compile(r"^Error: \S"), control_class="govuk-textarea--error")
    expect(page).to_have_title(re.compile(r"^Error: "))

    page.locator("#invite-search").fill("a")
    page.locator("form[data-tac-invite]").get_by_role("button", name="Search").click()
    expect_field_error(page, "invite-search", "Enter at least 2 letters of a name or agency")
    expect_no_field_error(page, "post-text")
