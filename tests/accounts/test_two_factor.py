"""2FA: enrolment with a QR code, the challenge, backup codes, django-otp's throttle, re-verification for
sensitive operations and an agency admin's reset of a lost authenticator."""

from __future__ import annotations

import base64
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.services import BACKUP_CODE_COUNT, OTP_VERIFIED_AT_KEY
from audit.models import AuditEvent
from messaging.events import SESSION_REVOKED, user_group
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def code_for(device: TOTPDevice) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def wrong_code_for(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 1) % 1_000_000:06d}"


def forgive_failures(device) -> None:
    """django-otp throttles a device for a while after a wrong code; move that moment into the past."""
    type(device).objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


def backup_codes_on_page(response) -> list[str]:
    block = re.search(r"data-tac-backup-codes>(.*?)</ul>", response.content.decode(), re.S)
    return re.findall(r"<li>([^<]+)</li>", block.group(1)) if block else []


def redirect_path(response) -> str:
    return urlsplit(response["Location"]).path


def make_stale(client) -> None:
    """The last 2FA check was longer ago than TAC_REVERIFY_SECONDS."""
    from django.conf import settings

    session = client.session
    session[OTP_VERIFIED_AT_KEY] = time.time() - settings.TAC_REVERIFY_SECONDS - 1
    session.save()


@pytest.fixture
def newcomer(make_persona):
    return make_persona("newcomer@csc.example", "csc", full_name="Nia Newcomer", with_totp=False)


@pytest.fixture
def enrolled(client, newcomer):
    """The newcomer, signed in with their password, on the enrolment page with a fresh device."""
    sign_in(client, newcomer, verify=False)
    client.get(reverse("accounts:two_factor_enrol"))
    return newcomer


def enrol(client, persona) -> list[str]:
    device = TOTPDevice.objects.get(user=persona.user, confirmed=False)
    response = client.post(reverse("accounts:two_factor_enrol"), {"token": code_for(device)})
    assert response.status_code == 302, response.content[:300]
    return backup_codes_on_page(client.get(response["Location"]))


# --- enrolment ------------------------------------------------------------------------------------------


def test_it_sends_an_account_without_an_authenticator_to_enrolment(client, newcomer):
    sign_in(client, newcomer, verify=False)
    response = client.get(reverse("accounts:two_factor"))
    assert response.status_code == 302
    assert redirect_path(response) == reverse("accounts:two_factor_enrol")
    # Every other page sends it to the challenge first, which sends it here: no way round.
    assert redirect_path(client.get(reverse("frontend:home"))) == reverse("accounts:two_factor")


