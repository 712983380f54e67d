"""The idle sign-out's endpoints (frontend/static/tac/idle.js): how long the session has left, asked
without restarting its idle clock, and "Stay signed in", which restarts it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

STATUS = reverse("accounts:api_session_status")
KEEP_ALIVE = reverse("accounts:api_session_keep_alive")


def stored_session(client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def age_session(client, seconds: int) -> Session:
    """As if the session had last been used `seconds` ago."""
    session = stored_session(client)
    session.expire_date = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - seconds)
    session.save()
    return session


def test_it_says_how_long_the_session_has_left_without_restarting_its_clock(client, lead):
    sign_in(client, lead)
    before = age_session(client, 600).expire_date
    response = client.get(STATUS)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response.json()["idle_seconds"] == settings.SESSION_COOKIE_AGE
    assert settings.SESSION_COOKIE_AGE - 600 - 5 < response.json()["seconds_left"] <= settings.SESSION_COOKIE_AGE - 600
    assert stored_session(client).expire_date == before
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_it_counts_the_session_s_own_limit(client, lead):
    sign_in(client, lead)
    session = client.session
    session.set_expiry(20)
    session.save()
    client.get(reverse("accounts:account"))  # any request restarts the clock, at the session's own limit
    answer = client.get(STATUS).json()
    assert answer["idle_seconds"] == 20
    assert 15 < answer["seconds_left"] <= 20


def test_it_restarts_the_idle_clock_when_asked_to_stay_signed_in(client, lead):
    sign_in(client, lead)
    before = age_session(client, 600).expire_date
    response = client.post(KEEP_ALIVE)
    assert response.status_code == 200
    assert response.json()["seconds_left"] == settings.SESSION_COOKIE_AGE
    assert stored_session(client).expire_date > before + timedelta(seconds=590)


def test_it_refuses_to_keep_alive_without_the_csrf_token(client, lead):
    sign_in(client, lead)
    client.handler.enforce_csrf_checks = True  # after signing in, which the test client does without a token
    assert client.post(KEEP_ALIVE).status_code == 403


def test_it_keeps_alive_by_post_only(client, lead):
    sign_in(client, lead)
    assert client.get(KEEP_ALIVE).status_code == 405
    assert client.post(STATUS).status_code == 405


def test_it_answers_401_for_an_ended_or_expired_session(client, lead):
    assert client.get(STATUS).status_code == 401
    assert client.post(KEEP_ALIVE).status_code == 401
    sign_in(client, lead)
    age_session(client, settings.SESSION_COOKIE_AGE + 1)
    assert client.get(STATUS).status_code == 401
    assert client.post(KEEP_ALIVE).status_code == 401


def test_it_answers_403_before_two_factor(client, lead):
    sign_in(client, lead, verify=False)
    assert client.get(STATUS).status_code == 403
    assert client.post(KEEP_ALIVE).status_code == 403
