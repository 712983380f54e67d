"""Every open websocket of a process is checked at once (messaging/consumers.py::SocketWatch) with
accounts.access.sessions_still_verified, which must answer as session_still_verified does one socket at
a time, for every way a session stops being good, in a number of statements that does not grow with the
number of sockets, and without being fooled by what it remembers of each session."""

from __future__ import annotations

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.access import session_still_verified, sessions_still_verified
from accounts.models import Professional
from accounts.services import SESSION_GENERATION_KEY
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def _signed_out(persona, key, other):
    Session.objects.filter(session_key=key).delete()


def _expired(persona, key, other):
    Session.objects.filter(session_key=key).update(expire_date=timezone.now())


def _sessions_ended(persona, key, other):
    Professional.objects.filter(pk=persona.user.pk).update(session_generation=F("session_generation") + 1)


def _password_changed(persona, key, other):
    Professional.objects.filter(pk=persona.user.pk).update(password=make_password("another passphrase"))


def _offboarded(persona, key, other):
    Professional.objects.filter(pk=persona.user.pk).update(is_active=False)


def _device_unconfirmed(persona, key, other):
    TOTPDevice.objects.filter(user=persona.user).update(confirmed=False)


def _device_deleted(persona, key, other):
    TOTPDevice.objects.filter(user=persona.user).delete()


def _names_anothers_device(persona, key, other):
    session = SessionStore(session_key=key)
    session[DEVICE_ID_SESSION_KEY] = other.device.persistent_id
    session.save()


def _unknown_backend(persona, key, other):
    session = SessionStore(session_key=key)
    session[BACKEND_SESSION_KEY] = "some.other.Backend"
    session.save()


def _corrupt(persona, key, other):
    Session.objects.filter(session_key=key).update(session_data="not a signed session")


def _saved_again(persona, key, other):
    """Still good: the same contents stored anew (as a socket's activity does), so its text changed."""
    session = SessionStore(session_key=key)
    session.load()
    session.modified = True
    session.save()


def _nothing(persona, key, other):
    pass


CHANGES = [_nothing, _saved_again, _signed_out, _expired, _sessions_ended, _password_changed, _offboarded,
           _device_unconfirmed, _device_deleted, _names_anothers_device, _unknown_backend, _corrupt]
STILL_GOOD = {_nothing, _saved_again}


@pytest.fixture
def sockets(make_persona, lead):
    """A signed-in session for each change, each of its own account: [(change, persona, session key)]."""
    made = []
    for n, change in enumerate(CHANGES):
        persona = make_persona(f"socket{n}@csc.example")
        made.append((change, persona, sign_in(Client(), persona).cookies["sessionid"].value))
    return made


def test_it_answers_as_the_check_of_one_socket_for_every_way_a_session_ends(sockets, lead):
    seen: dict = {}
    asked = [(key, persona.user) for _, persona, key in sockets]
    assert sessions_still_verified(asked, seen) == [True] * len(sockets)
    assert len(seen) == len(sockets)  # each session decoded once, remembered for the next round
    # ... and only what the check reads (a thousand sockets keep it between rounds).
    read = {BACKEND_SESSION_KEY, DEVICE_ID_SESSION_KEY, HASH_SESSION_KEY, SESSION_GENERATION_KEY}
    assert all(set(data) == read for _, data in seen.values())
    for change, persona, key in sockets:
        change(persona, key, lead)
    one_at_a_time = []
    for _, persona, key in sockets:
        with CaptureQueriesContext(connection) as captured:
            one_at_a_time.append(session_still_verified(SessionStore(session_key=key), persona.user))
        assert len(captured) <= 2, [q["sql"] for q in captured]
    assert one_at_a_time == [change in STILL_GOOD for change, _, _ in sockets]
    # With what it remembers from the first round, and afresh.
    assert sessions_still_verified(asked, seen) == one_at_a_time
    assert sessions_still_verified(asked, {}) == one_at_a_time
    gone = {key for change, _, key in sockets if change in (_signed_out, _expired)}
    assert not gone & seen.keys()


def test_its_statements_do_not_grow_with_the_sockets(sockets):
    asked = [(key, persona.user) for _, persona, key in sockets]
    counts = []
    for some in (asked[:2], asked):
        with CaptureQueriesContext(connection) as captured:
            assert sessions_still_verified(some, {}) == [True] * len(some)
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 4, counts


def test_a_socket_without_a_session_key_is_not_entitled(sockets):
    _, persona, key = sockets[0]
    assert sessions_still_verified([(None, persona.user), (key, persona.user)], {}) == [False, True]


def test_the_handshake_door_answers_as_the_check_of_one_socket(sockets, lead):
    """accounts/ws.py's door reads the session and then the user with their device by hand-written
    statements (accounts/storage.py): for every way a session ends it answers as the one-socket check,
    in two statements, with the user loaded as the ORM loads them."""
    from accounts.sessions import SessionStore as EngineStore
    from accounts.ws import _user_if_verified

    for change, persona, key in sockets:
        change(persona, key, lead)
    for change, persona, key in sockets:
        with CaptureQueriesContext(connection) as captured:
            user, allowed = _user_if_verified(EngineStore(session_key=key))
        assert allowed == session_still_verified(SessionStore(session_key=key), persona.user), change.__name__
        assert allowed == (change in STILL_GOOD), change.__name__
        assert len(captured) <= 2, [q["sql"] for q in captured]
        if allowed:
            fresh = Professional.objects.get(pk=persona.user.pk)
            assert {f.attname: getattr(user, f.attname) for f in Professional._meta.concrete_fields} == \
                   {f.attname: getattr(fresh, f.attname) for f in Professional._meta.concrete_fields}
            assert not user.get_deferred_fields()


@pytest.mark.parametrize("case", ["good", "saved again", "expired", "deleted", "corrupt", "made up", "no key"])
def test_the_session_engine_loads_as_djangos(lead, case):
    """accounts/sessions.py loads a session with one hand-written statement: the same data as Django's
    database engine for every state a stored session can be in, and the key forgotten where Django
    forgets it (so an ended session is never brought back by a save)."""
    from accounts.sessions import SessionStore as EngineStore

    key = sign_in(Client(), lead).cookies["sessionid"].value
    change = {
        "good": lambda: None,
        "saved again": lambda: _saved_again(lead, key, None),
        "expired": lambda: _expired(lead, key, None),
        "deleted": lambda: _signed_out(lead, key, None),
        "corrupt": lambda: _corrupt(lead, key, None),
        "made up": lambda: None,
        "no key": lambda: None,
    }[case]
    change()
    asked = {"made up": "nosuchsession0123456789abcdefgh", "no key": None}.get(case, key)
    ours, djangos = EngineStore(session_key=asked), SessionStore(session_key=asked)
    assert ours.load() == djangos.load()
    assert ours.session_key == djangos.session_key
    assert bool(ours.load()) == (case in ("good", "saved again"))
    with CaptureQueriesContext(connection) as captured:
        EngineStore(session_key=asked).load()
    assert len(captured) == (0 if asked is None else 1)


def test_the_site_uses_the_session_engine(settings):
    from django.contrib.sessions.middleware import SessionMiddleware

    from accounts.sessions import SessionStore as EngineStore

    assert SessionMiddleware(lambda request: None).SessionStore is EngineStore
