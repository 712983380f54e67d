"""The live badge over the page's websocket, driven through the real ASGI application and the Redis
channel layer (as tests/messaging/test_consumers.py): a notification's count reaches its recipient's
sockets and nobody else's, and carries the count alone."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from messaging.events import user_group
from notifications import services
from notifications.models import Notification
from tests.messaging.factories import Client, join
from tests.messaging.test_consumers import TIMEOUT, connected, session_id, socket

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_tells_the_recipients_sockets_and_no_one_elses(lead, gp, outsider):
    gp_session, lead_session, outsider_session = (await session_id(gp), await session_id(lead),
                                                  await session_id(outsider))
    async with socket(gp_session) as gp_socket, socket(gp_session) as gp_other_tab, \
            socket(lead_session) as lead_socket, socket(outsider_session) as outsider_socket:
        for communicator, persona in ((gp_socket, gp), (gp_other_tab, gp), (lead_socket, lead),
                                      (outsider_socket, outsider)):
            await connected(communicator, persona)

        await database_sync_to_async(services.notify)(recipients=[gp.user], kind=Notification.Kind.ACTION_DUE,
                                                      subject="action-1")
        for communicator in (gp_socket, gp_other_tab):
            assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "notification.created",
                                                                               "unread": 1}
        await database_sync_to_async(services.notifications_mark_read)(professional=gp.user)
        for communicator in (gp_socket, gp_other_tab):
            assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "notifications.read", "unread": 0}
        assert await lead_socket.receive_nothing(timeout=1)
        assert await outsider_socket.receive_nothing(timeout=1)


async def test_it_counts_an_action_assigned_to_the_owner_live(lead, gp, custodian):
    lead_client, gp_client = await database_sync_to_async(lambda: (Client(lead, custodian), Client(gp, custodian)))()

    def team():
        workspace = lead_client.create_workspace({"name": "Robin Example"})
        join(lead_client, workspace, gp_client)  # the invitation is the GP's first notification
        return workspace

    workspace = await database_sync_to_async(team)()
    async with socket(await session_id(gp)) as gp_socket, socket(await session_id(lead)) as lead_socket:
        await connected(gp_socket, gp)
        await connected(lead_socket, lead)
        await database_sync_to_async(lead_client.post)(workspace, "action", {"title": "Book the review", "detail": ""},
                                                       owner=gp.user.public_id, status="open")
        assert await gp_socket.receive_json_from(timeout=TIMEOUT) == {"type": "notification.created", "unread": 2}
        assert await lead_socket.receive_nothing(timeout=1)


async def test_it_forwards_the_count_and_nothing_else(gp):
    """Whatever else an event to the group might carry, the socket sends the browser the count alone."""
    async with socket(await session_id(gp)) as gp_socket:
        await connected(gp_socket, gp)
        await get_channel_layer().group_send(user_group(gp.user.pk), {
            "type": "notification.created", "unread": 3, "reference": "TAC-2026-0001", "rag": "red"})
        assert await gp_socket.receive_json_from(timeout=TIMEOUT) == {"type": "notification.created", "unread": 3}
