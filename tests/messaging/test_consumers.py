"""The websocket, driven through the real ASGI application (Origin check, session cookie, 2FA check,
routing) and the real Redis channel layer. Every communicator is disconnected, accepted or not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from accounts.services import professional_offboard, sessions_end_all, two_factor_reset
from messaging.consumers import CLOSE_FRAME_TOO_LARGE, CLOSE_NOT_ENTITLED
from teamaroundchild.asgi import application
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1"
# Events cross Redis after a commit: allow more than the default second before calling a frame missing.
TIMEOUT = 3


def headers(session_id: str | None, origin: bytes | None = ORIGIN) -> list[tuple[bytes, bytes]]:
    result = [(b"host", b"127.0.0.1")]
    if origin is not None:
        result.append((b"origin", origin))
    if session_id is not None:
        result.append((b"cookie", f"sessionid={session_id}".encode()))
    return result


def _session_id(persona, verify: bool) -> str:
    client = sign_in(Client(), persona, verify=verify)
    return client.cookies["sessionid"].value


async def session_id(persona, *, verify: bool = True) -> str:
    """A session cookie made by the real sign-in views."""
    return await sync_to_async(_session_id)(persona, verify)


@asynccontextmanager
async def socket(session: str | None, origin: bytes | None = ORIGIN) -> AsyncIterator[WebsocketCommunicator]:
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers(session, origin))
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def connected(communicator: WebsocketCommunicator, persona) -> None:
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert ok
    assert await communicator.receive_json_from(timeout=TIMEOUT) == {
        "type": "hello", "user": str(persona.user.public_id)
    }


async def assert_revoked(communicator: WebsocketCommunicator, reason: str) -> None:
    message = await communicator.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.send"
    assert json.loads(message["text"]) == {"type": "session.revoked", "reason": reason}
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close", "code": CLOSE_NOT_ENTITLED
    }


async def assert_error(communicator: WebsocketCommunicator, reason: str, frame_id=None) -> None:
    """An error frame (docs/protocol.md: type, reason, id; a machine-readable `code` may come with it)."""
    answer = await communicator.receive_json_from(timeout=TIMEOUT)
    assert {k: answer.get(k) for k in ("type", "reason", "id")} == {"type": "error", "reason": reason, "id": frame_id}
    assert answer.get("code", "invalid") == "invalid"


async def assert_refused(communicator: WebsocketCommunicator) -> None:
    ok, _ = await communicator.connect(timeout=TIMEOUT)
    assert not ok
    assert await communicator.receive_nothing()


# --- the handshake --------------------------------------------------------------------------------------


async def test_it_refuses_an_anonymous_socket(db):
    async with socket(None) as communicator:
        await assert_refused(communicator)


async def test_it_refuses_a_made_up_session(db):
    async with socket("nosuchsession0123456789abcdefgh") as communicator:
        await assert_refused(communicator)


async def test_it_refuses_a_password_only_session(lead):
    session = await session_id(lead, verify=False)
    async with socket(session) as communicator:
        await assert_refused(communicator)


def _session_altered(session_key: str, change) -> None:
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore(session_key)
    session.load()
    change(session)
    session.save()


def _unconfirm_device(persona) -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.filter(user=persona.user).update(confirmed=False)


@pytest.mark.parametrize("case", ["another's device", "an unconfirmed device", "not a device", "a malformed device id",
                                  "no device id", "an unknown backend", "a user id that is not one", "no user id",
                                  "a user id out of range", "a device id out of range"])
async def test_it_refuses_a_session_whose_door_check_fails(lead, manager, case):
    """The handshake's door reads the user and their device in one statement (accounts/ws.py); each way a
    stored session can fail it is refused. Two of them (a user id of the wrong type, a device id naming a
    model that is not a device) raised inside Django's and django-otp's lookups, used before, and the
    handshake hung instead of being refused. Ids beyond a bigint: the door's statements are hand-written
    now (accounts/storage.py; SQLite's side of this is in tests/test_quick_start_sqlite.py)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    session = await session_id(lead)
    others = await database_sync_to_async(lambda: TOTPDevice.objects.get(user=manager.user).persistent_id)()
    changes = {
        "another's device": lambda s: s.__setitem__(DEVICE_ID_SESSION_KEY, others),
        "an unconfirmed device": None,
        "not a device": lambda s: s.__setitem__(DEVICE_ID_SESSION_KEY, f"accounts.professional/{lead.user.pk}"),
        "a malformed device id": lambda s: s.__setitem__(DEVICE_ID_SESSION_KEY, "otp_totp.totpdevice/x"),
        "no device id": lambda s: s.pop(DEVICE_ID_SESSION_KEY),
        "an unknown backend": lambda s: s.__setitem__(BACKEND_SESSION_KEY, "some.other.Backend"),
        "a user id that is not one": lambda s: s.__setitem__(SESSION_KEY, "x"),
        "no user id": lambda s: s.pop(SESSION_KEY),
        "a user id out of range": lambda s: s.__setitem__(SESSION_KEY, str(2**70)),
        "a device id out of range": lambda s: s.__setitem__(DEVICE_ID_SESSION_KEY, f"otp_totp.totpdevice/{2**70}"),
    }
    if changes[case] is None:
        await database_sync_to_async(_unconfirm_device)(lead)
    else:
        await database_sync_to_async(_session_altered)(session, changes[case])
    async with socket(session) as communicator:
        await assert_refused(communicator)


async def test_it_accepts_a_verified_session_and_says_hello(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)


async def test_the_socket_keeps_its_session_key_but_not_what_the_session_held(lead, monkeypatch):
    """The door decodes the session for its check only: the consumer checks the stored session afresh
    every time (W4: the decoded copy was kept for the socket's life). Its key stays, and the session
    loads again if anything asks."""
    from messaging import consumers

    kept = []
    real_connect = consumers.LiveConsumer.connect

    async def connect(self):
        kept.append(self.scope["session"])
        await real_connect(self)

    monkeypatch.setattr(consumers.LiveConsumer, "connect", connect)
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        [kept_session] = kept
        assert kept_session.session_key == session
        assert "_session_cache" not in vars(kept_session._wrapped)
        assert await database_sync_to_async(lambda: kept_session.get("_auth_user_id"))() == str(lead.user.pk)


@pytest.mark.parametrize(
    "origin", [b"http://evil.example", b"https://127.0.0.1.evil.example", b"null", None]
)
async def test_it_refuses_a_socket_from_another_origin(lead, origin):
    session = await session_id(lead)
    async with socket(session, origin=origin) as communicator:
        await assert_refused(communicator)


async def test_it_accepts_the_localhost_origin(lead):
    session = await session_id(lead)
    async with socket(session, origin=b"http://localhost:8000") as communicator:
        await connected(communicator, lead)


async def test_it_refuses_a_signed_out_session(lead):
    client = await sync_to_async(sign_in)(Client(), lead)
    session = client.cookies["sessionid"].value
    await sync_to_async(client.post)(reverse("accounts:logout"))
    async with socket(session) as communicator:
        await assert_refused(communicator)


# --- frames ---------------------------------------------------------------------------------------------


async def test_it_answers_a_ping_with_a_pong(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "ping", "id": "abc-1"})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": "abc-1"}
        await communicator.send_json_to({"type": "ping", "id": 2})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 2}


