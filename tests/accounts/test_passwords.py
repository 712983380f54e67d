"""Password change (the same identity keys, re-sealed under the new password) and password reset (new
identity keys: the old ones cannot be opened without the old password; and a security code, so the
emailed link alone is not enough)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import IdentityKey, Professional
from accounts.schemas import KeyEnrolment
from accounts.services import (
    OTP_REFUSED,
    RESET_CODE_REFUSALS,
    backup_codes_regenerate,
    password_reset_complete,
    professional_offboard,
    two_factor_reset,
)
from audit.models import AuditEvent
from messaging.events import SESSION_REVOKED, user_group
from tacprotocol import crypto
from tests.accounts.payloads import b64, make_enrolment
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase for tac"


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


def unwrap(user: Professional, password: str, key: IdentityKey | None = None) -> crypto.Identity:
    user.refresh_from_db()
    salt = bytes(user.kdf_salt)
    keys = crypto.derive_keys(password, salt, user.kdf_opslimit, user.kdf_memlimit)
    ad = crypto.identity_wrap_ad(user.public_id, salt, user.kdf_opslimit, user.kdf_memlimit)
    key = key or user.current_identity_key()
    return crypto.identity_unwrap(bytes(key.wrapped_secret), keys.wrap_key, ad)


def password_change_payload(persona, new_password: str, *, current_password: str | None = None) -> dict:
    """What password-change.js sends: the old auth key, and the same private keys re-sealed under the wrap
    key of the new password with a fresh salt."""
    user = persona.user
    user.refresh_from_db()
    old_salt, ops, mem = bytes(user.kdf_salt), user.kdf_opslimit, user.kdf_memlimit
    old = crypto.derive_keys(current_password or persona.password, old_salt, ops, mem)
    identity = unwrap(user, persona.password)
    new_salt = crypto.new_salt()
    new = crypto.derive_keys(new_password, new_salt, ops, mem)
    wrapped = crypto.identity_wrap(identity, new.wrap_key, crypto.identity_wrap_ad(user.public_id, new_salt, ops, mem))
    return {
        "current_auth_key": old.auth_password,
        "auth_key": new.auth_password,
        "salt": b64(new_salt),
        "opslimit": ops,
        "memlimit": mem,
        "wrapped_secret": b64(wrapped),
    }


def post_json(client, url: str, payload) -> object:
    return client.post(url, json.dumps(payload), content_type="application/json")


# --- password change ------------------------------------------------------------------------------------


def test_it_changes_the_password_and_keeps_the_identity_keys(client, lead):
    identity = unwrap(lead.user, lead.password)
    old_salt = bytes(lead.user.kdf_salt)
    sign_in(client, lead)
    response = post_json(client, reverse("accounts:password_change"), password_change_payload(lead, NEW_PASSWORD))
    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": reverse("accounts:account")}

    lead.user.refresh_from_db()
    assert bytes(lead.user.kdf_salt) != old_salt
    [key] = lead.user.identity_keys.all()
    assert key.version == 1 and key.replaced_at is None
    assert bytes(key.sign_public) == identity.sign_public
    # The same private keys, now sealed under the new password (and no longer under the old one).
    assert unwrap(lead.user, NEW_PASSWORD) == identity
    with pytest.raises(crypto.DecryptionError):
        unwrap(lead.user, lead.password)
    assert not lead.user.needs_rekey
    [event] = kinds("auth.password_changed")
    assert event.actor_id == lead.user.pk


def test_it_signs_in_with_the_new_password_only(client, lead):
    old_auth_key = lead.auth_key()
    sign_in(client, lead)
    post_json(client, reverse("accounts:password_change"), password_change_payload(lead, NEW_PASSWORD))
    lead.password = NEW_PASSWORD
    assert sign_in(Client(), lead).get(reverse("frontend:home")).status_code == 200
    response = Client().post(reverse("accounts:login"), {"email": lead.user.email, "auth_key": old_auth_key})
    assert response.status_code == 400


def test_it_ends_other_sessions_but_keeps_this_one(client, lead, manager):
    other_device = sign_in(Client(), lead)
    colleague = sign_in(Client(), manager)
    sign_in(client, lead)
    response = post_json(client, reverse("accounts:password_change"), password_change_payload(lead, NEW_PASSWORD))
    assert response.status_code == 200
    assert client.get(reverse("accounts:account")).status_code == 200
    response = other_device.get(reverse("accounts:account"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert colleague.get(reverse("accounts:account")).status_code == 200


def test_it_refuses_a_wrong_current_password(client, lead):
    before = (bytes(lead.user.kdf_salt), lead.user.password)
    sign_in(client, lead)
    payload = password_change_payload(lead, NEW_PASSWORD, current_password="not my password")
    response = post_json(client, reverse("accounts:password_change"), payload)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "reason": "Your current password is wrong"}
    lead.user.refresh_from_db()
    assert (bytes(lead.user.kdf_salt), lead.user.password) == before
    assert unwrap(lead.user, lead.password)
    assert kinds("auth.password_changed") == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"current_auth_key": "correct horse battery staple"}, "current_auth_key must be 64 lowercase hex"),
        ({"auth_key": NEW_PASSWORD}, "auth_key must be 64 lowercase hex"),
        ({"opslimit": 0}, "opslimit must be an integer from"),
        ({"wrapped_secret": b64(b"short")}, "wrapped_secret must be 104 bytes, not 5"),
    ],
)
def test_it_refuses_a_malformed_password_change_with_a_reason(client, lead, change, reason):
    sign_in(client, lead)
    payload = {**password_change_payload(lead, NEW_PASSWORD), **change}
    response = post_json(client, reverse("accounts:password_change"), payload)
    assert response.status_code == 400
    assert response.json()["reason"].startswith(reason)
    assert unwrap(lead.user, lead.password)


def test_it_refuses_a_password_change_that_is_not_json(client, lead):
    sign_in(client, lead)
    response = client.post(reverse("accounts:password_change"), {"auth_key": "x"})
    assert response.status_code == 400
    assert response.json()["reason"] == "expected a JSON object"


def test_it_shows_the_sealed_keys_on_the_password_change_page(client, lead):
    sign_in(client, lead)
    response = client.get(reverse("accounts:password_change"))
    assert response.status_code == 200
    assert b"data-tac-password-change" in response.content


# --- password reset -------------------------------------------------------------------------------------


def reset_link(client, email: str) -> str:
    client.post(reverse("accounts:password_reset"), {"email": email})
    [message] = mail.outbox
    return re.search(r"https?://testserver(/accounts/password-reset/\S+/\S+/)", message.body).group(1)


def reset_payload(persona, password: str = NEW_PASSWORD, **fields) -> tuple[dict, crypto.Identity]:
    """What enrol.js sends on the reset page: new keys, and the security code typed (a current TOTP code
    unless the test says otherwise)."""
    payload, identity = make_enrolment(persona.user.public_id, password)
    return {**payload, "otp_token": persona.totp(), **fields}, identity


def test_it_emails_a_reset_link_to_an_existing_account(client, lead):
    response = client.post(reverse("accounts:password_reset"), {"email": "LEAD@csc.example"})
    assert response.status_code == 200
    assert b"Check your email" in response.content
    [message] = mail.outbox
    assert message.to == [lead.user.email]
    assert "/accounts/password-reset/" in message.body


def test_it_answers_the_same_for_an_unknown_account(client, lead):
    known = client.post(reverse("accounts:password_reset"), {"email": lead.user.email})
    unknown = client.post(reverse("accounts:password_reset"), {"email": "nobody@csc.example"})
    assert unknown.status_code == known.status_code == 200
    assert unknown.content.decode().replace("nobody@csc.example", "EMAIL") == known.content.decode().replace(
        lead.user.email, "EMAIL"
    )
    assert len(mail.outbox) == 1


def test_it_sends_no_reset_link_to_an_offboarded_account(client, lead, manager):
    professional_offboard(admin=lead.user, professional=manager.user)
    response = client.post(reverse("accounts:password_reset"), {"email": manager.user.email})
    assert response.status_code == 200
    assert mail.outbox == []


def test_it_asks_for_an_email_address(client):
    response = client.post(reverse("accounts:password_reset"), {"email": ""})
    assert response.status_code == 200
    assert b"Enter your email address" in response.content
    assert mail.outbox == []


def test_it_resets_the_password_with_new_identity_keys(
    client, lead, capture_events, django_capture_on_commit_callbacks
):
    old_identity = unwrap(lead.user, lead.password)
    existing = sign_in(Client(), lead)
    path = reset_link(client, lead.user.email)
    page = client.get(path)
    assert page.status_code == 200
    assert f'data-user-id="{lead.user.public_id}"' in page.content.decode()

    payload, identity = reset_payload(lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(client, path, payload)
    assert response.status_code == 200, response.content
    assert response.json() == {"redirect": reverse("accounts:login")}

    lead.user.refresh_from_db()
    assert lead.user.needs_rekey
    keys = list(lead.user.identity_keys.order_by("version"))
    assert [k.version for k in keys] == [1, 2]
    assert keys[0].replaced_at is not None and keys[1].replaced_at is None
    assert bytes(keys[0].sign_public) == old_identity.sign_public  # kept to check old signatures
    assert bytes(keys[1].sign_public) == identity.sign_public != old_identity.sign_public
    assert unwrap(lead.user, NEW_PASSWORD) == identity

    assert capture_events == [(user_group(lead.user.pk), {"type": SESSION_REVOKED, "reason": "password reset"})]
    [event] = kinds("auth.password_reset")
    assert event.data == {"identity_key_version": 2, "second_factor": "totp"}
    assert existing.get(reverse("frontend:home"))["Location"].startswith(reverse("accounts:login"))

    lead.password = NEW_PASSWORD
    assert sign_in(Client(), lead).get(reverse("accounts:api_my_keys")).json()["key_version"] == 2


def test_it_accepts_a_reset_link_only_once(client, lead):
    path = reset_link(client, lead.user.email)
    assert post_json(client, path, reset_payload(lead)[0]).status_code == 200
    response = client.get(path)
    assert response.status_code == 410
    assert b"This password reset link has expired or has been used" in response.content
    response = post_json(Client(), path, make_enrolment(lead.user.public_id, "attacker's password")[0])
    assert response.status_code == 410
    assert response.json()["reason"] == "This password reset link has expired or has been used"
    assert lead.user.identity_keys.count() == 2


def test_it_refuses_a_reset_link_after_the_account_is_offboarded(client, lead, manager):
    path = reset_link(client, manager.user.email)
    professional_offboard(admin=lead.user, professional=manager.user)
    assert client.get(path).status_code == 410
    assert post_json(client, path, make_enrolment(manager.user.public_id, NEW_PASSWORD)[0]).status_code == 410


@pytest.mark.parametrize("path", ["/accounts/password-reset/MQ/not-a-token/", "/accounts/password-reset/!!/x-y/"])
def test_it_refuses_a_forged_reset_link(client, lead, path):
    assert client.get(path).status_code == 410
    assert post_json(client, path, make_enrolment(lead.user.public_id, NEW_PASSWORD)[0]).status_code == 410
    assert lead.user.identity_keys.count() == 1


def test_it_refuses_reset_keys_bound_to_another_account(client, lead):
    path = reset_link(client, lead.user.email)
    response = post_json(client, path, make_enrolment(uuid.uuid4(), NEW_PASSWORD)[0])
    assert response.status_code == 400
    assert "binding_signature does not verify" in response.json()["reason"]
    lead.user.refresh_from_db()
    assert not lead.user.needs_rekey
    assert lead.user.identity_keys.count() == 1
    # Nothing was used up: the link still works.
    assert post_json(client, path, reset_payload(lead)[0]).status_code == 200


# --- a reset needs the second factor --------------------------------------------------------------------
# The attack this stops: a site administrator changes a member's email address in the Django admin, asks
# for a reset link at the new address and completes it. The link alone no longer resets an account that
# has 2FA; only one whose 2FA its agency administrator reset (audited) resets without a code.


def reset(persona, otp_token: str, password: str = NEW_PASSWORD) -> crypto.Identity:
    """The service as the reset page's view calls it."""
    enrolment, identity = KeyEnrolment.from_password(password=password, public_id=persona.user.public_id,
                                                     opslimit=settings.TAC_KDF_OPSLIMIT,
                                                     memlimit=settings.TAC_KDF_MEMLIMIT)
    password_reset_complete(professional=persona.user, enrolment=enrolment, otp_token=otp_token)
    return identity


