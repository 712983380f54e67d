"""Scale-out as deployed (PRODUCT.md "Setup and services"): two daphne processes on one Redis channel layer
and one PostgreSQL database. A member connected to worker A posts; a member whose socket is held by worker
B receives it. Real sockets (the `websockets` library), sessions from the real sign-in views."""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial

import pytest
import websockets
from daphne.testing import DaphneProcess
from django.db import connections
from django.test import Client as HttpClient

from tests.conftest import _application, sign_in
from tests.messaging.factories import Client, join

WAIT = 10  # seconds: the longest any single step may take before the test fails instead of hanging


@pytest.fixture
def two_workers(transactional_db, django_db_blocker, settings):
    """Two daphne processes forked from this one (so on the test database and, with settings/test.py's
    per-run prefix, on this run's channel names), sharing the Redis layer."""
    assert "channels_redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"], "the test needs the Redis layer"
    # tests/conftest.py::_application runs in each child: fresh asgiref and channel-layer state after the fork.
    workers = [DaphneProcess("127.0.0.1", partial(_application)) for _ in range(2)]
    # Fork while pytest-django lets the database be used, and without open connections to share.
    with django_db_blocker.unblock():
        connections.close_all()
        for worker in workers:
            worker.start()
    try:
        deadline = time.monotonic() + WAIT * 2
        for worker in workers:
            while not worker.ready.wait(timeout=0.5):
                if not worker.is_alive() or time.monotonic() > deadline:
                    error = "" if worker.errors.empty() else worker.errors.get_nowait()[1]
                    raise RuntimeError(f"a daphne worker did not start: {error}")
        ports = [worker.port.value for worker in workers]
        assert ports[0] != ports[1]
        yield ports
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=WAIT)


async def frame_of_type(ws, wanted: str, **match) -> dict:
    """The next frame of that type (and those field values), skipping others; fails after WAIT seconds."""

    async def look():
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == wanted and all(frame.get(k) == v for k, v in match.items()):
                return frame

    return await asyncio.wait_for(look(), timeout=WAIT)


def connect(port: int, session: str):
    return websockets.connect(
        f"ws://127.0.0.1:{port}/ws/", origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": f"sessionid={session}"}, open_timeout=WAIT, close_timeout=WAIT,
    )


def test_it_delivers_a_post_sent_to_one_worker_to_a_socket_on_the_other(two_workers, lead, gp, custodian):
    port_a, port_b = two_workers
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Child D"})
    join(lead_client, workspace, gp_client)
    workspace.refresh_from_db()
    payload = gp_client.seal(workspace, "update", {"text": "across workers"})
    gp_session, lead_session = (sign_in(HttpClient(), p).cookies["sessionid"].value for p in (gp, lead))
    ws_id = str(workspace.public_id)

    async def scenario():
        async with connect(port_a, gp_session) as on_a, connect(port_b, lead_session) as on_b:
            for ws, persona in ((on_a, gp), (on_b, lead)):
                hello = await frame_of_type(ws, "hello")
                assert hello["user"] == str(persona.user.public_id)
                await ws.send(json.dumps({"type": "subscribe", "id": "s", "workspace": ws_id, "after_seq": 1}))
                assert (await frame_of_type(ws, "subscribed"))["last_seq"] == 1
            await on_a.send(json.dumps({"type": "post.create", "id": "p", "workspace": ws_id, "post": payload}))
            accepted = await frame_of_type(on_a, "post.accepted")
            assert (accepted["id"], accepted["seq"], accepted["created"]) == ("p", 2, True)
            # Worker B never saw the frame: the post reached it through Redis.
            created = await frame_of_type(on_b, "post.created")
            return accepted, created

    accepted, created = asyncio.run(asyncio.wait_for(scenario(), timeout=WAIT * 3))
    assert created["workspace"] == ws_id
    assert (created["post"]["seq"], created["post"]["post_id"]) == (accepted["seq"], payload["post_id"])
    assert {k: created["post"][k] for k in ("header", "nonce", "ciphertext", "signature")} == {
        k: payload[k] for k in ("header", "nonce", "ciphertext", "signature")}
    # And what arrived on B is a post the lead's client verifies and opens.
    [opened] = lead_client.read(workspace, after=1)
    assert opened.body == {"text": "across workers"}
