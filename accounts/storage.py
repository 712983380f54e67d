"""Hand-written statements of accounts (teamaroundchild/sql.py says why): the two every websocket
handshake runs, the stored session and then its user with whether the session's 2FA device is theirs
and confirmed. Built by the ORM they cost about 1.4 ms of CPU a handshake on the benchmark machine,
most of a reconnect's database work (BENCHMARKS.md, W5)."""

from __future__ import annotations

import functools
from datetime import datetime

from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Model

from teamaroundchild import sql

from .models import Professional


@functools.cache
def _session_sql() -> str:
    return (f"SELECT {sql.column(Session, 'session_data')} FROM {sql.table(Session)} "
            f"WHERE {sql.column(Session, 'session_key')} = %s AND {sql.column(Session, 'expire_date')} > %s")


def session_data(session_key: str, now: datetime) -> str | None:
    """The stored text of a session still in date, or None (Django's SessionStore.load reads the same)."""
    row = sql.fetch_one(_session_sql(), [session_key, sql.param(Session, "expire_date", now)])
    return row[0] if row is not None else None


def _user_fields() -> tuple[str, ...]:
    return tuple(f.attname for f in Professional._meta.concrete_fields)


@functools.lru_cache(maxsize=8)
def _user_and_device_sql(device_model: type[Model]) -> str:
    u, d = "u", "d"
    return (f"SELECT {', '.join(f'{u}.{sql.column(Professional, f)}' for f in _user_fields())}, "
            f"EXISTS (SELECT 1 FROM {sql.table(device_model)} {d} WHERE {d}.{sql.column(device_model, 'id')} = %s "
            f"AND {d}.{sql.column(device_model, 'user')} = {u}.{sql.column(Professional, 'id')} "
            f"AND {d}.{sql.column(device_model, 'confirmed')}) "
            f"FROM {sql.table(Professional)} {u} WHERE {u}.{sql.column(Professional, 'id')} = %s "
            f"AND {u}.{sql.column(Professional, 'is_active')}")


def fits(model: type[Model], pk: int) -> bool:
    """Whether `pk` is in the range of the model's integer primary key: SQLite refuses a parameter beyond
    its integers (OverflowError), where the ORM finds no row (tests/test_quick_start_sqlite.py)."""
    low, high = connection.ops.integer_field_range(model._meta.pk.get_internal_type())
    return (low is None or pk >= low) and (high is None or pk <= high)


def active_user_and_device(user_pk: int, device_model: type[Model], device_pk: int) -> tuple[Professional, bool] | None:
    """The active account with this primary key (every field loaded, as the ORM loads it), and whether
    the 2FA device `device_pk` of `device_model` is theirs and confirmed; None if there is no such
    active account. One statement."""
    if not (fits(Professional, user_pk) and fits(device_model, device_pk)):
        return None
    row = sql.fetch_one(_user_and_device_sql(device_model), [device_pk, user_pk])
    if row is None:
        return None
    *fields, confirmed = row
    return sql.instance(Professional, _user_fields(), fields), bool(confirmed)