async def test_it_answers_invalid_json_with_an_error_and_stays_open(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_to(text_data="{not json")
        await assert_error(communicator, "frame is not valid JSON")
        await communicator.send_json_to({"type": "ping", "id": "still-here"})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": "still-here"}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ([1, 2, 3], "frame must be a JSON object with a string 'type'"),
        ({"id": 1}, "frame must be a JSON object with a string 'type'"),
        ({"type": 7}, "frame must be a JSON object with a string 'type'"),
        ("ping", "frame must be a JSON object with a string 'type'"),
    ],
)
async def test_it_answers_a_frame_without_a_type_with_an_error(lead, frame, reason):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to(frame)
        await assert_error(communicator, reason)


async def test_it_answers_an_unknown_frame_type_with_an_error_and_stays_open(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "workspace.delete", "id": "f-9"})
        await assert_error(communicator, "unknown frame type 'workspace.delete'", "f-9")
        await communicator.send_json_to({"type": "ping", "id": 1})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 1}


async def test_it_refuses_binary_frames_with_an_error(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_to(bytes_data=b"\x00\x01")
        await assert_error(communicator, "binary frames are not accepted; send JSON text")
        await communicator.send_json_to({"type": "ping", "id": 3})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 3}


async def test_it_refuses_a_frame_over_the_size_limit_with_an_error_naming_it_then_closes(lead, settings):
    settings.TAC_SOCKET_MAX_FRAME_BYTES = 1000
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "ping", "id": 0, "pad": "x" * 900})  # under the limit
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 0}
        await communicator.send_json_to({"type": "ping", "id": 1, "pad": "é" * 600})  # 1,200 bytes of UTF-8
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {
            "type": "error", "code": "too_large", "id": None,
            "reason": "frame is larger than the limit of 1000 bytes (TAC_SOCKET_MAX_FRAME_BYTES); it was not read"}
        assert await communicator.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close", "code": CLOSE_FRAME_TOO_LARGE}
    # Other sockets are unaffected; a new one from the same session works.
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "ping", "id": 2})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 2}


