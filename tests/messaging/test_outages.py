"""Sessions and Redis outages (issue 9, item 3): a session ends whatever Redis does; an open socket ends
with its session, by a server-side timer, even when the client sends nothing and no event arrives; a
failed publish after commit is not a failed post; and sockets that stay open through an outage end with
every accepted post, once, in order, without reconnecting.

Outages are real: each test runs its own redis-server on a free port (the shared one serves other
suites), points the channel layer at it, and kills and restarts it."""

from __future__ import annotations

import asyncio
import socket as sockets
import subprocess
import time
from contextlib import asynccontextmanager

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.contrib.sessions.models import Session
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from accounts.services import sessions_end_all
from messaging import services
from messaging.models import Post
from tests.conftest import sign_in
from tests.messaging.factories import envelope
from tests.messaging.test_consumers import TIMEOUT, connected, session_id, socket
from tests.messaging.test_live import subscribe

pytestmark = pytest.mark.django_db(transaction=True)

RECHECK = 0.4  # seconds: the sockets' periodic check, short for the tests


class PrivateRedis:
    def __init__(self):
        with sockets.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with sockets.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def redis_outage(settings):
    redis = PrivateRedis()
    redis.start()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                           "CONFIG": {"hosts": [redis.url]}}}
    settings.TAC_SOCKET_RECHECK_SECONDS = RECHECK
    channel_layers.backends = {}
    yield redis
    redis.stop()
    channel_layers.backends = {}


@asynccontextmanager
async def live_socket(persona):
    async with socket(await session_id(persona)) as communicator:
        await connected(communicator, persona)
        yield communicator


async def frames_until(communicator, predicate, seconds: float) -> list[dict]:
    """Every post the socket receives until `predicate(posts)` holds, or `seconds` pass."""
    posts: list[dict] = []
    deadline = time.monotonic() + seconds
    while not predicate(posts) and time.monotonic() < deadline:
        try:
            frame = await communicator.receive_json_from(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        if frame["type"] == "post.created":
            posts.append(frame["post"])
        elif frame["type"] == "posts":
            posts.extend(frame["posts"])
    return posts


def test_signing_out_ends_the_session_even_with_redis_down(redis_outage, lead):
    client = sign_in(HttpClient(), lead)
    redis_outage.stop()
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get(reverse("frontend:home")).status_code == 302  # back to sign-in: the session is gone
    assert not Session.objects.exists()


def test_a_post_stored_while_redis_is_down_answers_success(redis_outage, pair, gp):
    workspace, _lead, gp_client = pair
    client = sign_in(HttpClient(), gp)
    redis_outage.stop()
    body = gp_client.seal(workspace, "update", {"text": "While Redis is down"})
    response = client.post(f"/api/v1/workspaces/{workspace.public_id}/posts", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Post.objects.filter(workspace=workspace, kind="update").exists()


async def test_a_silent_socket_ends_when_its_sessions_end_with_redis_down(redis_outage, pair, gp):
    workspace, _lead, _gp = pair
    async with live_socket(gp) as communicator:
        await subscribe(communicator, workspace)
        redis_outage.stop()  # no session.revoked event can arrive
        await database_sync_to_async(sessions_end_all)(professional=gp.user)
        frame = await communicator.receive_json_from(timeout=RECHECK * 5)
        assert frame == {"type": "session.revoked", "reason": "your session has ended"}
        assert (await communicator.receive_output(timeout=TIMEOUT))["type"] == "websocket.close"


async def test_a_socket_ends_when_its_session_expires_while_idle(redis_outage, pair, gp):
    workspace, _lead, gp_client = pair
    async with live_socket(gp) as communicator:
        await subscribe(communicator, workspace)
        await database_sync_to_async(Session.objects.update)(expire_date=timezone.now())
        frame = await communicator.receive_json_from(timeout=RECHECK * 5)
        assert frame["type"] == "session.revoked"
        assert (await communicator.receive_output(timeout=TIMEOUT))["type"] == "websocket.close"
    count = await database_sync_to_async(Post.objects.count)()
    async with socket(await session_id(gp)) as again:  # the frame path checks the stored session too
        await connected(again, gp)
        await database_sync_to_async(Session.objects.update)(expire_date=timezone.now())
        await asyncio.sleep(RECHECK * 1.5)
        body = await database_sync_to_async(gp_client.seal)(workspace, "update", {"text": "After expiry"})
        await again.send_json_to({"type": "post.create", "id": "p", "workspace": str(workspace.public_id), "post": body})
        outputs = [await again.receive_output(timeout=TIMEOUT) for _ in range(2)]
        assert any(o.get("type") == "websocket.close" for o in outputs), outputs
    assert await database_sync_to_async(Post.objects.count)() == count


async def test_open_sockets_get_every_post_accepted_during_a_redis_outage_once_in_order(redis_outage, pair, lead, gp):
    workspace, lead_client, gp_client = pair
    async with live_socket(lead) as lead_socket, live_socket(gp) as gp_socket:
        before = {c: await subscribe(c, workspace) for c in (lead_socket, gp_socket)}
        start = max(p["post"]["seq"] for p in before[lead_socket])
        made = []
        for n in range(6):
            if n == 2:
                redis_outage.stop()  # mid-burst
            if n == 4:
                redis_outage.start()
            result = await database_sync_to_async(services.post_create)(
                author=gp.user, workspace=workspace,
                envelope=envelope(await database_sync_to_async(gp_client.seal)(workspace, "update", {"text": f"#{n}"})))
            made.append(result.post.seq)
        for communicator in (lead_socket, gp_socket):
            got = await frames_until(communicator, lambda posts: len(posts) >= len(made), seconds=RECHECK * 20)
            assert [p["seq"] for p in got] == made == list(range(start + 1, start + 7))
            assert await communicator.receive_nothing(timeout=RECHECK * 3)  # and nothing twice
