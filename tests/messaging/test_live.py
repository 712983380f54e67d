"""The live thread over the websocket (PRODUCT.md "The live thread"), through the real ASGI application
(Origin check, session cookie, 2FA check, routing), the real services and the Redis channel layer.
Sessions come from the real sign-in views. Every communicator is disconnected (tests/messaging/
test_consumers.py::socket)."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db.models import F

from messaging import consumers, selectors, services
from messaging.models import Membership, Post, Workspace
from tacprotocol.workspace import open_post
from tests.messaging.factories import Client, flip, join
from tests.messaging.test_consumers import TIMEOUT, connected, session_id, socket

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 0.5  # how long "nothing arrives" is watched for, after the event that would have come has come


async def db(fn, *args, **kwargs):
    return await database_sync_to_async(fn)(*args, **kwargs)


def sub_frame(workspace, after_seq: int = 0, frame_id="s1") -> dict:
    return {"type": "subscribe", "id": frame_id, "workspace": str(workspace.public_id), "after_seq": after_seq}


async def subscribe_frames(communicator: WebsocketCommunicator, workspace, after_seq: int = 0) -> list[dict]:
    """Subscribe and return the backlog's `posts` frames, checking that `subscribed` closes it with the
    last seq."""
    await communicator.send_json_to(sub_frame(workspace, after_seq))
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=TIMEOUT)
        if frame["type"] == "subscribed":
            assert frame == {"type": "subscribed", "id": "s1", "workspace": str(workspace.public_id),
                             "last_seq": frames[-1]["posts"][-1]["seq"] if frames else after_seq}
            return frames
        assert frame["type"] == "posts" and frame["workspace"] == str(workspace.public_id), frame
        assert frame["posts"], "a posts frame is never empty"
        frames.append(frame)


def one_per_post(frames: list[dict]) -> list[dict]:
    return [{"type": "post.created", "workspace": f["workspace"], "post": post} for f in frames for post in f["posts"]]


async def subscribe(communicator: WebsocketCommunicator, workspace, after_seq: int = 0) -> list[dict]:
    """Subscribe and return the backlog, one post.created-shaped frame per post."""
    return one_per_post(await subscribe_frames(communicator, workspace, after_seq))


async def still_open(communicator: WebsocketCommunicator, frame_id="alive") -> None:
    await communicator.send_json_to({"type": "ping", "id": frame_id})
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": frame_id}


def post_frame(workspace, payload: dict, frame_id="p1") -> dict:
    return {"type": "post.create", "id": frame_id, "workspace": str(workspace.public_id), "post": payload}


async def nothing_more(*communicators: WebsocketCommunicator) -> None:
    for c in communicators:
        assert await c.receive_nothing(timeout=QUIET), await c.receive_output()


# --- subscribing ----------------------------------------------------------------------------------------


def known_to_this_process(workspace, known: bool) -> None:
    """A subscribe joins the group before its membership check and first page when the process knows the
    workspace's pk (consumers.WORKSPACE_PKS), after them when it does not: tests that cover both."""
    if known:
        consumers.WORKSPACE_PKS[str(workspace.public_id)] = workspace.pk
    else:
        consumers.WORKSPACE_PKS.pop(str(workspace.public_id), None)


@pytest.fixture
def group_calls(monkeypatch):
    """Every socket's group joins and leaves, as (user pk, action, group)."""
    calls = []
    real = consumers.LiveConsumer._group

    async def recorded(self, action, group):
        calls.append((self.user.pk, action, group))
        await real(self, action, group)

    monkeypatch.setattr(consumers.LiveConsumer, "_group", recorded)
    return calls