async def test_it_takes_frames_up_to_the_default_limit_that_a_largest_post_needs(lead):
    """The largest post frame (256 KiB of ciphertext, in base64, and a header) fits under the default."""
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "ping", "id": 3, "pad": "A" * (4 * 256 * 1024 // 3 + 2000)})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 3}


ID_LIMIT = "id must be a string of at most 128 characters or an integer of at most 2**53 - 1 (or absent)"


@pytest.mark.parametrize("frame_id", [
    {"a": 1}, [1, 2], 1.5, True, False, "x" * 129, 2**53, -(2**53), 10**300,
], ids=["object", "list", "float", "true", "false", "long string", "2**53", "-2**53", "10**300"])
async def test_it_refuses_a_frame_id_that_is_not_a_short_string_or_an_integer(lead, frame_id):
    """An id is echoed in the answer: only a short string or a safe integer, never arbitrary JSON."""
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        for frame_type in ("ping", "subscribe", "unsubscribe", "post.create", "read", "no.such.type"):
            await communicator.send_json_to({"type": frame_type, "id": frame_id})
            assert await communicator.receive_json_from(timeout=TIMEOUT) == {
                "type": "error", "code": "invalid", "id": None, "reason": ID_LIMIT}
        await communicator.send_json_to({"type": "ping", "id": "still-here"})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": "still-here"}


@pytest.mark.parametrize("frame_id", ["", "x" * 128, "\u0000\ud800", 0, -5, 2**53 - 1, -(2**53 - 1), None])
async def test_it_echoes_a_short_string_or_a_safe_integer_id(lead, frame_id):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "ping", "id": frame_id})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": frame_id}


async def test_it_names_an_unknown_frame_type_in_a_bounded_reason(lead):
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        await communicator.send_json_to({"type": "x" * 10_000, "id": "t"})
        answer = await communicator.receive_json_from(timeout=TIMEOUT)
        assert answer["id"] == "t" and answer["reason"].startswith("unknown frame type 'xxx")
        assert len(answer["reason"]) < 100


# --- access ends while the socket is open ---------------------------------------------------------------


async def test_it_closes_an_open_socket_when_the_account_is_offboarded(lead, manager):
    session = await session_id(manager)
    admin_session = await session_id(lead)
    async with socket(session) as communicator, socket(admin_session) as admin_socket:
        await connected(communicator, manager)
        await connected(admin_socket, lead)
        await database_sync_to_async(professional_offboard)(admin=lead.user, professional=manager.user)
        await assert_revoked(communicator, "account offboarded")
        # Only that account's sockets hear of it.
        assert await admin_socket.receive_nothing(timeout=0.3)
        await admin_socket.send_json_to({"type": "ping", "id": 1})
        assert await admin_socket.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 1}


async def test_it_closes_every_socket_of_an_account_that_signs_out_everywhere(lead):
    laptop, phone = await session_id(lead), await session_id(lead)
    async with socket(laptop) as first, socket(phone) as second:
        await connected(first, lead)
        await connected(second, lead)
        await database_sync_to_async(sessions_end_all)(professional=lead.user)
        await assert_revoked(first, "signed out everywhere")
        await assert_revoked(second, "signed out everywhere")


async def test_it_closes_sockets_through_the_sign_out_everywhere_view(lead):
    client = await sync_to_async(sign_in)(Client(), lead)
    session = client.cookies["sessionid"].value
    async with socket(session) as communicator:
        await connected(communicator, lead)
        response = await sync_to_async(client.post)(reverse("accounts:sign_out_everywhere"))
        assert response.status_code == 302
        await assert_revoked(communicator, "signed out everywhere")


async def test_signing_out_closes_that_sessions_sockets_and_no_others(lead):
    laptop = await sync_to_async(sign_in)(Client(), lead)
    phone = await session_id(lead)
    async with socket(laptop.cookies["sessionid"].value) as first, socket(phone) as second:
        await connected(first, lead)
        await connected(second, lead)
        response = await sync_to_async(laptop.post)(reverse("accounts:logout"))
        assert response.status_code == 302
        await assert_revoked(first, "signed out")
        assert await second.receive_nothing(timeout=0.3)
        await second.send_json_to({"type": "ping", "id": 1})
        assert await second.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 1}


async def test_it_closes_an_open_socket_when_2fa_is_reset(lead, manager):
    session = await session_id(manager)
    async with socket(session) as communicator:
        await connected(communicator, manager)
        await database_sync_to_async(two_factor_reset)(admin=lead.user, professional=manager.user)
        await assert_revoked(communicator, "two-factor authentication was reset")


async def test_it_refuses_an_offboarded_accounts_existing_session(lead, manager):
    session = await session_id(manager)
    async with socket(session) as communicator:
        await connected(communicator, manager)
    await database_sync_to_async(professional_offboard)(admin=lead.user, professional=manager.user)
    async with socket(session) as communicator:
        await assert_refused(communicator)


