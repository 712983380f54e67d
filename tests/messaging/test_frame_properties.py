"""Property-based: the websocket answers every frame a hostile client can send (tests/fuzz.py: arbitrary
JSON, huge integers, control characters, lone surrogates, deep nesting, and each valid frame type with
one field broken). The invariant: every answer is a well-formed frame, never a 1011 close (an exception
escaping the consumer, which channels' communicator re-raises), the socket keeps answering, and so does
another professional's socket beside it.

Each example opens both sockets afresh in its own event loop (channels' communicator lives in the loop
that made it). A frame that happens to be valid (a post, a read) is stored like any other: harmless to
the next example."""

from __future__ import annotations

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client as HttpClient
from hypothesis import given
from hypothesis import strategies as st

from messaging.consumers import CLOSE_FRAME_TOO_LARGE
from teamaroundchild.asgi import application
from tests.conftest import sign_in
from tests.fuzz import EDGE_INTS, JSON, RAW_FRAMES, TEXT, fuzz, mutated, well_formed_frame
from tests.messaging.test_consumers import TIMEOUT, headers

pytestmark = pytest.mark.django_db(transaction=True)

FRAME_IDS = st.one_of(st.none(), st.just("f1"), EDGE_INTS, TEXT, JSON)


@pytest.fixture
def world(pair):
    workspace, lead_client, gp_client = pair
    ws = str(workspace.public_id)
    frames = {
        "ping": {"type": "ping", "id": "p"},
        "subscribe": {"type": "subscribe", "id": "s", "workspace": ws, "after_seq": 0},
        "unsubscribe": {"type": "unsubscribe", "id": "u", "workspace": ws},
        "post.create": {"type": "post.create", "id": "c", "workspace": ws,
                        "post": gp_client.seal(workspace, "update", {"text": "fuzzed"})},
        "read": {"type": "read", "id": "r", "workspace": ws, "seq": 1},
    }
    sessions = {who: sign_in(HttpClient(), client.persona).cookies["sessionid"].value
                for who, client in (("gp", gp_client), ("lead", lead_client))}
    return frames, sessions


async def _open(session: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers(session))
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert ok
    assert json.loads((await communicator.receive_output(timeout=TIMEOUT))["text"])["type"] == "hello"
    return communicator


async def _answers_then_pong(communicator: WebsocketCommunicator) -> bool:
    """Read every answer up to a ping's pong; False if the server closed the socket (only for a frame over
    the size limit, after an error frame naming it)."""
    probe = f"probe-{uuid.uuid4()}"
    await communicator.send_json_to({"type": "ping", "id": probe})
    last = None
    while True:
        message = await communicator.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            assert message.get("code") == CLOSE_FRAME_TOO_LARGE, message
            assert last is not None and last.get("code") == "too_large", last
            return False
        last = well_formed_frame(message)
        if last == {"type": "pong", "id": probe}:
            return True


async def _exchange(sessions: dict[str, str], frames: list[str]) -> None:
    fuzzed, bystander = await _open(sessions["gp"]), await _open(sessions["lead"])
    try:
        for text in frames:
            # As a server receives it; channels' send_to refuses an empty text frame, which a client can send.
            await fuzzed.send_input({"type": "websocket.receive", "text": text})
            if not await _answers_then_pong(fuzzed):
                break
        assert await _answers_then_pong(bystander)
    finally:
        await fuzzed.disconnect()
        await bystander.disconnect()


def _text(frame) -> str:
    return json.dumps(frame) if not isinstance(frame, str) else frame


@pytest.mark.parametrize("frame_type", ["ping", "subscribe", "unsubscribe", "post.create", "read"])
@fuzz(max_examples=25)
@given(data=st.data())
def test_it_answers_any_variant_of_each_frame_type_with_a_well_formed_frame(world, frame_type, data):
    base_frames, sessions = world
    base = base_frames[frame_type]
    frame = data.draw(st.one_of(
        mutated(base),
        FRAME_IDS.map(lambda frame_id: {**base, "id": frame_id}),
    ), label="frame")
    async_to_sync(_exchange)(sessions, [_text(frame)])


@fuzz(max_examples=40)
@given(frames=st.lists(st.one_of(RAW_FRAMES, JSON.map(json.dumps)), min_size=1, max_size=4))
def test_it_answers_any_sequence_of_arbitrary_frames_and_keeps_serving(world, frames):
    _, sessions = world
    async_to_sync(_exchange)(sessions, frames)
