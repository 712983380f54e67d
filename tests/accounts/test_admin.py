"""The Django admin, as a hostile site administrator would use it: it never shows or edits anyone's second
factor, and changing a professional's email address there is audited and told to the old address."""

from __future__ import annotations

import base64
import re
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from audit.models import AuditEvent
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def site_admin(make_persona):
    return make_persona("admin@tac.example", "csc", full_name="Sid Siteadmin", is_staff=True)


@pytest.fixture
def admin_client(client, site_admin):
    return sign_in(client, site_admin)


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


# --- second factors -------------------------------------------------------------------------------------


@pytest.fixture
def member_secrets(lead) -> dict[str, str]:
    """Every spelling of the member's second factor an admin page could give away."""
    codes = services.backup_codes_regenerate(request=None, professional=lead.user)
    device = lead.device
    secrets = {"hex key": device.key, "base32 secret": base64.b32encode(device.bin_key).decode().rstrip("=")}
    secrets.update({f"backup code {code}": code for code in codes})
    return secrets


def admin_pages(lead) -> list[str]:
    totp = lead.device
    static = StaticDevice.objects.get(user=lead.user)
    return [
        "/admin/",
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[totp.pk]),
        f"/admin/otp_totp/totpdevice/{totp.pk}/config/",  # django-otp's page with the key and QR code
        f"/admin/otp_totp/totpdevice/{totp.pk}/qrcode/",
        reverse("admin:otp_totp_totpdevice_history", args=[totp.pk]),
        reverse("admin:otp_static_staticdevice_changelist"),
        reverse("admin:otp_static_staticdevice_change", args=[static.pk]),
        reverse("admin:otp_static_staticdevice_history", args=[static.pk]),
        "/admin/otp_static/statictoken/",
        reverse("admin:accounts_professional_change", args=[lead.user.pk]),
    ]


def test_it_shows_no_second_factor_secret_on_any_admin_page(admin_client, lead, member_secrets):
    for url in admin_pages(lead):
        response = admin_client.get(url, follow=True)
        assert response.status_code in (200, 403, 404), url
        text = response.content.decode()
        for label, secret in member_secrets.items():
            assert secret not in text, f"{url} shows the member's {label}"
            assert secret.lower() not in text.lower(), f"{url} shows the member's {label}"
        assert "otpauth" not in text, url  # a provisioning URI, as a QR code would carry it
        assert not re.search(r'href="[^"]*/(config|qrcode)/"', text), url


def test_it_lists_a_members_devices_by_user_name_and_confirmed_only(admin_client, lead, member_secrets):
    response = admin_client.get(reverse("admin:otp_totp_totpdevice_change", args=[lead.device.pk]))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == []  # nothing editable
    shown = [field for fieldset in response.context["adminform"] for line in fieldset for field in line]
    assert [f.field["name"] for f in shown] == ["user", "name", "confirmed"]
    assert lead.user.full_name in response.content.decode()
    response = admin_client.get(reverse("admin:otp_static_staticdevice_change",
                                        args=[StaticDevice.objects.get(user=lead.user).pk]))
    assert response.context["inline_admin_formsets"] == []  # no backup codes


def test_it_lets_no_one_change_add_or_delete_a_second_factor_in_the_admin(admin_client, lead, member_secrets):
    device = lead.device
    static = StaticDevice.objects.get(user=lead.user)
    attempts = [
        (reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
         {"user": lead.user.pk, "name": "mine now", "confirmed": "on", "key": "00" * 20, "step": 30, "t0": 0,
          "digits": 6, "tolerance": 1, "drift": 0, "throttling_failure_count": 0}),
        (reverse("admin:otp_totp_totpdevice_add"),
         {"user": lead.user.pk, "name": "a second one", "confirmed": "on", "key": "00" * 20, "step": 30, "t0": 0,
          "digits": 6, "tolerance": 1, "drift": 0, "throttling_failure_count": 0}),
        (reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}),
        (reverse("admin:otp_static_staticdevice_change", args=[static.pk]),
         {"user": lead.user.pk, "name": "codes", "confirmed": "on", "token_set-TOTAL_FORMS": 1,
          "token_set-INITIAL_FORMS": 0, "token_set-0-token": "known1234"}),
        (reverse("admin:otp_static_staticdevice_delete", args=[static.pk]), {"post": "yes"}),
    ]
    for url, data in attempts:
        assert admin_client.post(url, data).status_code == 403, url
    # The list offers no actions, so "delete selected" does nothing.
    admin_client.post(reverse("admin:otp_totp_totpdevice_changelist"),
                      {"action": "delete_selected", "_selected_action": [device.pk], "post": "yes"})
    after = TOTPDevice.objects.get(pk=device.pk)
    assert (after.key, after.name) == (device.key, device.name)
    assert TOTPDevice.objects.filter(user=lead.user).count() == 1
    assert StaticDevice.objects.filter(user=lead.user).count() == 1
    assert not StaticToken.objects.filter(token="known1234").exists()
    assert StaticToken.objects.filter(device=static).count() == services.BACKUP_CODE_COUNT


# --- email address changes ------------------------------------------------------------------------------


def change_form_data(response) -> dict:
    """What the admin's change form posts when saved as shown (every editable field and inline row)."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data


def admin_save(admin_client, professional, **changes):
    url = reverse("admin:accounts_professional_change", args=[professional.pk])
    data = {**change_form_data(admin_client.get(url)), **changes}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def test_it_audits_an_email_change_in_the_admin_with_both_addresses(
    admin_client, site_admin, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_save(admin_client, lead.user, email="attacker@elsewhere.example")
    lead.user.refresh_from_db()
    assert lead.user.email == "attacker@elsewhere.example"
    [event] = kinds("account.email_changed")
    assert event.data == {"old": "lead@csc.example", "new": "attacker@elsewhere.example"}
    assert event.actor_id == site_admin.user.pk
    assert (event.target_type, event.target_id) == ("accounts.professional", str(lead.user.pk))
    [changed] = kinds("account.changed")
    assert changed.data == {"fields": ["email"]}


def test_it_tells_the_old_address_after_commit_when_the_admin_changes_it(
    admin_client, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_save(admin_client, lead.user, email="attacker@elsewhere.example")
    assert mail.outbox == []  # nothing is sent before the change commits
    for callback in callbacks:
        callback()
    [message] = mail.outbox
    assert message.to == ["lead@csc.example"]
    assert message.subject == "The email address of your Team Around the Child account was changed"
    [event] = kinds("account.email_changed")
    when = event.occurred_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    # The whole message: the account's own details and what to do, nothing about workspaces or children.
    assert message.body.strip() == (
        f"Hello Sam Lead,\n\n"
        f"The email address of your Team Around the Child account was changed on {when.day} {when:%B %Y} at "
        f"{when:%H:%M} {when.tzname()}, from lead@csc.example to attacker@elsewhere.example. Emails about your "
        f"account, including password reset links, now go to the new address.\n\n"
        f"If you did not ask for this, contact your agency administrator straight away."
    )


def test_it_sends_nothing_when_the_admin_changes_other_fields(
    admin_client, lead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_save(admin_client, lead.user, job_title="Team manager")
    lead.user.refresh_from_db()
    assert lead.user.job_title == "Team manager"
    assert mail.outbox == []
    assert kinds("account.email_changed") == []
    [changed] = kinds("account.changed")
    assert changed.data == {"fields": ["job_title"]}
