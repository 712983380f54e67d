"""The PostgreSQL backend's health check (teamaroundchild/postgresql/base.py): a connection that answered
within TAC_DB_HEALTH_CHECK_SKIP_SECONDS is reused without Django's `SELECT 1`; one idle for longer is
checked, so a connection PostgreSQL dropped while idle is replaced before use. Each "request" here is what
channels' database_sync_to_async does around every database call a websocket makes."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, close_old_connections, connection, connections

from teamaroundchild.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)


def request() -> int:
    """One request's statement; the connection's backend pid."""
    close_old_connections()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
    finally:
        close_old_connections()


@pytest.fixture
def checks(monkeypatch):
    """A persistent, health-checked connection, as in production; the list of health checks it runs."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    made, real = [], connection.is_usable

    def is_usable():
        made.append(1)
        return real()

    monkeypatch.setattr(connection, "is_usable", is_usable)
    yield made
    connection.close()


def terminate(pid: int) -> None:
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "host", "port", "password")},
                         autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_the_database_is_djangos_postgresql_with_this_health_check():
    assert isinstance(connections["default"], DatabaseWrapper) and connection.vendor == "postgresql"


def test_a_connection_that_answered_a_moment_ago_is_reused_unchecked(checks):
    first = request()
    checks.clear()
    assert [request() for _ in range(5)] == [first] * 5
    assert checks == []


def test_a_connection_idle_for_longer_is_checked(checks, settings):
    request()
    checks.clear()
    settings.TAC_DB_HEALTH_CHECK_SKIP_SECONDS = 0
    request()
    assert checks == [1]


def test_a_connection_dropped_while_idle_is_replaced_before_use(checks, settings):
    first = request()
    terminate(first)
    settings.TAC_DB_HEALTH_CHECK_SKIP_SECONDS = 0  # idle for longer than the skip
    assert request() != first
    assert checks == [1]


def test_dropped_within_the_skip_one_call_fails_and_the_next_reconnects(checks, settings):
    """The price, stated: a connection PostgreSQL drops within a second of answering fails the one call
    that uses it (as it would have failed anyway had it dropped a moment after the check); Django closes
    it after that call and the next one gets a new connection."""
    assert django_settings.TAC_DB_HEALTH_CHECK_SKIP_SECONDS == 1.0
    settings.TAC_DB_HEALTH_CHECK_SKIP_SECONDS = 60  # "within the skip" however slow this machine is today
    first = request()
    terminate(first)
    with pytest.raises(OperationalError):
        request()
    assert request() != first
