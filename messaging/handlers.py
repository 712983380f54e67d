"""messaging's answers to what accounts announces (accounts/signals.py); connected in apps.py."""

from __future__ import annotations

from . import events
from .services import memberships_end_for_offboarding


def on_professional_offboarded(sender, *, professional, actor, request=None, **kwargs) -> None:
    """An offboarded professional leaves every workspace at once (each then needs a new key epoch)."""
    memberships_end_for_offboarding(professional=professional, actor=actor, request=request)


def on_sessions_revoked(sender, *, professional, payload: dict, **kwargs) -> None:
    """Close the sockets of the ended sessions, after commit (messaging/consumers.py acts on the event)."""
    events.send_event_on_commit(events.user_group(professional.pk), events.SESSION_REVOKED, payload)
