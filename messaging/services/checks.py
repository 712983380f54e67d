"""Checks several services share: the author's key fingerprint, a signed time against the server's clock, and a
new action's due date."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import IdentityKey
from tacprotocol import crypto
from tacprotocol.wire import (
    CLOCK_SKEW_MS,
    MAX_DUE_YEARS,
)

MAX_DUE_DAY = (dt.date.max - dt.date(1970, 1, 1)).days


def key_fingerprint(key: IdentityKey) -> bytes:
    return crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public))


def now_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def check_clock(ms: int, what: str) -> dt.datetime:
    skewed = ValidationError(f"the {what} time is more than 10 minutes from the server's clock; check this device's "
                             f"clock")
    if abs(ms - now_ms()) > CLOCK_SKEW_MS:
        raise skewed
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def due_date_checked(due_day: int, client_time: dt.datetime) -> dt.date:
    """A new action's due date, from today to two years ahead (in the site's time zone). "Today" is the
    server's or the day the post was signed on, whichever is earlier: a clock a few minutes behind
    around midnight still names yesterday."""
    if due_day > MAX_DUE_DAY:
        raise ValidationError("the action's due date is after the year 9999")
    due = dt.date(1970, 1, 1) + dt.timedelta(days=due_day)
    today = min(timezone.localdate(), timezone.localdate(client_time))
    if due < today:
        raise ValidationError(f"the action's due date ({due.isoformat()}) is in the past: choose today or later")
    if due > years_after(today, MAX_DUE_YEARS):
        raise ValidationError(f"the action's due date ({due.isoformat()}) is more than {MAX_DUE_YEARS} years ahead")
    return due


def years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