@pytest.mark.parametrize("known", [False, True], ids=["workspace new to the process", "workspace known"])
@pytest.mark.parametrize("who", ["outsider", "manager"])
async def test_it_refuses_a_subscription_from_a_non_member_and_keeps_the_socket(pair, outsider, manager, lead, who,
                                                                                known, group_calls):
    workspace, lead_client, _ = pair
    persona = {"outsider": outsider, "manager": manager}[who]
    async with socket(await session_id(persona)) as stranger, socket(await session_id(lead)) as lead_socket:
        await connected(stranger, persona)
        await connected(lead_socket, lead)
        await subscribe(lead_socket, workspace, after_seq=1)
        known_to_this_process(workspace, known)
        await stranger.send_json_to(sub_frame(workspace))
        answer = await stranger.receive_json_from(timeout=TIMEOUT)
        assert answer == {"type": "error", "code": "forbidden", "id": "s1",
                          "reason": "no such workspace, or you are not a member"}
        # A workspace that does not exist gets the very same answer: an outsider learns nothing.
        await stranger.send_json_to({**sub_frame(workspace), "workspace": str(uuid.uuid4())})
        assert await stranger.receive_json_from(timeout=TIMEOUT) == answer
        await still_open(stranger)
        # And the thread never reaches them.
        await db(lead_client.post, workspace, "update", {"text": "members only"})
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["type"] == "post.created"
        await nothing_more(stranger)
        # Nor does its group: joined before the check only where the process knew the workspace, and left.
        theirs = [(action, group) for user, action, group in group_calls if user == persona.user.pk]
        group = f"workspace.{workspace.pk}"
        assert theirs.count(("add", group)) == theirs.count(("discard", group)) == (1 if known else 0)


async def test_a_subscription_to_a_workspace_the_process_knows_is_one_database_call(pair, gp, monkeypatch):
    """The membership check and the first backlog page in one trip to the database thread, after the
    group is joined (the reconnect's cost: BENCHMARKS.md, W5); two trips for a workspace new to the process."""
    workspace, lead_client, _ = pair
    await db(_post_many, lead_client, workspace, 3, 0)
    calls = []
    real = consumers.database_sync_to_async

    def counted(fn):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return real(fn)

    monkeypatch.setattr(consumers, "database_sync_to_async", counted)
    for known, trips in ((False, 2), (True, 1)):
        known_to_this_process(workspace, known)
        async with socket(await session_id(gp)) as communicator:
            await connected(communicator, gp)
            calls.clear()
            backlog = await subscribe(communicator, workspace, after_seq=1)
            assert [f["post"]["seq"] for f in backlog] == [2, 3, 4]
            assert len(calls) == trips, calls


async def test_it_refuses_a_subscription_from_an_invited_professional(lead, outsider, custodian):
    lead_client = await db(Client, lead, custodian)
    workspace = await db(lead_client.create_workspace)
    await db(lead_client.invite, workspace, outsider.user)
    async with socket(await session_id(outsider)) as invited:
        await connected(invited, outsider)
        await invited.send_json_to(sub_frame(workspace))
        assert (await invited.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"
        await still_open(invited)


async def test_it_walks_a_newcomers_open_socket_from_invitation_to_the_thread(lead, gp, custodian):
    lead_client = await db(Client, lead, custodian)
    workspace = await db(lead_client.create_workspace, {"name": "Child E"})
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        await db(lead_client.invite, workspace, gp.user)
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "membership.invited", "workspace": str(workspace.public_id), "reference": workspace.reference}
        # The invitation is also a notification: the badge's count, nothing more.
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "notification.created", "unread": 1}
        await db(services.membership_respond, professional=gp.user, workspace=workspace, accept=True)
        await communicator.send_json_to(sub_frame(workspace))  # accepted, but no key yet
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"
        await db(lead_client.rotate, workspace)
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "keys.added", "workspace": str(workspace.public_id)}
        assert await subscribe(communicator, workspace) == []  # the details are history not shared
        await db(lead_client.post, workspace, "update", {"text": "welcome"})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["post"]["seq"] == 2


async def test_it_sends_a_member_only_the_backlog_of_epochs_they_hold(pair, gp):
    workspace, lead_client, _ = pair
    await db(lead_client.post, workspace, "update", {"text": "one"})
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        backlog = await subscribe(communicator, workspace)
        # seq 1 (the child's details, epoch 1) is history not shared with the GP.
        assert [f["post"]["seq"] for f in backlog] == [2]


