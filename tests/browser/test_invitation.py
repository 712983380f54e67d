"""Onboarding in Chromium: an agency administrator invites a professional, who accepts the link, chooses a
password (keys made in their browser), sets up an authenticator, sees their backup codes once and
arrives with their keys unlocked. The link then works no more.

The server runs in another process, so its emails (locmem) are out of reach and only the token's hash
is stored: the form is exercised through the UI, and the link the email would carry comes from
accounts.services.invitation_create called here, as the view calls it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts import services
from accounts.models import Invitation, Professional
from tests.browser.journeys import (
    choose_password,
    enrolment_code,
    enter_code,
    expect_keys_unlocked,
    sign_in,
)

pytestmark = pytest.mark.browser

INVITEE = {
    "email": "hollie.visitor@csc.example",
    "full_name": "Hollie Visitor",
    "job_title": "Health visitor",
}
PASSWORD = "kettle meadow lantern 58"


def invite_through_the_service(admin: Professional) -> str:
    _invitation, token = services.invitation_create(
        admin=admin,
        role=Professional.Role.PRACTITIONER,
        is_agency_admin=False,
        accept_url_for=lambda t: f"/accounts/invitations/{t}/",
        **INVITEE,
    )
    return token


def test_it_lets_an_agency_admin_invite_a_professional(page, lead):
    sign_in(page, lead)
    page.get_by_role("link", name="Agency staff").click()
    expect(page.get_by_role("heading", name="Northshire Children's Social Care")).to_be_visible()
    page.get_by_role("link", name="Invite a professional").click()

    # Nothing filled in: every missing field is named in the summary and at the field.
    page.get_by_role("button", name="Send invitation").click()
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_text(
        ["Enter their full name", "Enter their work email address", "Enter their job title"]
    )
    summary.get_by_role("link", name="Enter their work email address").click()
    expect(page.get_by_label("Work email address")).to_be_focused()

    page.get_by_label("Full name").fill(INVITEE["full_name"])
    page.get_by_label("Work email address").fill(INVITEE["email"])
    page.get_by_label("Job title").fill(INVITEE["job_title"])
    page.get_by_label("Role").select_option(label="Practitioner")
    page.get_by_role("button", name="Send invitation").click()

    expect(page.get_by_text(f"Invitation sent to {INVITEE['email']}.")).to_be_visible()
    invitations = page.get_by_role("table", name="Invitations not yet accepted")
    expect(invitations.get_by_role("row").filter(has_text=INVITEE["email"])).to_contain_text("Pending")
    invitation = Invitation.objects.get(email=INVITEE["email"])
    assert (invitation.full_name, invitation.job_title, invitation.agency_id, invitation.invited_by_id) == (
        INVITEE["full_name"], INVITEE["job_title"], lead.user.agency_id, lead.user.pk,
    )
    assert invitation.state == "pending"


def test_it_refuses_to_invite_someone_who_already_has_an_account(page, lead, manager):
    sign_in(page, lead)
    page.goto("/accounts/agency/invite/")
    page.get_by_label("Full name").fill("Morgan Again")
    page.get_by_label("Work email address").fill(manager.user.email)
    page.get_by_label("Job title").fill("Team manager")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("An account with this email address already exists")
    assert not Invitation.objects.filter(email=manager.user.email).exists()


def test_it_takes_an_invitee_from_the_link_to_home_with_keys_unlocked(new_page, lead):
    token = invite_through_the_service(lead.user)
    link = f"/accounts/invitations/{token}/"

    invitee = new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Welcome, Hollie Visitor")).to_be_visible()
    expect(invitee.locator("main")).to_contain_text("Sam Lead has invited you")

    # Too short, then not matching: the browser says so and sends nothing.
    choose_password(invitee, "short", "Create account")
    expect(invitee.locator("[data-tac-error-summary]")).to_be_focused()
    expect(invitee.locator("[data-tac-error-summary]")).to_contain_text("at least 12 characters")
    invitee.get_by_label("Create a password").fill(PASSWORD)
    invitee.get_by_label("Confirm password").fill(PASSWORD + "x")
    invitee.get_by_role("button", name="Create account").click()
    expect(invitee.locator("[data-tac-error-summary]")).to_contain_text("The passwords do not match")
    assert not Professional.objects.filter(email=INVITEE["email"]).exists()

    choose_password(invitee, PASSWORD, "Create account")
    expect(invitee.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    professional = Professional.objects.get(email=INVITEE["email"])
    assert professional.full_name == "Hollie Visitor"
    assert professional.agency_id == lead.user.agency_id

    enter_code(invitee, enrolment_code(invitee))
    expect(invitee.get_by_role("heading", name="Your backup codes")).to_be_visible()
    codes = invitee.locator("[data-tac-backup-codes] li")
    expect(codes).to_have_count(10)
    assert len(set(codes.all_inner_texts())) == 10

    invitee.get_by_role("link", name="I have saved my backup codes").click()
    expect(invitee).to_have_url(re.compile(r"/$"))
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Welcome, Hollie Visitor")
    expect_keys_unlocked(invitee, professional)

    # The codes were shown once; the link worked once.
    invitee.goto("/accounts/two-factor/backup-codes/")
    expect(invitee.get_by_text("Backup codes are shown only once.")).to_be_visible()
    again = new_page()
    response = again.goto(link)
    assert response.status == 410
    expect(again.get_by_role("heading", name="This invitation has already been used")).to_be_visible()
    expect(again.locator("[data-tac-invitation-invalid]")).to_be_visible()
    assert Invitation.objects.get(email=INVITEE["email"]).accepted_by == professional


def test_it_shows_a_withdrawn_or_unknown_link_as_invalid(page, lead):
    token = invite_through_the_service(lead.user)
    services.invitation_revoke(admin=lead.user, invitation=Invitation.objects.get(email=INVITEE["email"]))

    response = page.goto(f"/accounts/invitations/{token}/")
    assert response.status == 410
    expect(page.get_by_role("heading", name="This invitation has been withdrawn")).to_be_visible()

    response = page.goto("/accounts/invitations/not-a-real-token/")
    assert response.status == 410
    expect(page.get_by_role("heading", name="This invitation is not valid")).to_be_visible()