async def test_it_refuses_a_session_from_before_signing_out_everywhere(lead):
    old = await session_id(lead)
    await database_sync_to_async(sessions_end_all)(professional=lead.user)
    async with socket(old) as communicator:
        await assert_refused(communicator)
    # A session started afterwards connects.
    async with socket(await session_id(lead)) as communicator:
        await connected(communicator, lead)


async def test_it_checks_the_session_again_once_the_recheck_interval_has_passed(lead, manager, settings):
    """Even if the event never arrived (a Redis hiccup), a frame after TAC_SOCKET_RECHECK_SECONDS finds
    the session ended."""
    from accounts.models import Professional

    settings.TAC_SOCKET_RECHECK_SECONDS = 0
    session = await session_id(manager)
    async with socket(session) as communicator:
        await connected(communicator, manager)
        await communicator.send_json_to({"type": "ping", "id": 0})
        assert await communicator.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 0}
        # Offboard behind the channel layer's back: no event is sent.
        await database_sync_to_async(
            lambda: Professional.objects.filter(pk=manager.user.pk).update(is_active=False)
        )()
        await communicator.send_json_to({"type": "ping", "id": 1})
        await assert_revoked(communicator, "your session has ended")


def _change_password(client, persona, new_password: str):
    from tests.accounts.test_passwords import password_change_payload

    payload = password_change_payload(persona, new_password)
    return client.post(reverse("accounts:password_change"), json.dumps(payload), content_type="application/json")


async def test_it_refuses_another_sessions_new_socket_after_a_password_change(lead):
    other = await session_id(lead)
    client = await sync_to_async(sign_in)(Client(), lead)
    response = await sync_to_async(_change_password)(client, lead, "a brand new passphrase for tac")
    assert response.status_code == 200
    async with socket(other) as communicator:
        await assert_refused(communicator)
    async with socket(client.cookies["sessionid"].value) as communicator:
        await connected(communicator, lead)


async def test_it_closes_another_sessions_open_socket_after_a_password_change(lead):
    other = await session_id(lead)
    client = await sync_to_async(sign_in)(Client(), lead)
    async with socket(other) as communicator:
        await connected(communicator, lead)
        response = await sync_to_async(_change_password)(client, lead, "a brand new passphrase for tac")
        assert response.status_code == 200
        await assert_revoked(communicator, "password changed in another session")


@pytest.mark.parametrize("slice_", [100, 1], ids=["one slice", "a slice a socket"])
async def test_one_watch_checks_every_socket_of_the_process_and_closes_only_the_ended(lead, manager, settings,
                                                                                      monkeypatch, slice_):
    """The periodic check runs once for all the process's sockets (SocketWatch), in slices: a session
    ended behind the channel layer's back closes its own socket and no other, and the watch stops with
    the last socket."""
    import asyncio

    from django.contrib.sessions.models import Session

    from messaging import consumers
    from messaging.consumers import SocketWatch

    monkeypatch.setattr(consumers, "WATCH_SLICE", slice_)

    settings.TAC_SOCKET_RECHECK_SECONDS = 0.3
    lead_session, manager_session = await session_id(lead), await session_id(manager)
    loop = asyncio.get_running_loop()
    async with socket(lead_session) as first, socket(manager_session) as second:
        await connected(first, lead)
        await connected(second, manager)
        assert len(SocketWatch._by_loop[loop].sockets) == 2
        await database_sync_to_async(lambda: Session.objects.filter(session_key=manager_session).delete())()
        await assert_revoked(second, "your session has ended")
        await first.send_json_to({"type": "ping", "id": 0})
        assert await first.receive_json_from(timeout=TIMEOUT) == {"type": "pong", "id": 0}
        await asyncio.sleep(1)  # more rounds of the watch: the lead's socket stays open
        assert await first.receive_nothing(timeout=0.1)
    assert loop not in SocketWatch._by_loop


async def test_the_watch_outlives_a_round_that_fails(lead, settings, monkeypatch, caplog):
    """A round that raises something unforeseen is logged; the next round still closes an ended session
    (the watch is every idle socket's check: it must not die with one round)."""
    import asyncio

    from django.contrib.sessions.models import Session

    from messaging import consumers

    settings.TAC_SOCKET_RECHECK_SECONDS = 0.3
    real, calls = consumers._sockets_check, []

    def fails_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("an unforeseen failure")
        return real(*args)

    monkeypatch.setattr(consumers, "_sockets_check", fails_once)
    session = await session_id(lead)
    async with socket(session) as communicator:
        await connected(communicator, lead)
        while not calls:
            await asyncio.sleep(0.05)
        await database_sync_to_async(lambda: Session.objects.filter(session_key=session).delete())()
        await assert_revoked(communicator, "your session has ended")
    assert len(calls) >= 2
    assert "the sockets' periodic check failed" in caplog.text
