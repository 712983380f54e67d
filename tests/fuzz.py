"""What a hostile or broken client sends, as Hypothesis strategies, and what every answer must still be
(issue 9): never a 500 or an exception escaping a view, never a 1011 close (an exception escaping the
consumer, which channels' WebsocketCommunicator re-raises), and every refusal with a reason.

Runs are bounded (FUZZ) so the suite stays quick; `database=None` keeps Hypothesis from writing an
example database into the tree."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from messaging.schemas import MAX_FRAME_ID_CHARS, MAX_SAFE_INTEGER


def fuzz(max_examples: int):
    # Fixtures (the workspace, the signed-in sessions) are made once per test, not per example: what an
    # example changes is rolled back (HTTP) or harmless (sockets), as each test says.
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


# Integers at the edges of every width the server meets: PostgreSQL's int4 and int8, JavaScript's safe
# integers, unsigned header fields, and more digits than most parsers take.
EDGE_INTS = st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 3, 2**53 - 1, 2**53, 2**63 - 1, 2**63,
                             2**64, -(2**63) - 1, 10**30, 10**4000])
NASTY_TEXT = st.sampled_from(["", " ", "\x00", "a@b\x00c", "a@\ud800", "\ud800", "\udfff", "\u202e", "\ufeff",
                              "x" * 300, "%00", "'; --", "../..", "lead@csc.example", "\u0085", "\x1f"])
# Any code point, lone surrogates included (JSON's "\ud800" escape makes them).
TEXT = st.one_of(st.text(st.characters(exclude_categories=()), max_size=30), NASTY_TEXT)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), EDGE_INTS, st.floats(), TEXT)
JSON = st.recursive(SCALARS, lambda children: st.one_of(st.lists(children, max_size=4),
                                                        st.dictionaries(TEXT, children, max_size=4)),
                    max_leaves=12)

DEEP = [b"[" * 200_000, b"{" * 100_000, b'{"a": ' * 50_000 + b"1" + b"}" * 50_000]
RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([*DEEP, b'{"seq": ' + b"9" * 5000 + b"}", b"\xff\xfe", b"\xed\xa0\x80", b'"\\ud800"',
                     b'{"email": "a@\\ud800"}', b"NaN", b"-Infinity", b"1e999999", b"", b"null", b"[]"]),
)
RAW_FRAMES = st.one_of(
    TEXT,
    st.sampled_from([*(d.decode() for d in DEEP), '{"type": "ping", "id": ' + "9" * 5000 + "}", "{", "", "null",
                     '"\\ud800"', '{"type": "\\ud800"}', '{"type": "ping", "id": "\\ud800"}', "[]", "NaN"]),
)


def mutated(base: Any) -> st.SearchStrategy:
    """Arbitrary JSON, or the valid body with one field (in any nested object, or the first object of a
    list) replaced by arbitrary JSON, removed, or joined by another: most of these get past the outer
    checks and reach the ones deeper in."""
    if not isinstance(base, dict):
        return st.one_of(st.just(base), JSON)
    options = [st.just(base), JSON, st.builds(lambda k, v: {**base, k: v}, TEXT, JSON)]
    if base:
        keys = sorted(base)
        options.append(st.builds(lambda k, v: {**base, k: v}, st.sampled_from(keys), JSON))
        options.append(st.sampled_from(keys).map(lambda k: {x: y for x, y in base.items() if x != k}))
        for key, value in base.items():
            if isinstance(value, dict):
                options.append(mutated(value).map(lambda m, key=key: {**base, key: m}))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                options.append(mutated(value[0]).map(lambda m, key=key, value=value: {**base, key: [m, *value[1:]]}))
    return st.one_of(options)


def body_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


@contextmanager
def rolled_back():
    """One example's database changes, undone before the next (inside the test's transaction)."""
    point = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(point)


def answered(response) -> None:
    """An HTTP answer under /api/ or /accounts/api/: below 500, JSON, and a refusal says why."""
    assert response.status_code < 500, response.content[:300]
    if response.request["REQUEST_METHOD"] == "HEAD":
        return
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = response.json()
    if response.status_code >= 400:
        assert set(body) == {"error", "reason"}, body
        assert isinstance(body["error"], str) and isinstance(body["reason"], str) and body["reason"], body


ERROR_CODES = {"invalid", "conflict", "forbidden", "unavailable", "too_large"}


def echoable(frame_id: Any) -> bool:
    return frame_id is None or (isinstance(frame_id, str) and len(frame_id) <= MAX_FRAME_ID_CHARS) or (
        isinstance(frame_id, int) and not isinstance(frame_id, bool) and abs(frame_id) <= MAX_SAFE_INTEGER)


def well_formed_frame(message: dict) -> dict:
    """A server frame: a JSON object with a type; an error has a known code and a reason, and echoes only
    an id a client could have sent legitimately."""
    assert message["type"] == "websocket.send", message  # never a close (1011 or otherwise) here
    frame = json.loads(message["text"])
    assert isinstance(frame, dict) and isinstance(frame.get("type"), str), frame
    if frame["type"] == "error":
        assert frame["code"] in ERROR_CODES and isinstance(frame["reason"], str) and frame["reason"], frame
    assert echoable(frame.get("id")), frame
    return frame