def account_state(user: Professional) -> tuple:
    """Everything a reset changes."""
    user.refresh_from_db()
    keys = list(user.identity_keys.order_by("version").values_list("version", "replaced_at", "sign_public"))
    return user.password, bytes(user.kdf_salt), user.needs_rekey, user.session_generation, keys


def wrong_code(persona) -> str:
    return f"{(int(persona.totp()) + 1) % 1_000_000:06d}"


def forgive_failures(user: Professional) -> None:
    """django-otp throttles a device for a while after a wrong code; move that moment into the past."""
    TOTPDevice.objects.filter(user=user).update(throttling_failure_timestamp=None, throttling_failure_count=0)


def test_it_resets_with_a_current_totp_code(lead, capture_events, django_capture_on_commit_callbacks):
    code = lead.totp()
    with django_capture_on_commit_callbacks(execute=True):
        identity = reset(lead, code)
    assert unwrap(lead.user, NEW_PASSWORD) == identity
    [event] = kinds("auth.password_reset")
    assert event.data == {"identity_key_version": 2, "second_factor": "totp"}
    assert capture_events == [(user_group(lead.user.pk), {"type": SESSION_REVOKED, "reason": "password reset"})]
    # django-otp accepts each code once: the same one cannot reset the account again.
    with pytest.raises(ValidationError, match="has been used"):
        reset(lead, code, "yet another passphrase")


