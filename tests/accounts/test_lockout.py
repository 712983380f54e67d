"""Lockout by account, and a throttle (never a lock) on an address that fails at many accounts.

A council's or a hospital's staff share one NAT address: five wrong passwords for one of them must not
lock out the rest, so django-axes locks the account only. An address that sprays guesses across many
accounts is slowed down instead (accounts/throttle.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

WRONG = "ab" * 32
COUNCIL_NAT = "198.51.100.20"


def post_sign_in(client, email: str, auth_key: str):
    return client.post(reverse("accounts:login"), {"email": email, "auth_key": auth_key})


def lock_out(persona, address: str = COUNCIL_NAT) -> None:
    client = Client(REMOTE_ADDR=address)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert post_sign_in(client, persona.user.email, WRONG).status_code == 400
    assert post_sign_in(client, persona.user.email, WRONG).status_code == 429


def spray(address: str, accounts: int) -> None:
    client = Client(REMOTE_ADDR=address)
    for i in range(accounts):
        assert post_sign_in(client, f"guess{i}@csc.example", WRONG).status_code == 400


def move_clock_forward(seconds: float) -> None:
    """As if `seconds` had passed since every failure so far (axes stamps the latest one per record)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


# --- by account -------------------------------------------------------------------------------------------


def test_it_lets_a_colleague_sign_in_from_the_address_of_a_locked_account(lead, gp):
    lock_out(lead)
    response = post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), gp.user.email, gp.auth_key())
    assert response.status_code == 302
    assert AuditEvent.objects.filter(kind="auth.sign_in", actor_id=gp.user.pk, ip=COUNCIL_NAT).exists()


def test_it_keeps_a_locked_account_locked_from_every_address(lead, gp):
    lock_out(lead)
    assert post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), gp.user.email, gp.auth_key()).status_code == 302
    for address in [COUNCIL_NAT, "192.0.2.7", "2001:db8::7"]:
        client = Client(REMOTE_ADDR=address)
        response = post_sign_in(client, lead.user.email, lead.auth_key())
        assert response.status_code == 429, address
        assert b"Sign-in is locked for 15 minutes" in response.content
        assert b"too many failed attempts to sign in to this account." in response.content
        assert b"network" not in response.content
        assert "_auth_user_id" not in client.session


def test_it_counts_an_accounts_failures_from_every_address_and_browser(lead):
    """Why axes.W006 is silenced (settings/base.py): rotating address or browser does not reset the count."""
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        client = Client(REMOTE_ADDR=f"192.0.2.{i + 1}", HTTP_USER_AGENT=f"Browser {i}")
        assert post_sign_in(client, lead.user.email, WRONG).status_code == 400
    client = Client(REMOTE_ADDR="192.0.2.99", HTTP_USER_AGENT="Yet another browser")
    assert post_sign_in(client, lead.user.email, WRONG).status_code == 429
    assert post_sign_in(Client(REMOTE_ADDR="192.0.2.100"), lead.user.email, lead.auth_key()).status_code == 429


def test_it_does_not_throttle_an_address_for_one_account_failing(lead, gp):
    """Many failures at one account lock that account: they say nothing about the address."""
    lock_out(lead)
    client = Client(REMOTE_ADDR=COUNCIL_NAT)
    for _ in range(3 * settings.AXES_FAILURE_LIMIT):
        assert post_sign_in(client, lead.user.email, WRONG).status_code == 429
    assert post_sign_in(client, gp.user.email, gp.auth_key()).status_code == 302


# --- the address throttle ---------------------------------------------------------------------------------


def test_it_throttles_an_address_that_fails_at_many_accounts(gp):
    accounts, delay = settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS, settings.TAC_SIGN_IN_ADDRESS_DELAY_SECONDS
    assert (accounts, delay) == (10, 30)
    spray(COUNCIL_NAT, accounts)

    # The next attempt from that address is not even checked: a clear 429 that says how long to wait.
    client = Client(REMOTE_ADDR=COUNCIL_NAT)
    response = post_sign_in(client, gp.user.email, gp.auth_key())
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= delay
    assert b"Too many failed sign-ins from your network" in response.content
    assert f"Wait {response['Retry-After']} seconds".encode() in response.content
    assert "_auth_user_id" not in client.session
    # The refused attempt is not a failure of the GP's account.
    assert not AccessAttempt.objects.filter(username=gp.user.email).exists()

    # Elsewhere the GP is not affected.
    assert post_sign_in(Client(REMOTE_ADDR="192.0.2.8"), gp.user.email, gp.auth_key()).status_code == 302

    # Slowed, never locked for good: once the delay has passed, a correct password from the address works.
    move_clock_forward(delay)
    assert post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), gp.user.email, gp.auth_key()).status_code == 302


def test_it_checks_one_password_per_delay_from_a_throttled_address():
    delay = settings.TAC_SIGN_IN_ADDRESS_DELAY_SECONDS
    spray(COUNCIL_NAT, settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS)
    client = Client(REMOTE_ADDR=COUNCIL_NAT)
    assert post_sign_in(client, "another@csc.example", WRONG).status_code == 429
    move_clock_forward(delay)
    # One more guess is checked (and fails), then the address waits again.
    assert post_sign_in(client, "another@csc.example", WRONG).status_code == 400
    assert post_sign_in(client, "yet-another@csc.example", WRONG).status_code == 429


def test_it_does_not_throttle_an_address_below_the_threshold(gp):
    spray(COUNCIL_NAT, settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS - 1)
    assert post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), gp.user.email, gp.auth_key()).status_code == 302


def test_it_forgets_an_address_after_the_cool_off(gp):
    spray(COUNCIL_NAT, settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS)
    move_clock_forward(settings.AXES_COOLOFF_TIME.total_seconds())
    # A new failure now counts on its own: the earlier spray has expired.
    assert post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), "late@csc.example", WRONG).status_code == 400
    assert post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), gp.user.email, gp.auth_key()).status_code == 302


# --- what the lockout records keep ------------------------------------------------------------------------


def test_it_never_stores_an_auth_key_in_the_lockout_records(lead):
    """django-axes keeps the POST data of failed attempts; the auth key is the account's password as far
    as the server is concerned (a locked account's correct key is a failure too)."""
    lock_out(lead)
    post_sign_in(Client(REMOTE_ADDR=COUNCIL_NAT), lead.user.email, lead.auth_key())
    stored = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "auth_key=" in stored
    assert WRONG not in stored
    assert lead.auth_key() not in stored


def test_it_counts_failures_under_the_peer_address_whatever_the_headers_say(lead):
    """Behind the shipped nginx, teamaroundchild/proxy.py sets the peer address; a header is never read."""
    client = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.2.3", HTTP_X_REAL_IP="10.1.2.4")
    post_sign_in(client, lead.user.email, WRONG)
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.9"]
    assert list(AuditEvent.objects.filter(kind="auth.sign_in_failed").values_list("ip", flat=True)) == ["203.0.113.9"]
