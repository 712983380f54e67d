"""Property-based: every /api/v1 endpoint answers whatever it is sent (tests/fuzz.py says what and the
invariant: below 500, no exception escaping, JSON, a refusal with a reason). Bodies are arbitrary JSON,
raw bytes, or a valid body with one field broken; callers are the lead, a member, an invited
professional, an outsider and nobody signed in. Each example runs in a savepoint rolled back after it,
so a body that happens to be valid (closing the workspace, a member leaving) changes nothing for the
next."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.test import Client as HttpClient
from hypothesis import given
from hypothesis import strategies as st

from messaging.schemas import SEALED_EPOCH_KEY_BYTES
from tacprotocol.workspace import key_confirmation
from tests.conftest import sign_in
from tests.fuzz import EDGE_INTS, JSON, RAW_BODIES, TEXT, answered, body_bytes, fuzz, mutated, rolled_back
from tests.messaging.factories import member_key
from tests.messaging.test_api import API, saved

pytestmark = pytest.mark.django_db

CALLERS = ["lead", "member", "invited", "outsider", "anonymous"]


@dataclass
class World:
    workspace_id: str
    sessions: dict[str, HttpClient]
    bodies: dict[str, object]


@pytest.fixture
def world(pair, manager, outsider) -> World:
    workspace, lead_client, gp_client = pair
    lead_client.invite(workspace, manager.user)
    gp_id = str(gp_client.user.public_id)
    sealed = base64.b64encode(bytes(SEALED_EPOCH_KEY_BYTES)).decode()
    bodies = {
        "/workspaces": lead_client.workspace_payload(),
        "/me/state": saved(lead_client, 1),
        "/posts": lead_client.seal(workspace, "update", {"text": "fuzz"}),
        "/members": lead_client.invite_payload(workspace, outsider.user),
        "/membership/accept": {}, "/membership/decline": {}, "/membership/leave": {},
        "/epochs": {"epoch": lead_client.next_epoch_bundle(workspace, deputies=[gp_client.user]), "deputies": [gp_id]},
        "/rekey": {"member": gp_id, "wraps": [{"epoch": 2, "sealed": sealed}]},
        "/history": {"member": gp_id, "wraps": [{"epoch": 1, "sealed": sealed}]},
        "/key-confirmations": key_confirmation(lead_client.identity, lead_client.user.public_id,
                                               member_key(gp_client.user, "member")),
        "/read": {"seq": 1},
        "/status": {"status": "stepped_down"},
    }
    sessions = {"lead": sign_in(HttpClient(), lead_client.persona), "member": sign_in(HttpClient(), gp_client.persona),
                "invited": sign_in(HttpClient(), manager), "outsider": sign_in(HttpClient(), outsider),
                "anonymous": HttpClient()}
    return World(workspace_id=str(workspace.public_id), sessions=sessions, bodies=bodies)


def path_for(world: World, endpoint: str) -> str:
    if endpoint in ("/workspaces", "/me/state"):
        return f"{API}{endpoint}"
    return f"{API}/workspaces/{world.workspace_id}{endpoint}"


POST_ENDPOINTS = ["/workspaces", "/me/state", "/posts", "/members", "/membership/accept", "/membership/decline",
                  "/membership/leave", "/epochs", "/rekey", "/history", "/key-confirmations", "/read", "/status"]


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
@fuzz(max_examples=30)
@given(data=st.data())
def test_it_answers_any_body_to_any_post_endpoint_without_a_500(world, endpoint, data):
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    body = data.draw(st.one_of(mutated(world.bodies[endpoint]).map(body_bytes), RAW_BODIES), label="body")
    with rolled_back():
        answered(world.sessions[caller].post(path_for(world, endpoint), body, content_type="application/json"))


# Segments of a path where a workspace id goes: the real one, text, and what URL decoding makes.
SEGMENTS = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=40).map(lambda t: quote(t, safe="")),
                     st.sampled_from(["%00", "%ff", "%ED%A0%80", "..", "%2F", "00000000-0000-0000-0000-000000000000",
                                      "x" * 500]))
QUERY_NAMES = st.one_of(st.sampled_from(["after", "limit", "kind", "q"]), st.text(max_size=5))
QUERY_VALUES = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=30).map(lambda t: quote(t, safe="")),
                         EDGE_INTS.map(str), st.integers().map(str),
                         st.sampled_from(["%00", "ab%00cd", "%ff", "%ED%A0%80", "9" * 5000, "a" * 5000, "1e3", "-0",
                                          "%", "%zz", "concern", "update"]))
QUERIES = st.lists(st.tuples(QUERY_NAMES.map(lambda n: quote(n, safe="")), QUERY_VALUES), max_size=3).map(
    lambda pairs: "?" + "&".join(f"{k}={v}" for k, v in pairs) if pairs else "")
PATHS = ["/me", "/me/state", "/directory", "/custodian", "/workspaces", "/workspaces/{ws}", "/workspaces/{ws}/posts",
         "/workspaces/{ws}/actions",
         *(f"/workspaces/{{ws}}{endpoint}" for endpoint in POST_ENDPOINTS[2:]), "/workspaces/{ws}/membership/{x}",
         "/{x}", "/workspaces/{ws}/{x}"]


@fuzz(max_examples=150)
@given(data=st.data())
def test_it_answers_any_path_query_and_method_without_a_500(world, data):
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    method = data.draw(st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    workspace = data.draw(st.one_of(st.just(world.workspace_id), SEGMENTS), label="workspace")
    template = data.draw(st.sampled_from(PATHS), label="path")
    path = API + template.format(ws=workspace, x=data.draw(SEGMENTS, label="segment")) + data.draw(QUERIES)
    body = data.draw(st.one_of(st.just(b"{}"), JSON.map(body_bytes)), label="body")
    with rolled_back():
        answered(world.sessions[caller].generic(method, path, body, content_type="application/json"))


@fuzz(max_examples=60)
@given(query=st.one_of(TEXT.filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t)).map(
    lambda t: quote(t, safe="")), QUERY_VALUES))
def test_it_answers_any_directory_search_without_a_500(world, query):
    answered(world.sessions["lead"].get(f"{API}/directory?q={query}"))