def test_it_resets_with_a_backup_code_and_uses_it_up(lead):
    codes = backup_codes_regenerate(request=None, professional=lead.user)
    identity = reset(lead, f" {codes[3].upper()} ")  # as typed: spaces and capitals are forgiven
    assert unwrap(lead.user, NEW_PASSWORD) == identity
    left = set(StaticToken.objects.filter(device__user=lead.user).values_list("token", flat=True))
    assert left == set(codes) - {codes[3]}
    [event] = kinds("auth.password_reset")
    assert event.data == {"identity_key_version": 2, "second_factor": "backup_code"}
    before = account_state(lead.user)
    with pytest.raises(ValidationError, match="has been used"):
        reset(lead, codes[3], "yet another passphrase")
    assert account_state(lead.user) == before


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "no code"),
        ("   ", "no code"),
        ("wrong", "wrong code"),  # a wrong TOTP code (made in the test from the current one)
        ("zzzz2222", "wrong code"),  # a backup code the account never had
        ("colleague", "wrong code"),  # the current code of a colleague's authenticator
    ],
)
def test_it_refuses_a_missing_or_wrong_code_and_changes_nothing(
    lead, manager, token, reason, capture_events, django_capture_on_commit_callbacks
):
    backup_codes_regenerate(request=None, professional=lead.user)
    token = {"wrong": wrong_code(lead), "colleague": manager.totp()}.get(token, token)
    before = account_state(lead.user)
    tokens_before = StaticToken.objects.filter(device__user=lead.user).count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as refused:
        reset(lead, token)
    assert refused.value.code == OTP_REFUSED
    assert refused.value.messages == [RESET_CODE_REFUSALS[reason]]
    assert account_state(lead.user) == before
    assert unwrap(lead.user, lead.password)  # the old password still opens the old keys
    assert StaticToken.objects.filter(device__user=lead.user).count() == tokens_before
    assert capture_events == []  # no session ended
    assert kinds("auth.password_reset") == []
    [failed] = kinds("auth.password_reset_failed")
    assert (failed.actor_id, failed.target_id, failed.data) == (lead.user.pk, str(lead.user.pk), {"reason": reason})


