"""Words for the dashboards' figures: durations, shares and an action's status."""

from __future__ import annotations

from django import template

register = template.Library()

STATUS_WORDS = {"open": "Open", "accepted": "Accepted", "reopened": "Reopened", "done": "Done",
                "confirmed": "Confirmed", "cancelled": "Cancelled"}


def _unit(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@register.filter
def duration(seconds) -> str:
    """45 minutes; 2 hours 5 minutes; 3 days 4 hours. Two units at most, rounded to the minute."""
    if seconds is None:
        return ""
    minutes = round(float(seconds) / 60)
    if minutes < 1:
        return "less than a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return " ".join([_unit(days, "day")] + ([_unit(hours, "hour")] if hours else []))
    if hours:
        return " ".join([_unit(hours, "hour")] + ([_unit(minutes, "minute")] if minutes else []))
    return _unit(minutes, "minute")


@register.filter
def percent(share) -> str:
    return "" if share is None else f"{round(share * 100)}%"


@register.filter
def action_status(status: str) -> str:
    return STATUS_WORDS.get(status, status.capitalize())
