"""Working time, and when each clock runs out (oversight/README.md, "Clocks").

Timescales are settings (published MASH practice by default): a red concern must be answered within 4
hours around the clock, amber within 1 working day, green within 3. Working days skip weekends and the
bank holidays of the configured region (the `holidays` package; England and Wales by default). Every
moment is computed in the site's time zone (Europe/London) and stored in UTC.

"N working days after t" is the same time of day N working days later; a clock started on a weekend or
a bank holiday starts at 00:00 of the next working day, so an amber concern raised on Saturday morning
runs until the end of Monday."""

from __future__ import annotations

import datetime as dt
import functools

import holidays
from django.conf import settings
from django.utils import timezone


@functools.cache
def _calendar(country: str, subdiv: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdiv or None)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _calendar(settings.TAC_HOLIDAYS_COUNTRY, settings.TAC_HOLIDAYS_SUBDIV)


def _local(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment)


def _at_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def next_working_day(day: dt.date) -> dt.date:
    """The first working day after `day`."""
    day += dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def previous_working_day(day: dt.date) -> dt.date:
    """The last working day before `day`."""
    day -= dt.timedelta(days=1)
    while not is_working_day(day):
        day -= dt.timedelta(days=1)
    return day


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    local = _local(start)
    if not is_working_day(local.date()):
        day = next_working_day(local.date())
        local = _local(_at_midnight(day))
    day = local.date()
    for _ in range(days):
        day = next_working_day(day)
    # The same wall-clock time on that day (a change to or from summer time in between keeps the hour).
    return timezone.make_aware(dt.datetime.combine(day, local.time().replace(tzinfo=None)))


def concern_due(rag: str, started: dt.datetime) -> dt.datetime:
    """When a concern of this rating, whose clock started at `started`, must have been answered by."""
    hours = settings.TAC_CONCERN_CLOCK_HOURS.get(rag)
    if hours is not None:  # around the clock
        return started + dt.timedelta(hours=hours)
    return add_working_days(started, settings.TAC_CONCERN_CLOCK_WORKING_DAYS[rag])


def action_clock(due: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """(remind, breach, escalate) for an action due on `due`: the owner is reminded at the start of the
    working day before it is due, the owner and the lead are told at breach (the start of the day after
    the due date, when it is overdue), and the owner's managers one working day after that."""
    if due is None:
        return None, None, None
    remind_day = previous_working_day(due)
    remind = timezone.make_aware(dt.datetime.combine(remind_day, dt.time(settings.TAC_REMINDER_HOUR)))
    breach = _at_midnight(due + dt.timedelta(days=1))
    return remind, breach, add_working_days(breach, 1)