def test_it_shows_a_qr_code_and_the_secret_for_a_new_authenticator(client, enrolled):
    response = client.get(reverse("accounts:two_factor_enrol"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "<path" in html
    device = TOTPDevice.objects.get(user=enrolled.user)
    assert not device.confirmed
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    shown = re.search(r"data-tac-totp-secret>([^<]*)<", html).group(1)
    assert shown.replace(" ", "") == secret
    assert "Team%20Around%20the%20Child" in device.config_url


def test_it_starts_a_fresh_secret_each_time_the_page_is_shown(client, enrolled):
    first = TOTPDevice.objects.get(user=enrolled.user).bin_key
    client.get(reverse("accounts:two_factor_enrol"))
    [device] = TOTPDevice.objects.filter(user=enrolled.user)
    assert device.bin_key != first


def test_it_refuses_a_wrong_enrolment_code(client, enrolled):
    device = TOTPDevice.objects.get(user=enrolled.user)
    response = client.post(reverse("accounts:two_factor_enrol"), {"token": wrong_code_for(device)})
    assert response.status_code == 400
    assert b"The code is not correct" in response.content
    device.refresh_from_db()
    assert not device.confirmed
    assert not client.session.get("otp_device_id")
    assert [e.actor_id for e in kinds("2fa.enrolment_failed")] == [enrolled.user.pk]
    assert kinds("2fa.enrolled") == []
    # The same unconfirmed device is kept, so the code shown by the app still works afterwards.
    forgive_failures(device)
    assert enrol(client, enrolled)


def test_it_confirms_the_authenticator_and_shows_backup_codes_once(client, enrolled):
    device = TOTPDevice.objects.get(user=enrolled.user)
    response = client.post(reverse("accounts:two_factor_enrol") + "?next=/", {"token": code_for(device)})
    assert response.status_code == 302
    assert redirect_path(response) == reverse("accounts:backup_codes")
    device.refresh_from_db()
    assert device.confirmed

    page = client.get(response["Location"])
    codes = backup_codes_on_page(page)
    assert len(codes) == BACKUP_CODE_COUNT == 10
    assert len(set(codes)) == 10
    assert sorted(codes) == sorted(StaticToken.objects.filter(device__user=enrolled.user).values_list("token", flat=True))
    assert b"They will not be shown again" in page.content

    again = client.get(reverse("accounts:backup_codes"))
    assert again.status_code == 200
    assert backup_codes_on_page(again) == []
    assert not any(code in again.content.decode() for code in codes)

    # The session passed 2FA by enrolling.
    assert client.get(reverse("frontend:home")).status_code == 200
    assert [e.actor_id for e in kinds("2fa.enrolled")] == [enrolled.user.pk]


def test_it_sends_an_enrolled_account_to_the_challenge_not_enrolment(client, enrolled):
    enrol(client, enrolled)
    other = sign_in(Client(), enrolled, verify=False)
    response = other.get(reverse("accounts:two_factor_enrol"))
    assert response["Location"] == reverse("accounts:two_factor")
    assert TOTPDevice.objects.filter(user=enrolled.user).count() == 1


# --- the challenge and backup codes ---------------------------------------------------------------------


def test_it_refuses_a_wrong_challenge_code_and_audits_it(client, lead):
    sign_in(client, lead, verify=False)
    response = client.post(reverse("accounts:two_factor"), {"token": wrong_code_for(lead.device)})
    assert response.status_code == 400
    assert b"The code is not correct, or has been used" in response.content
    assert [e.actor_id for e in kinds("2fa.failed")] == [lead.user.pk]
    assert redirect_path(client.get(reverse("frontend:home"))) == reverse("accounts:two_factor")


def test_it_asks_for_a_code_when_none_is_given(client, lead):
    sign_in(client, lead, verify=False)
    response = client.post(reverse("accounts:two_factor"), {"token": ""})
    assert response.status_code == 400
    assert b"Enter the 6-digit code" in response.content


def test_it_throttles_the_right_code_straight_after_a_wrong_one(client, lead):
    sign_in(client, lead, verify=False)
    client.post(reverse("accounts:two_factor"), {"token": wrong_code_for(lead.device)})
    response = client.post(reverse("accounts:two_factor"), {"token": lead.totp()})
    assert response.status_code == 400
    assert b"Wait a few seconds" in response.content  # not "the code is not correct": it may be right
    assert kinds("2fa.throttled")
    forgive_failures(lead.device)
    response = client.post(reverse("accounts:two_factor"), {"token": lead.totp()})
    assert response.status_code == 302
    assert [e.actor_id for e in kinds("2fa.verified")] == [lead.user.pk]


def test_it_accepts_a_totp_code_only_once(client, lead):
    sign_in(client, lead, verify=False)
    code = lead.totp()
    assert client.post(reverse("accounts:two_factor"), {"token": code}).status_code == 302
    other = sign_in(Client(), lead, verify=False)
    TOTPDevice.objects.filter(pk=lead.device.pk).update(last_t=totp_counter(lead.device))
    assert other.post(reverse("accounts:two_factor"), {"token": code}).status_code == 400


def totp_counter(device: TOTPDevice) -> int:
    return (int(time.time()) - device.t0) // device.step


def test_it_accepts_a_backup_code_once(client, lead):
    codes = services.backup_codes_regenerate(request=None, professional=lead.user)
    sign_in(client, lead, verify=False)
    # Typed with spaces, dashes and capitals, as people copy them.
    typed = "-".join([codes[0][:4], codes[0][4:]]).upper()
    response = client.post(reverse("accounts:two_factor"), {"token": typed})
    assert response.status_code == 302
    assert client.get(reverse("frontend:home")).status_code == 200
    [used] = kinds("2fa.backup_code_used")
    assert used.actor_id == lead.user.pk
    assert used.data == {"backup_codes_left": 9}
    assert codes[0] not in used.data.values()

    other = sign_in(Client(), lead, verify=False)
    response = other.post(reverse("accounts:two_factor"), {"token": codes[0]})
    assert response.status_code == 400
    assert len(kinds("2fa.backup_code_used")) == 1
    assert len(kinds("2fa.failed")) == 1
    forgive_failures(StaticDevice.objects.get(user=lead.user))
    assert other.post(reverse("accounts:two_factor"), {"token": codes[1]}).status_code == 302


def test_it_does_not_accept_another_accounts_codes(client, lead, manager):
    codes = services.backup_codes_regenerate(request=None, professional=manager.user)
    sign_in(client, lead, verify=False)
    assert client.post(reverse("accounts:two_factor"), {"token": codes[0]}).status_code == 400
    assert client.post(reverse("accounts:two_factor"), {"token": manager.totp()}).status_code == 400


def test_it_makes_new_backup_codes_and_retires_the_old_ones(client, lead):
    old = services.backup_codes_regenerate(request=None, professional=lead.user)
    sign_in(client, lead)
    response = client.post(reverse("accounts:backup_codes_regenerate"))
    assert response.status_code == 302
    new = backup_codes_on_page(client.get(response["Location"]))
    assert len(new) == 10
    assert not set(new) & set(old)
    tokens = set(StaticToken.objects.filter(device__user=lead.user).values_list("token", flat=True))
    assert tokens == set(new)
    assert len(kinds("2fa.backup_codes_regenerated")) == 2


def test_it_does_not_make_backup_codes_with_a_get(client, lead):
    sign_in(client, lead)
    assert client.get(reverse("accounts:backup_codes_regenerate")).status_code == 405
    assert not StaticDevice.objects.filter(user=lead.user).exists()


# --- re-verification for sensitive operations -------------------------------------------------------------


def sensitive_requests(manager) -> list[tuple[str, str]]:
    return [
        ("get", reverse("accounts:password_change")),
        ("post", reverse("accounts:password_change")),
        ("get", reverse("accounts:agency_invite")),
        ("post", reverse("accounts:agency_invite")),
        ("get", reverse("accounts:agency_offboard", args=[manager.user.pk])),
        ("post", reverse("accounts:agency_offboard", args=[manager.user.pk])),
        ("get", reverse("accounts:agency_reset_2fa", args=[manager.user.pk])),
        ("post", reverse("accounts:agency_reset_2fa", args=[manager.user.pk])),
        ("post", reverse("accounts:backup_codes_regenerate")),
    ]


def assert_sent_to_check_again(client, manager) -> None:
    for method, url in sensitive_requests(manager):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        location = urlsplit(response["Location"])
        assert location.path == "/accounts/two-factor/check-again/", (method, url)
        assert parse_qs(location.query)["next"] == [url]
    manager.user.refresh_from_db()
    assert manager.user.is_active
    assert manager.user.session_generation == 0
    assert TOTPDevice.objects.filter(user=manager.user).exists()
    assert not StaticDevice.objects.exists()
    assert not AuditEvent.objects.filter(kind__in=["invitation.created", "account.offboarded", "2fa.reset"]).exists()


def test_it_asks_for_a_fresh_code_before_sensitive_operations(client, lead, manager):
    sign_in(client, lead)
    make_stale(client)
    assert_sent_to_check_again(client, manager)
    # Ordinary pages still work.
    assert client.get(reverse("accounts:account")).status_code == 200


def test_it_asks_for_a_fresh_code_when_reverification_is_always_required(client, lead, manager, settings):
    sign_in(client, lead)
    settings.TAC_REVERIFY_SECONDS = 0
    assert_sent_to_check_again(client, manager)


def test_it_allows_sensitive_operations_right_after_a_check(client, lead, manager):
    sign_in(client, lead)
    assert client.get(reverse("accounts:password_change")).status_code == 200
    assert client.get(reverse("accounts:agency_offboard", args=[manager.user.pk])).status_code == 200


def test_it_allows_sensitive_operations_again_after_checking_again(client, lead, manager):
    sign_in(client, lead)
    make_stale(client)
    url = reverse("accounts:agency_offboard", args=[manager.user.pk])
    response = client.post(reverse("accounts:reverify") + f"?next={url}", {"token": lead.totp(), "next": url})
    assert response.status_code == 302
    assert response["Location"] == url
    assert client.get(url).status_code == 200
    assert len(kinds("2fa.verified")) == 2


def test_it_refuses_a_wrong_code_when_checking_again(client, lead, manager):
    sign_in(client, lead)
    make_stale(client)
    response = client.post(reverse("accounts:reverify"), {"token": wrong_code_for(lead.device)})
    assert response.status_code == 400
    assert b"Confirm it is you" in response.content
    assert redirect_path(client.get(reverse("accounts:password_change"))) == reverse("accounts:reverify")


# --- an agency admin resets a lost authenticator --------------------------------------------------------


def test_it_lets_an_agency_admin_reset_a_colleagues_2fa(
    client, lead, manager, capture_events, django_capture_on_commit_callbacks
):
    services.backup_codes_regenerate(request=None, professional=manager.user)
    colleague = sign_in(Client(), manager)
    sign_in(client, lead)
    page = client.get(reverse("accounts:agency_reset_2fa", args=[manager.user.pk]))
    assert b"Reset two-factor authentication for Morgan Manager" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:agency_reset_2fa", args=[manager.user.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:agency")

    assert not TOTPDevice.objects.filter(user=manager.user).exists()
    assert not StaticDevice.objects.filter(user=manager.user).exists()
    assert capture_events == [
        (user_group(manager.user.pk), {"type": SESSION_REVOKED, "reason": "two-factor authentication was reset"})
    ]
    [event] = kinds("2fa.reset")
    assert (event.actor_id, event.target_id) == (lead.user.pk, str(manager.user.pk))

    # The colleague's session ended, and their next sign-in goes through enrolment again.
    assert redirect_path(colleague.get(reverse("frontend:home"))) == reverse("accounts:login")
    fresh = sign_in(Client(), manager, verify=False)
    assert redirect_path(fresh.get(reverse("accounts:two_factor"))) == reverse("accounts:two_factor_enrol")
    assert fresh.get(reverse("accounts:two_factor_enrol")).status_code == 200
    assert redirect_path(fresh.get(reverse("frontend:home"))) == reverse("accounts:two_factor")
    # The admin's own session and authenticator are untouched.
    assert client.get(reverse("frontend:home")).status_code == 200
