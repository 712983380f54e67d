"""Every accounts view, for every kind of visitor: anonymous, password-only (2FA still to come), verified,
another agency's administrator, a colleague who is not an administrator, and an offboarded account."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Professional
from accounts.services import professional_offboard
from tests.accounts.payloads import b64
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

# Pages that need a session that passed 2FA, reachable by any verified professional.
VERIFIED_PAGES = [
    ("frontend:home", "Welcome, "),
    ("accounts:account", "Your account"),
    ("accounts:password_change", "Change your password"),
    ("accounts:reverify", "Confirm it is you"),
    ("accounts:backup_codes", "Backup codes are shown only once"),
]
# Pages only an agency administrator sees, and only for their own agency's staff ({pk} is a colleague).
AGENCY_PAGES = [
    ("accounts:agency", None),
    ("accounts:agency_invite", None),
    ("accounts:agency_offboard", "pk"),
    ("accounts:agency_reset_2fa", "pk"),
]
PUBLIC_PAGES = ["accounts:login", "accounts:password_reset"]


def url_for(name: str, arg: str | None, colleague: Professional) -> str:
    return reverse(name, args=[colleague.pk]) if arg == "pk" else reverse(name)


def redirect_target(response) -> tuple[str, dict]:
    location = urlsplit(response["Location"])
    return location.path, parse_qs(location.query)


def all_protected_urls(colleague: Professional) -> list[str]:
    return [reverse(name) for name, _ in VERIFIED_PAGES] + [
        url_for(name, arg, colleague) for name, arg in AGENCY_PAGES
    ] + ["/admin/", "/admin/accounts/professional/"]


# --- anonymous --------------------------------------------------------------------------------------------


def test_it_sends_anonymous_visitors_of_every_page_to_sign_in(client, manager):
    for url in all_protected_urls(manager.user):
        response = client.get(url)
        assert response.status_code == 302, url
        path, query = redirect_target(response)
        assert path == reverse("accounts:login"), url
        assert query["next"] == [url], url


def test_it_refuses_anonymous_posts_to_state_changing_views(client, lead, manager):
    for url in [
        reverse("accounts:sign_out_everywhere"),
        reverse("accounts:backup_codes_regenerate"),
        reverse("accounts:agency_offboard", args=[manager.user.pk]),
        reverse("accounts:agency_reset_2fa", args=[manager.user.pk]),
    ]:
        response = client.post(url)
        assert response.status_code == 302, url
        assert redirect_target(response)[0] == reverse("accounts:login"), url
    manager.user.refresh_from_db()
    assert manager.user.is_active
    assert manager.user.session_generation == 0


def test_it_answers_anonymous_api_calls_with_401_json(client):
    response = client.get(reverse("accounts:api_my_keys"))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_signed_in", "reason": "Sign in first."}


def test_it_serves_public_pages_to_anonymous_visitors(client):
    for name in PUBLIC_PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get(reverse("frontend:healthz")).json() == {"status": "ok"}


def test_it_sends_anonymous_visitors_of_the_two_factor_pages_to_sign_in(client):
    for name in ["accounts:two_factor", "accounts:two_factor_enrol"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert redirect_target(response)[0] == reverse("accounts:login")


# --- password-only (2FA still to come) ------------------------------------------------------------------


def test_it_sends_a_password_only_session_to_two_factor_from_every_page(client, lead, manager):
    sign_in(client, lead, verify=False)
    for url in all_protected_urls(manager.user):
        response = client.get(url)
        assert response.status_code == 302, url
        path, query = redirect_target(response)
        assert path == reverse("accounts:two_factor"), url
        assert query["next"] == [url], url


def test_it_answers_password_only_api_calls_with_403_json(client, lead):
    sign_in(client, lead, verify=False)
    response = client.get(reverse("accounts:api_my_keys"))
    assert response.status_code == 403
    assert response.json()["error"] == "2fa_required"
    assert "two-factor" in response.json()["reason"]


def test_it_does_not_let_a_password_only_session_offboard_or_sign_out_everywhere(client, lead, manager):
    sign_in(client, lead, verify=False)
    for url in [
        reverse("accounts:agency_offboard", args=[manager.user.pk]),
        reverse("accounts:sign_out_everywhere"),
    ]:
        response = client.post(url)
        assert redirect_target(response)[0] == reverse("accounts:two_factor"), url
    manager.user.refresh_from_db()
    lead.user.refresh_from_db()
    assert manager.user.is_active
    assert lead.user.session_generation == 0


def test_it_shows_the_two_factor_challenge_to_a_password_only_session(client, lead):
    sign_in(client, lead, verify=False)
    response = client.get(reverse("accounts:two_factor"))
    assert response.status_code == 200
    assert b"Enter your security code" in response.content


def test_it_sends_a_password_only_session_with_an_authenticator_from_enrolment_to_the_challenge(client, lead):
    sign_in(client, lead, verify=False)
    response = client.get(reverse("accounts:two_factor_enrol"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:two_factor")


# --- verified -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona_name", ["lead", "manager", "gp", "outsider"])
def test_it_serves_every_page_to_each_verified_persona(client, request, persona_name):
    persona = request.getfixturevalue(persona_name)
    sign_in(client, persona)
    for name, text in VERIFIED_PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert text in response.content.decode(), name
    assert persona.user.full_name in client.get(reverse("frontend:home")).content.decode()


def test_it_serves_my_keys_as_json_to_a_verified_session(client, lead):
    sign_in(client, lead)
    response = client.get(reverse("accounts:api_my_keys"))
    assert response.status_code == 200
    body = response.json()
    key = lead.user.current_identity_key()
    assert body["public_id"] == str(lead.user.public_id)
    assert body["key_version"] == 1
    assert set(body) == {
        "public_id", "salt", "opslimit", "memlimit", "key_version",
        "sign_public", "box_public", "binding_signature", "wrapped_secret",
    }
    assert body["sign_public"] == b64(key.sign_public)
    assert body["wrapped_secret"] == b64(key.wrapped_secret)


def test_it_sends_a_verified_session_away_from_sign_in_and_two_factor(client, lead):
    sign_in(client, lead)
    assert client.get(reverse("accounts:login"))["Location"] == reverse("frontend:home")
    assert client.get(reverse("accounts:two_factor"))["Location"] == reverse("frontend:home")
    assert client.get(reverse("accounts:two_factor_enrol"))["Location"] == reverse("accounts:account")


def test_it_does_not_follow_a_next_parameter_to_another_site(client, lead):
    sign_in(client, lead, verify=False)
    response = client.post(
        reverse("accounts:two_factor"), {"token": lead.totp(), "next": "https://evil.example/steal"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("frontend:home")


# --- agency administration ------------------------------------------------------------------------------


def test_it_serves_agency_pages_to_the_agency_admin(client, lead, manager):
    sign_in(client, lead)
    for name, arg in AGENCY_PAGES:
        response = client.get(url_for(name, arg, manager.user))
        assert response.status_code == 200, name
    listing = client.get(reverse("accounts:agency")).content.decode()
    assert manager.user.email in listing
    assert escape(lead.user.agency.name) in listing


def test_it_lists_only_the_admins_own_agency_staff(client, lead, manager, gp, outsider):
    sign_in(client, gp)
    listing = client.get(reverse("accounts:agency")).content.decode()
    assert gp.user.email in listing
    for other in (lead, manager, outsider):
        assert other.user.email not in listing


@pytest.mark.parametrize("persona_name", ["manager", "outsider"])
def test_it_hides_agency_pages_from_professionals_who_are_not_admins(client, request, lead, persona_name):
    persona = request.getfixturevalue(persona_name)
    sign_in(client, persona)
    for name, arg in AGENCY_PAGES:
        assert client.get(url_for(name, arg, lead.user)).status_code == 404, name
    response = client.post(reverse("accounts:agency_offboard", args=[lead.user.pk]))
    assert response.status_code == 404
    lead.user.refresh_from_db()
    assert lead.user.is_active


def test_it_hides_another_agencys_staff_from_an_agency_admin(client, lead, manager, gp):
    sign_in(client, gp)
    for name in ["accounts:agency_offboard", "accounts:agency_reset_2fa"]:
        url = reverse(name, args=[manager.user.pk])
        assert client.get(url).status_code == 404, name
        assert client.post(url).status_code == 404, name
    assert client.get(reverse("accounts:agency_offboard", args=[999_999])).status_code == 404
    manager.user.refresh_from_db()
    assert manager.user.is_active
    assert manager.user.session_generation == 0
    assert manager.device  # the authenticator is still there


def test_it_hides_another_agencys_invitations_from_an_agency_admin(client, lead, gp):
    invitation = Invitation.objects.create(
        token_hash="0" * 64, email="new@csc.example", full_name="New Person", job_title="Social worker",
        agency=lead.user.agency, invited_by=lead.user,
        expires_at=timezone.now() + timedelta(days=1),
    )
    sign_in(client, gp)
    response = client.post(reverse("accounts:agency_invitation_revoke", args=[invitation.pk]))
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    lead_client = sign_in(Client(), lead)  # while its own agency's admin can
    response = lead_client.post(reverse("accounts:agency_invitation_revoke", args=[invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"


def test_it_hides_agency_pages_from_an_offboarded_admin(client, lead, manager, make_persona):
    deputy = make_persona("deputy@csc.example", "csc", is_agency_admin=True)
    sign_in(client, lead)
    professional_offboard(admin=deputy.user, professional=lead.user)
    response = client.get(reverse("accounts:agency"))
    assert response.status_code == 302
    assert redirect_target(response)[0] == reverse("accounts:login")


# --- offboarded accounts --------------------------------------------------------------------------------


def test_it_refuses_to_sign_in_an_offboarded_account(client, lead, manager):
    auth_key = manager.auth_key()
    professional_offboard(admin=lead.user, professional=manager.user)
    response = client.post(reverse("accounts:login"), {"email": manager.user.email, "auth_key": auth_key})
    assert response.status_code == 400
    assert b"Enter the correct email address and password" in response.content
    assert "_auth_user_id" not in client.session


def test_it_ends_an_offboarded_accounts_existing_session(client, lead, manager):
    sign_in(client, manager)
    assert client.get(reverse("accounts:account")).status_code == 200
    professional_offboard(admin=lead.user, professional=manager.user)
    response = client.get(reverse("accounts:account"))
    assert response.status_code == 302
    assert redirect_target(response)[0] == reverse("accounts:login")
    assert client.get(reverse("accounts:api_my_keys")).status_code == 401


# --- the Django admin -----------------------------------------------------------------------------------


@pytest.fixture
def site_admin(make_persona):
    return make_persona("admin@csc.example", "csc", full_name="Ada Admin", is_staff=True)


def test_it_serves_the_django_admin_to_a_verified_site_admin(client, site_admin):
    sign_in(client, site_admin)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/professional/").status_code == 200


def test_it_sends_a_password_only_site_admin_to_two_factor(client, site_admin):
    sign_in(client, site_admin, verify=False)
    response = client.get("/admin/accounts/professional/")
    assert response.status_code == 302
    assert redirect_target(response)[0] == reverse("accounts:two_factor")


def test_it_keeps_verified_professionals_who_are_not_staff_out_of_the_django_admin(client, lead):
    sign_in(client, lead)  # an agency admin, not a site admin
    for url in ["/admin/", "/admin/accounts/professional/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert redirect_target(response)[0] == "/admin/login/", url
