"""Sign-in: the salt look-up, the auth key, lockout, idle expiry, sign-out and sign-out everywhere."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from messaging.events import SESSION_REVOKED, user_group
from tests.accounts.payloads import b64
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def prelogin(client, body) -> object:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(reverse("accounts:api_prelogin"), data, content_type="application/json")


def post_sign_in(client, email: str, auth_key: str):
    return client.post(reverse("accounts:login"), {"email": email, "auth_key": auth_key})


def kinds(kind: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind))


# --- prelogin ---------------------------------------------------------------------------------------------


def test_it_returns_the_real_salt_and_cost_for_an_existing_account(client, lead):
    response = prelogin(client, {"email": lead.user.email})
    assert response.status_code == 200
    assert response.json() == {
        "salt": b64(lead.user.kdf_salt),
        "opslimit": lead.user.kdf_opslimit,
        "memlimit": lead.user.kdf_memlimit,
        "alg": "argon2id13",
    }


def test_it_finds_the_account_whatever_the_case_and_spacing_of_the_email(client, lead):
    response = prelogin(client, {"email": "  LEAD@csc.Example "})
    assert response.json()["salt"] == b64(lead.user.kdf_salt)


def test_it_returns_a_stable_fake_salt_of_the_same_shape_for_an_unknown_email(client, lead):
    real = prelogin(client, {"email": lead.user.email}).json()
    fake = prelogin(client, {"email": "nobody@csc.example"})
    assert fake.status_code == 200
    fake = fake.json()
    assert set(fake) == set(real)
    assert len(base64.b64decode(fake["salt"], validate=True)) == 16
    assert fake["salt"] != real["salt"]
    assert (fake["opslimit"], fake["memlimit"], fake["alg"]) == (
        settings.TAC_KDF_OPSLIMIT, settings.TAC_KDF_MEMLIMIT, "argon2id13"
    )
    # Asking twice (or in another case) gives the same answer: repeated look-ups reveal nothing.
    assert prelogin(Client(), {"email": "nobody@csc.example"}).json() == fake
    assert prelogin(client, {"email": "NoBody@csc.example"}).json() == fake
    # Another unknown address gets another salt.
    assert prelogin(client, {"email": "somebody@csc.example"}).json()["salt"] != fake["salt"]


def test_it_derives_the_fake_salt_from_the_server_secret(client, settings):
    first = prelogin(client, {"email": "nobody@csc.example"}).json()["salt"]
    settings.SECRET_KEY = "another-server-entirely-" + "x" * 40
    assert prelogin(client, {"email": "nobody@csc.example"}).json()["salt"] != first


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        b"\xff\xfe",
        [],
        {},
        {"email": 42},
        {"email": "no-at-sign"},
        {"email": "a" * 250 + "@x.example"},
    ],
)
def test_it_refuses_bad_prelogin_input_with_a_reason(client, body):
    response = prelogin(client, body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "reason": "email must be an email address"}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@b\u0000c"},  # PostgreSQL refuses NUL in text: a 500 before
        {"email": "a@\ud800"},  # a lone surrogate cannot be encoded as UTF-8: a 500 before
        '{"email": "a@\\ud800"}',  # the same, as the JSON escape a hostile client sends
        {"email": "lead@csc\u001f.example"},
        {"email": ["lead@csc.example"]},
        "[" * 200_000,  # deeper than the parser's stack (RecursionError): a 500 before
        '{"email": ' * 50_000 + '"a@b"' + "}" * 50_000,
        "NaN",
        '{"email": "a@b", "n": ' + "9" * 5000 + "}",  # more digits than Python converts: a 500 before
    ],
    ids=["nul", "lone surrogate", "escaped lone surrogate", "control character", "list", "deep list",
         "deep object", "nan", "5000 digits"],
)
def test_it_answers_hostile_prelogin_input_with_400_and_a_reason(client, body):
    response = prelogin(client, body)
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": "invalid", "reason": "email must be an email address"}


def test_it_answers_a_prelogin_body_over_the_size_limit_in_json(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = prelogin(client, {"email": "a" * 2000 + "@csc.example"})
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "reason": "the request body is larger than the limit of 1000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)",
    }


def test_it_accepts_prelogin_only_as_a_post(client):
    assert client.get(reverse("accounts:api_prelogin")).status_code == 405


# --- the auth key -----------------------------------------------------------------------------------------


def test_it_signs_in_with_the_derived_auth_key_and_audits_it(client, lead):
    response = post_sign_in(client, lead.user.email, lead.auth_key())
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:two_factor"))
    assert client.session["_auth_user_id"] == str(lead.user.pk)
    [event] = kinds("auth.sign_in")
    assert event.actor_id == lead.user.pk
    assert event.ip == "127.0.0.1"


def test_it_refuses_a_wrong_auth_key_and_audits_the_failure(client, lead):
    wrong = lead.auth_key("not the password at all")
    response = post_sign_in(client, "Lead@csc.example", wrong)
    assert response.status_code == 400
    assert b"Enter the correct email address and password" in response.content
    assert "_auth_user_id" not in client.session
    [event] = kinds("auth.sign_in_failed")
    assert event.actor_label == "lead@csc.example"
    assert event.actor_id is None
    assert kinds("auth.sign_in") == []


def test_it_audits_failures_for_unknown_addresses_too(client):
    response = post_sign_in(client, "nobody@csc.example", "ab" * 32)
    assert response.status_code == 400
    [event] = kinds("auth.sign_in_failed")
    assert event.actor_label == "nobody@csc.example"


def test_it_never_accepts_the_password_itself(client, lead):
    response = post_sign_in(client, lead.user.email, lead.password)
    assert response.status_code == 400
    assert b"Your browser did not prepare the sign-in" in response.content
    assert "_auth_user_id" not in client.session
    # And the account's stored hash is of the auth key, not of the password.
    assert not lead.user.check_password(lead.password)
    assert lead.user.check_password(lead.auth_key())


def test_it_asks_for_the_missing_fields(client):
    response = client.post(reverse("accounts:login"), {"email": "", "auth_key": ""})
    assert response.status_code == 400
    assert b"Enter your email address" in response.content
    assert b"Enter your password" in response.content


def test_it_does_not_post_the_password_from_the_sign_in_form(client):
    html = client.get(reverse("accounts:login")).content.decode()
    assert 'name="auth_key"' in html
    assert 'name="password"' not in html


# --- lockout ----------------------------------------------------------------------------------------------


def test_it_locks_the_account_after_too_many_failures(client, lead):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    wrong = "ab" * 32
    for _ in range(limit - 1):
        assert post_sign_in(client, lead.user.email, wrong).status_code == 400
    response = post_sign_in(client, lead.user.email, wrong)
    assert response.status_code == 429
    assert b"Sign-in is locked for 15 minutes" in response.content
    assert b"too many failed attempts" in response.content
    assert kinds("auth.locked_out")
    assert kinds("auth.locked_out")[0].actor_label == lead.user.email

    # Even the right key is refused now, from this address or another.
    response = post_sign_in(client, lead.user.email, lead.auth_key())
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert post_sign_in(other, lead.user.email, lead.auth_key()).status_code == 429
    assert kinds("auth.sign_in") == []


def test_it_audits_each_locked_out_attempt_once(client, lead):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        post_sign_in(client, lead.user.email, "ab" * 32)
    assert len(kinds("auth.locked_out")) == 1
    post_sign_in(client, lead.user.email, lead.auth_key())
    assert len(kinds("auth.locked_out")) == 2


# An address is throttled, never locked: tests/accounts/test_lockout.py.


def test_it_forgets_earlier_failures_after_a_successful_sign_in(client, lead):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        post_sign_in(client, lead.user.email, "ab" * 32)
    assert post_sign_in(client, lead.user.email, lead.auth_key()).status_code == 302
    assert post_sign_in(Client(), lead.user.email, "ab" * 32).status_code == 400


# --- idle expiry ------------------------------------------------------------------------------------------


def test_it_expires_sessions_after_thirty_idle_minutes():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_it_extends_the_session_on_every_request(client, lead):
    sign_in(client, lead)
    key = client.session.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(minutes=1))
    assert client.get(reverse("frontend:home")).status_code == 200
    expiry = Session.objects.get(session_key=key).expire_date
    assert expiry > timezone.now() + timedelta(minutes=29)


def test_it_ends_a_session_left_idle(client, lead):
    sign_in(client, lead)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(reverse("frontend:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_it_sets_a_session_cookie_that_ends_with_the_browser(client, lead):
    response = client.post(reverse("accounts:login"), {"email": lead.user.email, "auth_key": lead.auth_key()})
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert not cookie["max-age"] and not cookie["expires"]


# --- sign out ---------------------------------------------------------------------------------------------


def test_it_signs_out(client, lead):
    sign_in(client, lead)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("frontend:home")).status_code == 302
    [event] = kinds("auth.sign_out")
    assert event.actor_id == lead.user.pk


def test_it_signs_out_a_password_only_session(client, lead):
    sign_in(client, lead, verify=False)
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_it_does_not_sign_out_with_a_get(client, lead):
    sign_in(client, lead)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.get(reverse("frontend:home")).status_code == 200


def test_it_signs_out_everywhere(client, lead, manager, capture_events, django_capture_on_commit_callbacks):
    other_device = sign_in(Client(), lead)
    colleague = sign_in(Client(), manager)
    sign_in(client, lead)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:sign_out_everywhere"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert capture_events == [
        (user_group(lead.user.pk), {"type": SESSION_REVOKED, "reason": "signed out everywhere"})
    ]
    for c in (client, other_device):
        response = c.get(reverse("frontend:home"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    # Only this account's sessions end.
    assert colleague.get(reverse("frontend:home")).status_code == 200
    lead.user.refresh_from_db()
    assert lead.user.session_generation == 1
    [event] = kinds("auth.sign_out_everywhere")
    assert event.actor_id == lead.user.pk
    # Signing in again starts a session of the new generation that works.
    assert sign_in(Client(), lead).get(reverse("frontend:home")).status_code == 200