# --- posting --------------------------------------------------------------------------------------------


async def test_it_accepts_a_post_frame_and_fans_it_out_to_every_subscribed_member(pair, lead, gp, manager, custodian):
    workspace, lead_client, gp_client = pair
    manager_client = await db(Client, manager, custodian)
    await db(join, lead_client, workspace, manager_client)
    async with socket(await session_id(lead)) as lead_socket, socket(await session_id(gp)) as gp_socket, \
            socket(await session_id(manager)) as manager_socket:
        for communicator, persona in ((lead_socket, lead), (gp_socket, gp), (manager_socket, manager)):
            await connected(communicator, persona)
            await subscribe(communicator, workspace, after_seq=1)
        payload = await db(gp_client.seal, workspace, "concern", {"detail": "Not brought to clinic"}, rag="amber")
        await gp_socket.send_json_to(post_frame(workspace, payload, "frame-7"))

        accepted = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert accepted == {"type": "post.accepted", "id": "frame-7", "workspace": str(workspace.public_id),
                            "seq": 2, "post_id": payload["post_id"], "created": True}
        for communicator in (lead_socket, gp_socket, manager_socket):
            created = await communicator.receive_json_from(timeout=TIMEOUT)
            assert created["type"] == "post.created" and created["workspace"] == str(workspace.public_id)
            assert created["post"]["seq"] == 2 and created["post"]["post_id"] == payload["post_id"]
            assert {k: created["post"][k] for k in ("header", "nonce", "ciphertext", "signature")} == {
                k: payload[k] for k in ("header", "nonce", "ciphertext", "signature")}
        await nothing_more(lead_socket, gp_socket, manager_socket)

    # What went over the socket is what every reader verifies and opens.
    opened = open_post(created["post"], await db(lead_client.keys, workspace))
    assert opened.body == {"detail": "Not brought to clinic"} and opened.header.rag == "amber"


async def test_it_takes_a_resent_post_frame_as_one_post(pair, lead, gp):
    workspace, lead_client, gp_client = pair
    async with socket(await session_id(lead)) as lead_socket, socket(await session_id(gp)) as gp_socket:
        await connected(lead_socket, lead)
        await connected(gp_socket, gp)
        await subscribe(lead_socket, workspace, after_seq=1)
        payload = await db(gp_client.seal, workspace, "update", {"text": "did this arrive?"})
        await gp_socket.send_json_to(post_frame(workspace, payload, "first"))
        first = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert (first["type"], first["created"]) == ("post.accepted", True)
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["post"]["seq"] == first["seq"]

        await gp_socket.send_json_to(post_frame(workspace, payload, "again"))
        again = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert again == {**first, "id": "again", "created": False}
        # No second broadcast: the next thing the lead hears is the next post, not the same one again.
        await db(lead_client.post, workspace, "update", {"text": "marker"})
        marker = await lead_socket.receive_json_from(timeout=TIMEOUT)
        assert marker["post"]["seq"] == first["seq"] + 1
        await nothing_more(lead_socket)
    assert await db(lambda: Post.objects.filter(post_id=payload["post_id"]).count()) == 1


async def test_it_answers_a_refused_post_frame_with_an_error_and_stays_open(pair, gp):
    workspace, lead_client, gp_client = pair
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        tampered = flip(await db(gp_client.seal, workspace, "update", {"text": "x"}), "ciphertext")
        await communicator.send_json_to(post_frame(workspace, tampered, "bad-sig"))
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "invalid", "id": "bad-sig", "reason": "the post signature does not verify"}
        stale = await db(gp_client.seal, workspace, "update", {"text": "x"})
        await db(lead_client.rotate, workspace)
        await communicator.send_json_to(post_frame(workspace, stale, "stale"))
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "conflict", "id": "stale",
            "reason": "posts go in the current key epoch (3), not 2"}
        await still_open(communicator)