def test_it_keeps_django_otps_throttle_across_refused_resets(lead):
    with pytest.raises(ValidationError):
        reset(lead, wrong_code(lead))
    # The refusal was committed with django-otp's record of the failure, so guesses slow down.
    assert lead.device.throttling_failure_count == 1
    TOTPDevice.objects.filter(user=lead.user).update(throttling_failure_count=5)  # a back-off of 16 s
    before = account_state(lead.user)
    with pytest.raises(ValidationError, match="Too many wrong codes in a row"):
        reset(lead, lead.totp())
    assert account_state(lead.user) == before
    assert [e.data for e in kinds("auth.password_reset_failed")] == [{"reason": "wrong code"}, {"reason": "throttled"}]
    forgive_failures(lead.user)
    identity = reset(lead, lead.totp())
    assert unwrap(lead.user, NEW_PASSWORD) == identity


def test_it_resets_without_a_code_an_account_whose_2fa_its_agency_admin_reset(lead, manager):
    two_factor_reset(admin=lead.user, professional=manager.user)
    identity = reset(manager, "")
    assert unwrap(manager.user, NEW_PASSWORD) == identity
    [event] = kinds("auth.password_reset")
    assert event.data == {"identity_key_version": 2, "second_factor": "none"}


def test_it_answers_a_wrong_or_missing_code_on_the_reset_page_with_400_json(client, lead):
    path = reset_link(client, lead.user.email)
    before = account_state(lead.user)
    for payload, reason in [
        (reset_payload(lead, otp_token=wrong_code(lead))[0], RESET_CODE_REFUSALS["wrong code"]),
        ({k: v for k, v in reset_payload(lead)[0].items() if k != "otp_token"}, RESET_CODE_REFUSALS["no code"]),
    ]:
        forgive_failures(lead.user)
        response = post_json(client, path, payload)
        assert response.status_code == 400
        assert response.json() == {"error": "otp_refused", "reason": reason}
        assert account_state(lead.user) == before
    response = post_json(client, path, reset_payload(lead, otp_token=123456)[0])
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "reason": "otp_token must be a string of at most 64 characters"}
    assert [e.data["reason"] for e in kinds("auth.password_reset_failed")] == ["wrong code", "no code"]
    assert all(e.ip == "127.0.0.1" for e in kinds("auth.password_reset_failed"))
    assert kinds("auth.password_reset") == []
    # Nothing was used up: with the right code the same link works.
    forgive_failures(lead.user)
    assert post_json(client, path, reset_payload(lead)[0]).status_code == 200


def test_it_asks_for_the_security_code_on_the_reset_page(client, lead):
    page = client.get(reset_link(client, lead.user.email)).content.decode()
    assert 'id="otp-token"' in page
    assert "Security code from your authenticator app, or a backup code" in page
    assert "data-tac-no-code-needed" not in page


def test_it_tells_an_account_without_2fa_that_no_code_is_needed(client, lead, manager):
    two_factor_reset(admin=lead.user, professional=manager.user)
    path = reset_link(client, manager.user.email)
    page = client.get(path).content.decode()
    assert 'id="otp-token"' not in page
    assert "you do not need a security code" in page
    payload, identity = make_enrolment(manager.user.public_id, NEW_PASSWORD)
    assert post_json(client, path, payload).status_code == 200
    assert unwrap(manager.user, NEW_PASSWORD) == identity
