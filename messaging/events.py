"""Events the server pushes through the channel layer, and the groups they go to.

Groups are built from ids only (`user.<id>`, `workspace.<id>`), never from user text. Events are sent
only after the transaction that caused them commits, so a socket never hears of a change that rolled
back. Event types are dotted on the wire (`session.revoked`) and handled by the consumer method of the
same name with underscores (`session_revoked`).
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

SESSION_REVOKED = "session.revoked"
POST_CREATED = "post.created"
EPOCH_CREATED = "epoch.created"
MEMBERSHIP_INVITED = "membership.invited"
MEMBERSHIP_ACCEPTED = "membership.accepted"
MEMBERSHIP_ENDED = "membership.ended"
MEMBERSHIP_CHANGED = "membership.changed"
KEYS_ADDED = "keys.added"
KEY_CONFIRMED = "key.confirmed"
WORKSPACE_CHANGED = "workspace.changed"


def user_group(user_id: int) -> str:
    return f"user.{int(user_id)}"


def workspace_group(workspace_id: int) -> str:
    return f"workspace.{int(workspace_id)}"


# Set while a websocket consumer's database call runs (call_collecting_events): events committed in it
# are handed back to the consumer instead of sent from the database thread.
_collecting: ContextVar[list | None] = ContextVar("tac_collecting_events", default=None)


def send_event_on_commit(group: str, event_type: str, payload: dict[str, Any]) -> None:
    message = {"type": event_type, **payload}
    if getattr(settings, "TAC_EVENTS_ROUNDTRIP_JSON", False):
        # In tests: an unserialisable payload fails here, at the service, not later in a consumer.
        message = json.loads(json.dumps(message))

    # Looked up at commit time, so tests can capture deliveries (tests/conftest.py::capture_events).
    transaction.on_commit(lambda: deliver(group, message))


def deliver(group: str, message: dict[str, Any]) -> None:
    pending = _collecting.get()
    if pending is not None:
        pending.append((group, message))
        return
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(publish)(layer, group, message)


async def publish(layer, group: str, message: dict[str, Any]) -> bool:
    """Send an event; a failure (Redis down) is logged, never raised. The change it announces has
    committed already: a post is stored, a session has ended. Open sockets catch up from the database on
    their next check (consumers.SocketWatch), so nothing is lost, only late."""
    try:
        await layer.group_send(group, message)
    except Exception:  # the layer's errors are not one class (redis-py's, OSError, timeouts)
        logger.warning("could not publish a %s event to %s; sockets will catch up from the database",
                       message.get("type"), group, exc_info=True)
        return False
    return True


def call_collecting_events(fn, /, **kwargs) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """Run a service and return (its result, the events it committed), for a websocket consumer to send
    from the event loop it already runs on. Sent from the database thread, each event would hold that
    thread (which every socket of the process shares) until the busy event loop had published it."""
    pending: list[tuple[str, dict[str, Any]]] = []
    token = _collecting.set(pending)
    try:
        return fn(**kwargs), pending
    finally:
        _collecting.reset(token)