async def test_it_answers_a_frame_during_a_database_outage_with_a_reason_and_takes_the_resend(
        pair, gp, monkeypatch):
    from django.db import OperationalError

    workspace, _, gp_client = pair
    real_post_create = services.post_create

    def post_create_with_the_database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "post_create", post_create_with_the_database_gone)
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        sealed = await db(gp_client.seal, workspace, "update", {"text": "during the outage"})
        await communicator.send_json_to(post_frame(workspace, sealed, "p1"))
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "unavailable", "id": "p1",
            "reason": "the server could not reach its database; nothing was changed, send it again"}
        monkeypatch.setattr(services, "post_create", real_post_create)
        await communicator.send_json_to(post_frame(workspace, sealed, "p1"))
        accepted = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (accepted["type"], accepted["created"]) == ("post.accepted", True)
    assert await db(Post.objects.filter(post_id=sealed["post_id"]).count) == 1


# --- removal while the socket is open -------------------------------------------------------------------


async def test_it_stops_a_removed_members_open_socket_at_once(pair, lead, gp):
    workspace, lead_client, gp_client = pair
    async with socket(await session_id(lead)) as lead_socket, socket(await session_id(gp)) as gp_socket:
        await connected(lead_socket, lead)
        await connected(gp_socket, gp)
        await subscribe(lead_socket, workspace, after_seq=1)
        await subscribe(gp_socket, workspace, after_seq=1)
        kept = await db(gp_client.keys, workspace)

        await db(lead_client.rotate, workspace, remove=gp.user)
        ended = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert ended["type"] == "membership.ended" and ended["workspace"] == str(workspace.public_id)
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["type"] == "epoch.created"

        await db(lead_client.post, workspace, "update", {"text": "after the removal"})
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["type"] == "post.created"
        # Whatever else reaches the removed member's socket is about the ending, never content.
        while not await gp_socket.receive_nothing(timeout=QUIET):
            frame = await gp_socket.receive_json_from()
            assert frame["type"] == "membership.ended", frame
        # Their frames for the workspace are refused, and the socket (their session is fine) stays open.
        await gp_socket.send_json_to(sub_frame(workspace, after_seq=0, frame_id="again"))
        assert (await gp_socket.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"
        payload = await db(gp_client.seal, workspace, "update", {"text": "x"}, epoch=2, keys=kept)
        await gp_socket.send_json_to(post_frame(workspace, payload))
        assert (await gp_socket.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"
        await still_open(gp_socket)


async def test_it_rechecks_membership_when_delivering_even_without_an_event(pair, lead, gp):
    """Membership ends behind the channel layer's back (no membership.ended sent, only the roster version
    moves, as every membership service moves it): the socket's own check at delivery stops the post and
    ends the subscription."""
    workspace, lead_client, _ = pair
    async with socket(await session_id(lead)) as lead_socket, socket(await session_id(gp)) as gp_socket:
        await connected(lead_socket, lead)
        await connected(gp_socket, gp)
        await subscribe(lead_socket, workspace, after_seq=1)
        await subscribe(gp_socket, workspace, after_seq=1)
        await db(lambda: Membership.objects.filter(workspace=workspace, professional=gp.user).update(
            state=Membership.State.REMOVED))
        await db(lambda: Workspace.objects.filter(pk=workspace.pk).update(roster_version=F("roster_version") + 1))
        await db(lead_client.post, workspace, "update", {"text": "not for the GP"})
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["type"] == "post.created"
        assert await gp_socket.receive_json_from(timeout=TIMEOUT) == {
            "type": "membership.ended", "workspace": str(workspace.public_id), "reason": "not a member"}
        await db(lead_client.post, workspace, "update", {"text": "nor this"})
        assert (await lead_socket.receive_json_from(timeout=TIMEOUT))["type"] == "post.created"
        await nothing_more(gp_socket)


async def test_it_delivers_in_order_when_one_posts_event_overtakes_another(pair, lead, gp, capture_events):
    """Two workers commit seq n and n+1; n+1's event reaches Redis first. The socket sends n (from the
    database) before n+1, and drops n's own event when it arrives: each once, in order."""
    from channels.layers import get_channel_layer

    workspace, lead_client, _ = pair
    async with socket(await session_id(gp)) as gp_socket:
        await connected(gp_socket, gp)
        await subscribe(gp_socket, workspace, after_seq=1)
        first = await db(lead_client.post, workspace, "update", {"text": "first"})
        second = await db(lead_client.post, workspace, "update", {"text": "second"})
        events = {message["post"]["seq"]: (group, message) for group, message in capture_events}
        layer = get_channel_layer()
        for seq in (second.post.seq, first.post.seq):  # the later one first
            await layer.group_send(*events[seq])
        filled = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert filled["type"] == "posts"
        assert [(p["seq"], p["post_id"]) for p in filled["posts"]] == [(first.post.seq, str(first.post.post_id))]
        live = await gp_socket.receive_json_from(timeout=TIMEOUT)
        assert (live["type"], live["post"]["seq"], live["post"]["post_id"]) == (
            "post.created", second.post.seq, str(second.post.post_id))
        await nothing_more(gp_socket)


# --- reconnecting ---------------------------------------------------------------------------------------


def _post_many(lead_client, workspace, n: int, start: int) -> None:
    for i in range(n):
        lead_client.post(workspace, "update", {"text": f"missed {start + i}"})


async def test_it_resends_exactly_what_a_reconnecting_member_missed_in_order_then_goes_live(
        pair, lead, gp, monkeypatch):
    # A small page, so the 50 missed posts cross several page boundaries of the backlog.
    monkeypatch.setattr(consumers, "BACKLOG_PAGE", 7)
    workspace, lead_client, _ = pair
    async with socket(await session_id(gp)) as first:
        await connected(first, gp)
        assert await subscribe(first, workspace) == []
        await db(_post_many, lead_client, workspace, 3, 0)
        seen = [(await first.receive_json_from(timeout=TIMEOUT))["post"]["seq"] for _ in range(3)]
        assert seen == [2, 3, 4]
    # Offline while 50 posts are made.
    await db(_post_many, lead_client, workspace, 50, 3)
    async with socket(await session_id(gp)) as second:
        await connected(second, gp)
        frames = await subscribe_frames(second, workspace, after_seq=seen[-1])
        assert [len(f["posts"]) for f in frames] == [7] * 7 + [1]  # a frame per page, not per post
        backlog = one_per_post(frames)
        assert [f["post"]["seq"] for f in backlog] == list(range(5, 55))
        assert len({f["post"]["post_id"] for f in backlog}) == 50
        await nothing_more(second)
        await db(lead_client.post, workspace, "update", {"text": "live again"})
        live = await second.receive_json_from(timeout=TIMEOUT)
        assert (live["type"], live["post"]["seq"]) == ("post.created", 55)
        await nothing_more(second)
    texts = [p.body["text"] for p in await db(lead_client.read, workspace, seen[-1])]
    assert texts[:50] == [f"missed {i}" for i in range(3, 53)]


async def test_it_splits_a_backlog_page_into_frames_by_size(pair, gp, monkeypatch):
    monkeypatch.setattr(consumers, "POSTS_FRAME_BYTES", 1)  # every post passes it: one post per frame
    workspace, lead_client, _ = pair
    await db(_post_many, lead_client, workspace, 3, 0)
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        frames = await subscribe_frames(communicator, workspace, after_seq=1)
        assert [[p["seq"] for p in f["posts"]] for f in frames] == [[2], [3], [4]]


@pytest.mark.parametrize("known", [False, True], ids=["workspace new to the process", "workspace known"])
@pytest.mark.parametrize("when", ["before the backlog is read", "after the backlog is read"])
async def test_it_sends_a_post_made_during_the_resync_exactly_once(pair, lead, gp, monkeypatch, when, known):
    """A post committed while the backlog is being read reaches the socket twice (in the page and as a
    group event) or only as the event; either way the member sees it once, in order."""
    workspace, lead_client, _ = pair
    known_to_this_process(workspace, known)
    await db(_post_many, lead_client, workspace, 3, 0)
    real_post_list = selectors.post_list
    calls = []

    def post_list_racing_a_new_post(**kwargs):
        if not calls and when == "before the backlog is read":
            lead_client.post(workspace, "update", {"text": "racing"})
        page = real_post_list(**kwargs)
        if not calls and when == "after the backlog is read":
            lead_client.post(workspace, "update", {"text": "racing"})
        calls.append(len(page))
        return page

    monkeypatch.setattr(selectors, "post_list", post_list_racing_a_new_post)
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        backlog = await subscribe(communicator, workspace, after_seq=1)
        # (A receive that times out cancels the application under test: look with receive_nothing first.)
        later = []
        while not await communicator.receive_nothing(timeout=QUIET):
            later.append(await communicator.receive_json_from())
        assert [f["type"] for f in later] == ["post.created"] * len(later)
        assert [f["post"]["seq"] for f in backlog + later] == [2, 3, 4, 5]
        assert calls == ([4] if when == "before the backlog is read" else [3])  # page sizes read


# --- bad frames -----------------------------------------------------------------------------------------


BAD_FRAMES = [
    ("not JSON", "{\"type\": \"post.create\",", "frame is not valid JSON", "invalid"),
    ("unknown type", {"type": "post.delete", "id": "f"}, "unknown frame type 'post.delete'", "invalid"),
    ("post without a workspace", {"type": "post.create", "id": "f", "post": {}}, "workspace must be a UUID",
     "invalid"),
    ("post with a junk workspace", {"type": "post.create", "id": "f", "workspace": "nope", "post": {}},
     "workspace must be a UUID", "invalid"),
    ("post without a post", {"type": "post.create", "id": "f", "workspace": "{ws}"}, "post must be a JSON object",
     "invalid"),
    ("post with bad base64", {"type": "post.create", "id": "f", "workspace": "{ws}",
                              "post": {"header": "!!!", "nonce": "", "ciphertext": "", "signature": ""}},
     "header is not valid base64", "invalid"),
    ("post with a short header", {"type": "post.create", "id": "f", "workspace": "{ws}", "post": {"header": "AAAA"}},
     "header: a post header is", "invalid"),
    ("post in someone else's workspace", {"type": "post.create", "id": "f", "workspace": "{other}", "post": {}},
     "no such workspace, or you are not a member", "forbidden"),
    ("subscribe with a negative after_seq", {"type": "subscribe", "id": "f", "workspace": "{ws}", "after_seq": -1},
     "after_seq must be an integer", "invalid"),
    ("subscribe with a string after_seq", {"type": "subscribe", "id": "f", "workspace": "{ws}", "after_seq": "3"},
     "after_seq must be an integer", "invalid"),
    ("read without a seq", {"type": "read", "id": "f", "workspace": "{ws}"}, "seq must be an integer", "invalid"),
    ("unsubscribe with junk", {"type": "unsubscribe", "id": "f", "workspace": 12}, "workspace must be a UUID",
     "invalid"),
    ("deeply nested JSON", "[" * 100_000, "frame is not valid JSON", "invalid"),
]


@pytest.mark.parametrize(("case", "frame", "reason", "code"), BAD_FRAMES, ids=[c[0] for c in BAD_FRAMES])
async def test_it_answers_a_bad_frame_with_an_error_and_stays_open(pair, gp, outsider, custodian, case, frame,
                                                                   reason, code):
    workspace, _, _ = pair
    other = await db(lambda: Client(outsider, custodian).create_workspace())
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        if isinstance(frame, str):
            await communicator.send_to(text_data=frame)
        else:
            filled = {k: (v.format(ws=workspace.public_id, other=other.public_id) if isinstance(v, str) else v)
                      for k, v in frame.items()}
            await communicator.send_json_to(filled)
        answer = await communicator.receive_json_from(timeout=TIMEOUT)
        assert answer["type"] == "error" and answer["code"] == code, answer
        assert answer["reason"].startswith(reason), answer
        assert answer["id"] == (None if isinstance(frame, str) else "f")
        await still_open(communicator)
    assert await db(lambda: Post.objects.filter(workspace=other).count()) == 0


# --- numbers out of range -------------------------------------------------------------------------------


def _read_position(workspace, persona) -> int:
    return Membership.objects.get(workspace=workspace, professional=persona.user).last_read_seq


@pytest.mark.parametrize("seq", [2**31, 2**32 + 3, 2**63 - 1])
async def test_it_caps_a_huge_read_frame_at_the_last_post_and_never_moves_it_back(pair, gp, seq):
    """2**31 raised an IntegrityError inside the frame (a 1011 close); 2**32 + 3 wrapped to 3."""
    workspace, lead_client, _ = pair
    for text in ("two", "three", "four", "five"):
        await db(lead_client.post, workspace, "update", {"text": text})
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        ws = str(workspace.public_id)
        await communicator.send_json_to({"type": "read", "workspace": ws, "seq": 4})
        await communicator.send_json_to({"type": "read", "workspace": ws, "seq": seq})
        await still_open(communicator)  # a read has no answer unless it fails
        assert await db(_read_position, workspace, gp) == 5
        await communicator.send_json_to({"type": "read", "workspace": ws, "seq": 3})
        await still_open(communicator)
        assert await db(_read_position, workspace, gp) == 5


@pytest.mark.parametrize("seq", [2**63, 2**64 + 3])
async def test_it_refuses_a_read_frame_beyond_what_the_column_holds(pair, gp, seq):
    workspace, _, _ = pair
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        await communicator.send_json_to({"type": "read", "id": "r", "workspace": str(workspace.public_id),
                                         "seq": seq})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "invalid", "id": "r", "reason": f"seq must be an integer from 0 to {2**63 - 1}"}
        await still_open(communicator)
    assert await db(_read_position, workspace, gp) == 1


async def test_it_refuses_a_read_frame_from_an_invited_professional(lead, gp, custodian):
    lead_client = await db(Client, lead, custodian)
    workspace = await db(lead_client.create_workspace)
    await db(lead_client.invite, workspace, gp.user)
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        await communicator.send_json_to({"type": "read", "id": "r", "workspace": str(workspace.public_id), "seq": 1})
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["code"] == "forbidden"
        await still_open(communicator)
    assert await db(_read_position, workspace, gp) == 0


HEADER_NUMBERS = [
    ("time 2**63", {"client_time_ms": 2**63}, "header: the post header's time is out of range"),
    ("time 2**64 - 1", {"client_time_ms": 2**64 - 1}, "header: the post header's time is out of range"),
    ("prev_seq 2**63", {"prev_seq": 2**63, "prev_hash": bytes([1]) * 32},
     "header: the post header's previous sequence number is out of range"),
    ("due day 2**32 - 1", {"kind": "action", "due_day": 2**32 - 1, "status": "open"},
     "the action's due date is after the year 9999"),
]


@pytest.mark.parametrize(("case", "fields", "reason"), HEADER_NUMBERS, ids=[c[0] for c in HEADER_NUMBERS])
async def test_it_answers_a_post_frame_with_header_numbers_out_of_range_with_an_error(pair, gp, case, fields,
                                                                                      reason):
    """The websocket twin of test_api's numbers out of range: an error frame, never a 1011 close."""
    from tests.messaging.test_services import sealed_with_header

    workspace, _, gp_client = pair
    fields = {"kind": "update", **fields}
    if fields["kind"] == "action":
        fields["owner_id"] = gp_client.user.public_id
    payload = await db(sealed_with_header, gp_client, workspace, fields.pop("kind"), {"text": "far away"}, **fields)
    async with socket(await session_id(gp)) as communicator:
        await connected(communicator, gp)
        await communicator.send_json_to(post_frame(workspace, payload, "n"))
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "invalid", "id": "n", "reason": reason}
        await still_open(communicator)
    assert await db(lambda: Post.objects.filter(workspace=workspace).count()) == 1
