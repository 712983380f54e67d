"""The versioned HTTP JSON API at /api/v1/, through Django's test client with sessions made by the real
sign-in views. Bodies are what a member's client (the Python twin of the browser's) sends; every answer is
JSON, errors are {"error", "reason"}, and no input, however wrong, gets a 500."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from django.test import Client as HttpClient

from accounts.services import professional_offboard
from audit.models import AuditEvent
from messaging import custodian as custodian_pin
from messaging import services
from messaging.models import ClientState, CustodianKey, KeyConfirmation, Membership, Post, Workspace
from messaging.schemas import SEALED_EPOCH_KEY_BYTES
from messaging.services import checks
from tacclient.memory import Memory
from tacprotocol import crypto
from tacprotocol.workspace import CustodianPin, key_confirmation, now_ms, open_post, verify_workspace
from tests.conftest import sign_in
from tests.messaging.factories import Client, due, flip, join, member_key, newest, password_reset

pytestmark = pytest.mark.django_db

API = "/api/v1"
DETAILS = {"name": "Child B", "nhs_number": "9434765919"}


def send(http: HttpClient, path: str, body=None, *, raw: bytes | str | None = None):
    data = raw if raw is not None else json.dumps(body)
    return http.post(f"{API}{path}", data, content_type="application/json")


def get(http: HttpClient, path: str):
    return http.get(f"{API}{path}")


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    return response.json()


def refused(response, status: int, error: str, reason: str | None = None) -> str:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "reason"} and body["error"] == error, body
    assert isinstance(body["reason"], str) and body["reason"]
    if reason is not None:
        assert reason in body["reason"], body["reason"]
    return body["reason"]


@pytest.fixture
def http():
    """A fresh browser session signed in (password and TOTP) as the persona."""

    def make(persona, *, verify: bool = True) -> HttpClient:
        return sign_in(HttpClient(), persona, verify=verify)

    return make


def ws_path(workspace: Workspace | str, tail: str = "") -> str:
    public_id = workspace.public_id if isinstance(workspace, Workspace) else workspace
    return f"/workspaces/{public_id}{tail}"


def read_as(client: Client, detail: dict, posts: list[dict]):
    """What a member's client makes of the JSON alone: the record verified against the pin, each post
    opened against it."""
    keys = verify_workspace(detail, client.identity, my_id=client.user.public_id,
                            pin=CustodianPin.parse(custodian_pin.pin_read()))
    return [open_post(p, keys, details_reference=detail["reference"]) for p in posts]


# --- who may call at all --------------------------------------------------------------------------------

ANY_WS = "00000000-0000-4000-8000-000000000001"
ENDPOINTS = [
    ("GET", "/me"), ("GET", "/directory?q=Riverside"), ("GET", "/custodian"), ("GET", "/workspaces"),
    ("POST", "/workspaces"), ("GET", f"/workspaces/{ANY_WS}"), ("GET", f"/workspaces/{ANY_WS}/posts"),
    ("POST", f"/workspaces/{ANY_WS}/posts"), ("POST", f"/workspaces/{ANY_WS}/members"),
    ("POST", f"/workspaces/{ANY_WS}/membership/accept"), ("POST", f"/workspaces/{ANY_WS}/membership/leave"),
    ("POST", f"/workspaces/{ANY_WS}/epochs"), ("POST", f"/workspaces/{ANY_WS}/rekey"),
    ("POST", f"/workspaces/{ANY_WS}/history"), ("POST", f"/workspaces/{ANY_WS}/key-confirmations"),
    ("POST", f"/workspaces/{ANY_WS}/read"), ("POST", f"/workspaces/{ANY_WS}/status"), ("GET", "/me/state"),
    ("POST", "/me/state"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_it_answers_anonymous_calls_with_401_json(client, method, path):
    response = get(client, path) if method == "GET" else send(client, path, {})
    assert response.status_code == 401
    assert response.json() == {"error": "not_signed_in", "reason": "Sign in first."}


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_it_answers_a_password_only_session_with_403_json(http, lead, method, path):
    session = http(lead, verify=False)
    response = get(session, path) if method == "GET" else send(session, path, {})
    assert response.status_code == 403
    assert response.json() == {"error": "2fa_required", "reason": "Complete two-factor authentication first."}


def test_it_ends_an_offboarded_accounts_api_session(http, lead, gp):
    session = http(gp)
    assert ok(get(session, "/me"))["id"] == str(gp.user.public_id)
    professional_offboard(admin=lead.user, professional=gp.user)
    refused(get(session, "/me"), 401, "not_signed_in")


def test_it_wants_a_csrf_token_for_a_cookie_session(http, lead, custodian):
    session = HttpClient(enforce_csrf_checks=True)
    session.cookies = http(lead).cookies
    assert ok(get(session, "/me"))["id"] == str(lead.user.public_id)
    response = send(session, "/workspaces", Client(lead, custodian).workspace_payload())
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed" and "X-CSRFToken" in response.json()["reason"]
    assert not Workspace.objects.exists()
    # With the token it goes through.
    session.get(f"{API}/me")  # sets the csrftoken cookie
    response = session.post(f"{API}/workspaces", json.dumps(Client(lead, custodian).workspace_payload()),
                            content_type="application/json", HTTP_X_CSRFTOKEN=session.cookies["csrftoken"].value)
    assert response.status_code == 201, response.content


# --- the whole flow over HTTP ---------------------------------------------------------------------------


def test_it_runs_a_workspace_over_http_with_every_reader_verifying(http, lead, gp, custodian):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    lead_http, gp_http = http(lead), http(gp)

    created = ok(send(lead_http, "/workspaces", lead_client.workspace_payload()), 201)
    workspace = Workspace.objects.get(public_id=created["id"])
    assert created["reference"] == workspace.reference
    # Then the child's details, naming the workspace and the reference the server gave it.
    details = {**DETAILS, "workspace": created["id"], "reference": created["reference"]}
    assert ok(send(lead_http, ws_path(workspace, "/posts"), lead_client.seal(workspace, "details", details)),
              201)["seq"] == 1
    ok(send(lead_http, ws_path(workspace, "/members"), lead_client.invite_payload(workspace, gp.user)), 201)
    [listed] = ok(get(gp_http, "/workspaces"))["workspaces"]
    assert (listed["id"], listed["my_state"], listed["unread"], listed["last_seq"]) == (created["id"], "invited", 0,
                                                                                         None)
    assert ok(send(gp_http, ws_path(workspace, "/membership/accept"), {})) == {"state": "accepted"}
    assert ok(send(lead_http, ws_path(workspace, "/epochs"), {"epoch": lead_client.next_epoch_bundle(workspace)}),
              201) == {"epoch": 2}
    concern = gp_client.seal(workspace, "concern", {"category": "health", "detail": "Weight falling"}, rag="red")
    answer = ok(send(gp_http, ws_path(workspace, "/posts"), concern), 201)
    assert answer == {"seq": 2, "post_id": concern["post_id"], "created": True}

    # The lead's client checks everything from the JSON alone: manifests, wraps, signatures.
    detail = ok(get(lead_http, ws_path(workspace)))
    assert (detail["current_rag"], detail["last_seq"], detail["current_epoch"]) == ("red", 2, 2)
    page = ok(get(lead_http, ws_path(workspace, "/posts")))
    opened = read_as(lead_client, detail, page["posts"])
    assert [(p.seq, p.header.kind) for p in opened] == [(1, "details"), (2, "concern")]
    assert opened[0].body == details and opened[1].body["detail"] == "Weight falling"
    # The GP's post names the details as the newest post its author had seen.
    assert (opened[1].header.prev_seq, opened[1].header.prev_hash) == (1, opened[0].post_hash)
    assert page["last_seq"] == 2
    [mine] = ok(get(lead_http, "/workspaces"))["workspaces"]
    assert (mine["my_role"], mine["unread"], mine["current_rag"]) == ("lead", 1, "red")
    assert ok(send(lead_http, ws_path(workspace, "/read"), {"seq": 2})) == {"seq": 2}
    assert ok(get(lead_http, "/workspaces"))["workspaces"][0]["unread"] == 0


def test_it_gives_the_detail_a_member_needs_and_no_more(http, pair):
    workspace, lead_client, gp_client = pair
    detail = ok(get(http(gp_client.persona), ws_path(workspace)))
    assert detail["my_role"] == "member" and detail["my_state"] == "active"
    assert {m["id"] for m in detail["members"]} == {str(lead_client.user.public_id), str(gp_client.user.public_id)}
    assert [e["number"] for e in detail["epochs"]] == [1, 2]
    # Wrapped keys for the caller only, and only for the epochs they were given.
    assert [len(e["my_wraps"]) for e in detail["epochs"]] == [0, 1]
    assert detail["needs_rekey"] == [] and detail["rotation_required"] is False
    text = json.dumps(detail)
    assert "Child B" not in text and "wrapped_secret" not in text


def test_it_shows_an_invited_professional_only_that_the_workspace_exists(http, lead, gp, custodian):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace(DETAILS)
    lead_client.invite(workspace, gp.user)
    gp_http = http(gp)
    detail = ok(get(gp_http, ws_path(workspace)))
    assert detail["my_state"] == "invited"
    assert not {"members", "epochs", "author_keys"} & set(detail)
    refused(get(gp_http, ws_path(workspace, "/posts")), 404, "not_found")


# --- outsiders learn nothing ----------------------------------------------------------------------------

WS_ENDPOINTS = [("GET", ""), ("GET", "/posts"), ("POST", "/posts"), ("POST", "/members"),
                ("POST", "/membership/accept"), ("POST", "/membership/decline"), ("POST", "/membership/leave"),
                ("POST", "/epochs"), ("POST", "/rekey"), ("POST", "/history"), ("POST", "/key-confirmations"),
                ("POST", "/read"), ("POST", "/status")]


@pytest.mark.parametrize(("method", "tail"), WS_ENDPOINTS)
@pytest.mark.parametrize("who", ["outsider", "manager", "removed"])
def test_it_answers_a_non_member_exactly_as_for_a_workspace_that_does_not_exist(
        http, pair, outsider, manager, who, method, tail):
    workspace, lead_client, gp_client = pair
    persona = {"outsider": outsider, "manager": manager, "removed": gp_client.persona}[who]
    if who == "removed":
        lead_client.rotate(workspace, remove=gp_client.user)
    session = http(persona)
    body = {"seq": 1, "status": "closed"}

    def call(path):
        return get(session, path) if method == "GET" else send(session, path, body)

    head = AuditEvent.objects.count()
    real = call(ws_path(workspace, tail))
    missing = call(ws_path(uuid.uuid4(), tail))
    malformed = call(ws_path("not-a-uuid", tail))
    refused(real, 404, "not_found")
    assert real.json() == missing.json() == malformed.json()
    assert AuditEvent.objects.count() == head
    assert Membership.objects.filter(workspace=workspace, professional=persona.user,
                                     state__in=Membership.CURRENT_STATES).count() == 0


def test_it_lists_no_workspaces_for_an_outsider(http, pair, outsider, manager):
    for persona in (outsider, manager):
        assert ok(get(http(persona), "/workspaces")) == {"workspaces": []}


# --- posts ----------------------------------------------------------------------------------------------


def test_it_pages_posts_with_after_and_limit_from_readable_epochs_only(http, pair):
    workspace, lead_client, gp_client = pair
    for n in range(5):
        lead_client.post(workspace, "update", {"text": f"plaintext update number {n}"})
    lead_http, gp_http = http(lead_client.persona), http(gp_client.persona)
    assert [p["seq"] for p in ok(get(lead_http, ws_path(workspace, "/posts")))["posts"]] == [1, 2, 3, 4, 5, 6]
    # The GP joined at epoch 2: the details (epoch 1, seq 1) are not theirs to fetch.
    page = ok(get(gp_http, ws_path(workspace, "/posts")))
    assert [p["seq"] for p in page["posts"]] == [2, 3, 4, 5, 6] and page["last_seq"] == 6
    assert [p["seq"] for p in ok(get(gp_http, ws_path(workspace, "/posts?after=3")))["posts"]] == [4, 5, 6]
    assert [p["seq"] for p in ok(get(gp_http, ws_path(workspace, "/posts?after=2&limit=2")))["posts"]] == [3, 4]
    assert ok(get(gp_http, ws_path(workspace, "/posts?after=6")))["posts"] == []
    post = ok(get(gp_http, ws_path(workspace, "/posts?after=5")))["posts"][0]
    assert set(post) == {"seq", "post_id", "workspace", "author", "author_key_version", "epoch", "kind", "created_at",
                         "header", "nonce", "ciphertext", "signature"}
    assert "plaintext update number" not in json.dumps(post)  # (a short string could occur in base64 by chance)


def test_it_answers_a_retried_post_with_200_and_the_same_sequence(http, pair):
    workspace, _, gp_client = pair
    gp_http = http(gp_client.persona)
    payload = gp_client.seal(workspace, "update", {"text": "once"})
    first = ok(send(gp_http, ws_path(workspace, "/posts"), payload), 201)
    audit = AuditEvent.objects.count()
    again = ok(send(gp_http, ws_path(workspace, "/posts"), payload), 200)
    assert again == {**first, "created": False}
    assert AuditEvent.objects.count() == audit
    assert Post.objects.filter(workspace=workspace).count() == 2


def test_it_answers_refused_posts_with_409_400_and_403(http, pair):
    workspace, lead_client, gp_client = pair
    gp_http = http(gp_client.persona)
    posts = ws_path(workspace, "/posts")
    lead_post = lead_client.post(workspace, "update", {"text": "lead's"}).post

    refused(send(gp_http, posts, flip(gp_client.seal(workspace, "update", {"text": "x"}), "ciphertext")), 400,
            "invalid", "the post signature does not verify")
    refused(send(gp_http, posts, gp_client.seal(workspace, "update", {"text": "x"},
                                                client_time_ms=now_ms() - 3600_000)), 400, "invalid",
            "more than 10 minutes")
    refused(send(gp_http, posts, gp_client.seal(workspace, "concern", {"text": "x"})), 400, "invalid",
            "a concern needs a RAG rating")
    refused(send(gp_http, posts, gp_client.seal(workspace, "retraction", {"reason": "x"},
                                                target=lead_post.post_id)), 403, "forbidden",
            "only the author of a post can make its retraction")
    lead_action = lead_client.post(workspace, "action", {"title": "Visit"}, owner=lead_client.user.public_id).post
    refused(send(gp_http, posts, gp_client.seal(workspace, "action_status", {"note": "x"}, target=lead_action.post_id,
                                                status="done")), 403, "forbidden",
            "only its owner or the lead professional can make an action done")
    seq, post_hash = newest(workspace)
    refused(send(gp_http, posts, gp_client.seal(workspace, "update", {"text": "x"}, prev=(seq + 1, post_hash))), 400,
            "invalid", f"the post says it follows #{seq + 1}, which is not a post of this workspace")
    reused = gp_client.seal(workspace, "update", {"text": "x"}, post_id=lead_post.post_id)
    refused(send(gp_http, posts, reused), 409, "conflict", "this post id is already used by another post")
    stale = gp_client.seal(workspace, "update", {"text": "x"})
    lead_client.rotate(workspace)
    refused(send(gp_http, posts, stale), 409, "conflict", "posts go in the current key epoch (3), not 2")
    assert Post.objects.filter(workspace=workspace).count() == 3


def test_it_answers_a_post_replayed_into_another_workspace_with_409(http, pair):
    workspace, lead_client, gp_client = pair
    other = lead_client.create_workspace()
    join(lead_client, other, gp_client)
    gp_http = http(gp_client.persona)
    payload = gp_client.seal(workspace, "update", {"text": "for the first workspace"})
    ok(send(gp_http, ws_path(workspace, "/posts"), payload), 201)
    refused(send(gp_http, ws_path(other, "/posts"), payload), 409, "conflict",
            "this post id is already used by another post")
    assert not Post.objects.filter(workspace=other).exists()


def test_it_answers_numbers_out_of_range_with_400_never_500(http, pair):
    """A signed time or a due date a database or a JavaScript number cannot hold is a clear 400."""
    workspace, lead_client, gp_client = pair
    lead_http, posts = http(lead_client.persona), ws_path(workspace, "/posts")
    for client_time_ms in (2**63 - 1, 2**63, 2**64 - 1):
        refused(send(lead_http, posts, lead_client.seal(workspace, "update", {"text": "x"},
                                                        client_time_ms=client_time_ms)),
                400, "invalid", "header: the post header's time is out of range")
    refused(send(lead_http, posts, lead_client.seal(workspace, "update", {"text": "x"}, prev=(2**63 - 1, bytes(32)))),
            400, "invalid", "header: the post header's previous sequence number is out of range")
    keys = lead_client.keys(workspace)
    for due_day in (checks.MAX_DUE_DAY + 1, 2**32 - 1):
        header = crypto.PostHeader(workspace_id=workspace.public_id, epoch=2, post_id=uuid.uuid4(),
                                   author_id=lead_client.user.public_id,
                                   author_fingerprint=lead_client.identity.fingerprint(), client_time_ms=now_ms(),
                                   kind="action", owner_id=gp_client.user.public_id, due_day=due_day, status="open",
                                   prev_seq=1, prev_hash=newest(workspace)[1])
        sealed = crypto.post_seal(lead_client.identity, header, b"{}", keys.epoch_keys[2])
        body = dict(zip(("header", "nonce", "ciphertext", "signature"),
                        (base64.b64encode(v).decode() for v in sealed), strict=True))
        refused(send(lead_http, posts, body), 400, "invalid", "the action's due date is after the year 9999")
    assert Post.objects.filter(workspace=workspace).count() == 1


def test_it_refuses_posts_with_409_after_a_member_leaves_until_the_lead_rotates(http, pair):
    workspace, lead_client, gp_client = pair
    lead_http, gp_http = http(lead_client.persona), http(gp_client.persona)
    assert ok(send(gp_http, ws_path(workspace, "/membership/leave"), {})) == {"state": "left"}
    refused(send(lead_http, ws_path(workspace, "/posts"), lead_client.seal(workspace, "update", {"text": "x"})),
            409, "conflict", "a member has left")
    assert ok(get(lead_http, ws_path(workspace)))["rotation_required"] is True
    refused(get(gp_http, ws_path(workspace)), 404, "not_found")
    ok(send(lead_http, ws_path(workspace, "/epochs"), {"epoch": lead_client.next_epoch_bundle(workspace)}), 201)
    ok(send(lead_http, ws_path(workspace, "/posts"), lead_client.seal(workspace, "update", {"text": "x"})), 201)


def test_it_refuses_a_post_from_an_invited_professional_with_403(http, lead, gp, custodian):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    from tacprotocol.workspace import seal_post

    payload = seal_post(identity=gp_client.identity, author_id=gp.user.public_id, workspace_id=workspace.public_id,
                        epoch=1, epoch_key=crypto.epoch_key_new(), kind="update", body={"text": "early"})
    refused(send(http(gp), ws_path(workspace, "/posts"), payload), 403, "forbidden", "not a member")


# --- membership, epochs, keys ---------------------------------------------------------------------------


def test_it_lets_only_the_lead_invite_and_refuses_bad_invitations(http, pair, outsider, manager):
    workspace, lead_client, gp_client = pair
    lead_http, gp_http = http(lead_client.persona), http(gp_client.persona)
    members = ws_path(workspace, "/members")
    refused(send(gp_http, members, lead_client.invite_payload(workspace, outsider.user)), 403, "forbidden",
            "only the lead professional or a deputy can invite")
    forged = gp_client.invite_payload(workspace, outsider.user)  # signed by the GP's key
    refused(send(lead_http, members, forged), 400, "invalid", "the invitation signature does not verify")
    refused(send(lead_http, members, {**lead_client.invite_payload(workspace, outsider.user),
                                      "member": str(uuid.uuid4())}), 400, "invalid", "member: no such professional")
    assert ok(send(lead_http, members, lead_client.invite_payload(workspace, outsider.user)), 201) == {
        "member": str(outsider.user.public_id), "state": "invited"}
    refused(send(lead_http, members, lead_client.invite_payload(workspace, outsider.user)), 409, "conflict",
            "already invited")
    stored = Membership.objects.get(workspace=workspace, professional=outsider.user)
    assert stored.invite_epoch == 2 and len(bytes(stored.invite_nonce)) == crypto.INVITE_NONCE_BYTES
    # Signed over the epoch current when invited and a nonce used once: not a version 1 statement, not
    # another epoch, not a nonce used before.
    oversight = lead_client.invite_payload(workspace, manager.user, role="oversight")
    nonce = base64.b64decode(oversight["invite_nonce"])
    v1 = lead_client.identity.sign(b"tac.invite.v1\x00" + workspace.public_id.bytes + manager.user.public_id.bytes
                                   + member_key(manager.user, "oversight").fingerprint + bytes([3]))
    earlier_epoch = lead_client.identity.sign(crypto.invite_statement(
        workspace.public_id, manager.user.public_id, member_key(manager.user, "oversight").fingerprint, "oversight", 1,
        nonce))
    for signature in (v1, earlier_epoch):
        refused(send(lead_http, members, {**oversight, "invite_signature": base64.b64encode(signature).decode()}), 400,
                "invalid", "the invitation signature does not verify")
    reused = lead_client.invite_payload(workspace, manager.user, role="oversight", nonce=bytes(stored.invite_nonce))
    refused(send(lead_http, members, reused), 409, "conflict", "this invitation nonce was used before")
    assert ok(send(lead_http, members, oversight), 201)["state"] == "invited"
    assert bytes(Membership.objects.get(workspace=workspace, professional=manager.user).invite_nonce) == nonce


def test_it_accepts_and_declines_invitations(http, lead, gp, outsider, custodian):
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    lead_client.invite(workspace, outsider.user)
    gp_http, outsider_http = http(gp), http(outsider)
    assert ok(send(gp_http, ws_path(workspace, "/membership/accept"), {})) == {"state": "accepted"}
    refused(send(gp_http, ws_path(workspace, "/membership/accept"), {}), 409, "conflict", "no open invitation")
    assert ok(send(outsider_http, ws_path(workspace, "/membership/decline"))) == {"state": "declined"}
    # Having declined, the workspace is gone for them.
    refused(get(outsider_http, ws_path(workspace)), 404, "not_found")
    refused(send(gp_http, ws_path(workspace, "/membership/join"), {}), 404, "not_found")
    refused(send(http(lead), ws_path(workspace, "/membership/leave"), {}), 400, "invalid",
            "hand the lead role over before leaving")


def test_it_rotates_removes_and_hands_over_through_the_api(http, pair, manager, custodian):
    workspace, lead_client, gp_client = pair
    manager_client = Client(manager, custodian)
    lead_http, gp_http = http(lead_client.persona), http(gp_client.persona)
    epochs = ws_path(workspace, "/epochs")
    refused(send(gp_http, epochs, {"epoch": gp_client.next_epoch_bundle(workspace)}), 403, "forbidden")
    lead_client.invite(workspace, manager.user)
    from messaging.services import membership_respond

    membership_respond(professional=manager.user, workspace=workspace, accept=True)
    stale = lead_client.next_epoch_bundle(workspace)
    assert ok(send(lead_http, epochs, {"epoch": stale}), 201) == {"epoch": 3}
    refused(send(lead_http, epochs, {"epoch": stale}), 409, "conflict", "the next epoch is 4, not 3")
    removal = lead_client.next_epoch_bundle(workspace, exclude={manager.user.pk})
    assert ok(send(lead_http, epochs, {"epoch": removal, "remove": str(manager.user.public_id)}), 201) == {"epoch": 4}
    assert Membership.objects.get(workspace=workspace, professional=manager.user).state == "removed"
    refused(get(http(manager_client.persona), ws_path(workspace)), 404, "not_found")
    handover = lead_client.next_epoch_bundle(workspace, lead=gp_client.user)
    assert ok(send(lead_http, epochs, {"epoch": handover, "new_lead": str(gp_client.user.public_id)}), 201) == {
        "epoch": 5}
    assert ok(get(gp_http, ws_path(workspace)))["my_role"] == "lead"
    refused(send(lead_http, epochs, {"epoch": lead_client.next_epoch_bundle(workspace)}), 403, "forbidden")
    assert ok(send(gp_http, epochs, {"epoch": gp_client.next_epoch_bundle(workspace)}), 201) == {"epoch": 6}


def test_it_re_keys_a_member_after_a_password_reset_once_a_colleague_confirms_the_key(http, pair):
    workspace, lead_client, gp_client = pair
    gp_client.post(workspace, "update", {"text": "before reset"})
    password_reset(gp_client.persona, "another long passphrase")
    gp_client.refresh_identity()
    gp_http, lead_http = http(gp_client.persona), http(lead_client.persona)
    detail = ok(get(lead_http, ws_path(workspace)))
    assert detail["needs_rekey"] == [{"member": str(gp_client.user.public_id),
                                      "box_public": base64.b64encode(gp_client.identity.box_public).decode(),
                                      "epochs": [2],
                                      "fingerprint": base64.b64encode(gp_client.identity.fingerprint()).decode()}]
    assert ok(get(gp_http, "/me"))["needs_rekey"] is True

    def wraps(epochs):
        return [{"epoch": n, "sealed": base64.b64encode(s).decode()}
                for n, s in lead_client.wraps_for(workspace, gp_client.user, epochs).items()]

    rekey = ws_path(workspace, "/rekey")
    gp_id = str(gp_client.user.public_id)
    # Nobody has compared the new safety number yet: no epoch key is wrapped for it.
    refused(send(lead_http, rekey, {"member": gp_id, "wraps": wraps([2])}), 403, "forbidden",
            "nobody in this workspace has confirmed Dr Priya GP's new key yet")
    confirmation = key_confirmation(lead_client.identity, lead_client.user.public_id, member_key(gp_client.user, "member"))
    assert ok(send(lead_http, ws_path(workspace, "/key-confirmations"), confirmation), 201) == {"confirmed": True}
    refused(send(lead_http, rekey, {"member": gp_id, "wraps": wraps([1])}), 403, "forbidden",
            "cannot be shared with that member: [1]")
    assert ok(send(lead_http, rekey, {"member": gp_id, "wraps": wraps([2])})) == {"wrapped": 1}
    assert ok(get(gp_http, "/me"))["needs_rekey"] is False
    detail = ok(get(gp_http, ws_path(workspace)))
    posts = ok(get(gp_http, ws_path(workspace, "/posts")))["posts"]
    assert [p.body for p in read_as(gp_client, detail, posts)] == [{"text": "before reset"}]


def test_it_shares_history_only_from_the_lead(http, pair):
    workspace, lead_client, gp_client = pair
    body = {"member": str(gp_client.user.public_id),
            "wraps": [{"epoch": 1, "sealed": base64.b64encode(
                lead_client.wraps_for(workspace, gp_client.user, [1])[1]).decode()}]}
    refused(send(http(gp_client.persona), ws_path(workspace, "/history"), body), 403, "forbidden")
    assert ok(send(http(lead_client.persona), ws_path(workspace, "/history"), body)) == {"wrapped": 1}
    assert AuditEvent.objects.filter(kind="membership.history_shared").count() == 1
    assert [p["seq"] for p in ok(get(http(gp_client.persona), ws_path(workspace, "/posts")))["posts"]] == [1]


def test_it_stores_a_signed_key_confirmation(http, pair, outsider, custodian):
    workspace, lead_client, gp_client = pair
    gp_http = http(gp_client.persona)
    path = ws_path(workspace, "/key-confirmations")
    body = key_confirmation(gp_client.identity, gp_client.user.public_id, member_key(lead_client.user, "lead"))
    assert ok(send(gp_http, path, body), 201) == {"confirmed": True}
    assert ok(send(gp_http, path, body), 201) == {"confirmed": True}  # again: the same one, stored once
    assert KeyConfirmation.objects.count() == 1
    assert AuditEvent.objects.filter(kind="key.confirmed", actor_id=gp_client.user.pk).count() == 1
    [relayed] = ok(get(http(lead_client.persona), ws_path(workspace)))["key_confirmations"]
    assert (relayed["confirmer"], relayed["subject"], relayed["signature"]) == (
        str(gp_client.user.public_id), str(lead_client.user.public_id), body["signature"])
    # Wrong: signed by someone else, another safety number, one's own key, someone not in the workspace.
    forged = key_confirmation(Client(outsider, custodian).identity, gp_client.user.public_id,
                              member_key(lead_client.user, "lead"))
    refused(send(gp_http, path, forged), 400, "invalid", "the confirmation's signature does not verify with your key")
    stranger = member_key(outsider.user, "member")
    not_theirs = {**key_confirmation(gp_client.identity, gp_client.user.public_id, stranger),
                  "member": str(lead_client.user.public_id)}
    refused(send(gp_http, path, not_theirs), 409, "conflict", "that safety number is not one of theirs")
    own = key_confirmation(gp_client.identity, gp_client.user.public_id, member_key(gp_client.user, "member"))
    refused(send(gp_http, path, own), 400, "invalid", "you cannot confirm your own key")
    refused(send(gp_http, path, key_confirmation(gp_client.identity, gp_client.user.public_id, stranger)), 400,
            "invalid", "that professional is not a member of this workspace")
    assert KeyConfirmation.objects.count() == 1


def test_it_changes_the_status_for_the_lead_only(http, pair):
    workspace, lead_client, gp_client = pair
    refused(send(http(gp_client.persona), ws_path(workspace, "/status"), {"status": "closed"}), 403, "forbidden")
    lead_http = http(lead_client.persona)
    assert ok(send(lead_http, ws_path(workspace, "/status"), {"status": "stepped_down"})) == {"status": "stepped_down"}
    assert ok(send(lead_http, ws_path(workspace, "/status"), {"status": "closed"})) == {"status": "closed"}
    workspace.refresh_from_db()
    assert workspace.status == "closed" and workspace.closed_at is not None
    refused(send(lead_http, ws_path(workspace, "/posts"), lead_client.seal(workspace, "update", {"text": "x"})),
            409, "conflict", "closed")


def test_it_moves_the_read_position_but_never_past_the_last_post(http, pair):
    workspace, _, gp_client = pair
    gp_http = http(gp_client.persona)
    assert ok(send(gp_http, ws_path(workspace, "/read"), {"seq": 1})) == {"seq": 1}
    ok(send(gp_http, ws_path(workspace, "/read"), {"seq": 10_000}))
    assert Membership.objects.get(workspace=workspace, professional=gp_client.user).last_read_seq == 1


def last_read(workspace, persona) -> int:
    return Membership.objects.get(workspace=workspace, professional=persona.user).last_read_seq


@pytest.mark.parametrize("seq", [2**31, 2**32 + 3, 2**53, 2**63 - 1])
def test_it_caps_a_huge_read_position_at_the_last_post_and_never_moves_it_back(http, pair, seq):
    """2**31 overflowed a 32-bit parameter (IntegrityError, a 500); 2**32 + 3 wrapped to 3 and moved the
    read position backwards. Any integer the column holds is taken and capped at the newest post."""
    workspace, lead_client, gp_client = pair
    for text in ("two", "three", "four", "five"):
        lead_client.post(workspace, "update", {"text": text})
    gp_http = http(gp_client.persona)
    assert ok(send(gp_http, ws_path(workspace, "/read"), {"seq": 4})) == {"seq": 4}
    assert ok(send(gp_http, ws_path(workspace, "/read"), {"seq": seq})) == {"seq": 5}
    assert last_read(workspace, gp_client.persona) == 5
    assert ok(send(gp_http, ws_path(workspace, "/read"), {"seq": 3})) == {"seq": 5}  # never backwards
    assert last_read(workspace, gp_client.persona) == 5


@pytest.mark.parametrize("seq", [2**63, 2**64 + 3, 10**30])
def test_it_refuses_a_read_position_beyond_what_the_column_holds(http, pair, seq):
    workspace, _, gp_client = pair
    refused(send(http(gp_client.persona), ws_path(workspace, "/read"), {"seq": seq}), 400, "invalid",
            f"seq must be an integer from 0 to {2**63 - 1}")
    assert last_read(workspace, gp_client.persona) == 1


def test_it_refuses_a_read_position_from_an_invited_professional_with_403(http, lead, gp, custodian):
    """As the websocket does: only an active member has a read position to move."""
    lead_client = Client(lead, custodian)
    workspace = lead_client.create_workspace()
    lead_client.invite(workspace, gp.user)
    refused(send(http(gp), ws_path(workspace, "/read"), {"seq": 1}), 403, "forbidden")
    services.membership_respond(professional=gp.user, workspace=workspace, accept=True)
    refused(send(http(gp), ws_path(workspace, "/read"), {"seq": 1}), 403, "forbidden")
    assert last_read(workspace, gp) == 0


# --- directory, custodian, me ---------------------------------------------------------------------------


def test_it_searches_the_directory_by_name_and_agency(http, lead, gp, outsider, make_persona):
    gone = make_persona("gone@gp.example", "gp", full_name="Dr Gone Away")
    professional_offboard(admin=gp.user, professional=gone.user)
    session = http(lead)

    def names(q):
        return [p["name"] for p in ok(get(session, f"/directory?q={q}"))["professionals"]]

    assert names("Priya") == ["Dr Priya GP"]
    assert names("riverside") == ["Dr Priya GP"]  # the GP's agency, case-insensitive
    assert names("St Anne") == ["Olly Outsider"]
    assert names("Gone") == []  # never an offboarded account
    assert names("P") == [] and names("") == [] and names("  P  ") == []
    [card] = ok(get(session, "/directory?q=Priya"))["professionals"]
    assert card["agency"] == "Riverside Medical Practice" and card["box_public"] and card["fingerprint"]
    assert "email" not in card


@pytest.mark.parametrize(("query", "reason"), [
    ("ab%00cd", "q must not contain control characters"),  # NUL reached PostgreSQL: a 500 before
    ("%00%00", "q must not contain control characters"),
    ("Pri%0Aya", "q must not contain control characters"),
    ("Pri%09ya", "q must not contain control characters"),
    ("a" * 255, "q is longer than 254 characters"),
])
def test_it_answers_a_directory_search_it_cannot_run_with_400(http, gp, lead, query, reason):
    refused(get(http(lead), f"/directory?q={query}"), 400, "invalid", reason)


def test_it_searches_the_directory_for_text_that_is_merely_unusual(http, gp, lead):
    session = http(lead)
    for query in ("%ED%A0%80%ED%A0%80", "%F0%9F%98%80%20GP", "Pri%C2%A0ya", "%25%25", "%5C%5C", "a" * 254):
        assert ok(get(session, f"/directory?q={query}"))["professionals"] == []
    for query in ("%20Priya%20", "Priya%0A", "%09Priya%C2%A0"):  # what a paste brings along is trimmed
        assert [p["name"] for p in ok(get(session, f"/directory?q={query}"))["professionals"]] == ["Dr Priya GP"]


def test_it_publishes_the_custodian_key(http, lead, custodian):
    """For people and tools; clients believe the pin (tests/messaging/test_custodian.py), never this."""
    session = http(lead)
    body = ok(get(session, "/custodian"))
    assert base64.b64decode(body["box_public"]) == custodian.box_public
    assert base64.b64decode(body["sign_public"]) == custodian.sign_public
    assert body["key_id"] == crypto.custodian_key_id(custodian.box_public, custodian.sign_public).hex()
    CustodianKey.objects.update(is_current=False)
    refused(get(session, "/custodian"), 409, "conflict", "no custodian key is configured")


# --- the saved state ------------------------------------------------------------------------------------


def saved(client: Client, version: int, memory: Memory | None = None) -> dict:
    return (memory or Memory()).seal(client.identity, client.user.public_id, version)


def test_it_keeps_my_saved_state_for_me(http, pair):
    workspace, lead_client, gp_client = pair
    gp_http = http(gp_client.persona)
    assert ok(get(gp_http, "/me/state")) == {"version": 0, "blob": None, "signature": None}
    memory = Memory()
    memory.verify(lead_client.user.public_id, lead_client.identity.fingerprint(), now_ms())
    assert ok(send(gp_http, "/me/state", saved(gp_client, 1, memory))) == {"version": 1}
    assert AuditEvent.objects.filter(kind="client_state.saved", actor_id=gp_client.user.pk).count() == 1
    served = ok(get(gp_http, "/me/state"))
    assert Memory.open(gp_client.identity, gp_client.user.public_id, served).verified == memory.verified
    # Only mine: the lead sees their own (none).
    assert ok(get(http(lead_client.persona), "/me/state"))["version"] == 0
    refused(send(gp_http, "/me/state", saved(gp_client, 1)), 409, "conflict",
            "the saved state is at version 1: read it, merge and save version 2")
    refused(send(gp_http, "/me/state", saved(gp_client, 3)), 409, "conflict", "save version 2")
    refused(send(gp_http, "/me/state", saved(lead_client, 2)), 400, "invalid",
            "the saved state is not signed with your current key")
    big = bytes(services.MAX_STATE_BYTES + 1)
    signature = gp_client.identity.sign(crypto.state_signed_message(gp_client.user.public_id, 2, big))
    refused(send(gp_http, "/me/state", {"version": 2, "blob": base64.b64encode(big).decode(),
                                        "signature": base64.b64encode(signature).decode()}), 400, "invalid",
            f"blob is longer than {services.MAX_STATE_BYTES} bytes")
    assert ok(send(gp_http, "/me/state", saved(gp_client, 2))) == {"version": 2}
    for junk in ({}, {"version": "2"}, {"version": 0, "blob": "AAAA", "signature": "AAAA"},
                 {**saved(gp_client, 3), "version": True}, {**saved(gp_client, 3), "blob": B64_NOISE},
                 {**saved(gp_client, 3), "signature": "AAAA"}, {**saved(gp_client, 3), "version": 2**64}):
        refused(send(gp_http, "/me/state", junk), 400, "invalid")
    for raw in GARBAGE:
        refused(send(gp_http, "/me/state", raw=raw), 400, "invalid")
    assert ClientState.objects.get(professional=gp_client.user).version == 2


def test_it_stops_serving_the_saved_state_after_a_password_reset(http, pair):
    """The new identity key cannot open the old copy: it is not served, and saving starts again at 1."""
    _, _, gp_client = pair
    ok(send(http(gp_client.persona), "/me/state", saved(gp_client, 1)))
    password_reset(gp_client.persona, "another long passphrase")
    gp_client.refresh_identity()
    gp_http = http(gp_client.persona)
    assert ok(get(gp_http, "/me/state")) == {"version": 0, "blob": None, "signature": None}
    assert ok(send(gp_http, "/me/state", saved(gp_client, 1))) == {"version": 1}
    assert Memory.open(gp_client.identity, gp_client.user.public_id, ok(get(gp_http, "/me/state"))).verified == {}


def test_it_tells_me_who_i_am(http, gp, custodian):
    me = ok(get(http(gp), "/me"))
    identity = Client(gp, custodian).identity
    assert (me["id"], me["name"], me["agency"]) == (str(gp.user.public_id), "Dr Priya GP", "Riverside Medical Practice")
    assert base64.b64decode(me["sign_public"]) == identity.sign_public
    assert base64.b64decode(me["fingerprint"]) == identity.fingerprint()


# --- junk never gets a 500 ------------------------------------------------------------------------------

GARBAGE = [
    b"", b"not json", b"{", b"\xff\xfe\x00", b"[]", b"null", b"1", b'"text"', b"true", b"NaN", b"[" * 100_000,
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    b'{"seq": ' + b"9" * 5000 + b"}",  # more digits than Python converts (a ValueError, a 500 before)
]
B64_NOISE = "!!!not base64!!!"


def _header_with(kind_code: int | None = None, version: int | None = None) -> str:
    header = crypto.PostHeader(workspace_id=uuid.uuid4(), epoch=1, post_id=uuid.uuid4(), author_id=uuid.uuid4(),
                               author_fingerprint=bytes(32), client_time_ms=now_ms(), kind="update").to_bytes()
    raw = bytearray(header)
    if kind_code is not None:
        raw[len(crypto.LABEL_POST_HEADER) + 1 + 16 + 4 + 16 + 16 + 32 + 8] = kind_code
    if version is not None:
        raw[len(crypto.LABEL_POST_HEADER)] = version
    return base64.b64encode(bytes(raw)).decode()


def _post_junk() -> list:
    good = {"header": _header_with(), "nonce": base64.b64encode(bytes(24)).decode(),
            "ciphertext": base64.b64encode(b"x" * 40).decode(), "signature": base64.b64encode(bytes(64)).decode()}
    return [
        {}, {"header": None}, {"header": 5}, {"header": B64_NOISE}, {"header": "AAAA"}, {**good, "header": ["x"]},
        {**good, "header": _header_with(kind_code=99)}, {**good, "header": _header_with(version=1)},
        {**good, "header": base64.b64encode(b"\x00" * 5000).decode()},
        {**good, "nonce": "AAAA"}, {**good, "nonce": 1}, {**good, "signature": base64.b64encode(bytes(63)).decode()},
        {**good, "ciphertext": None}, {**good, "ciphertext": B64_NOISE}, {**good, "ciphertext": "é"},
        {**good, "signature": "\ud800"},
    ]


def _bundle_junk(good: dict) -> list:
    """An epoch bundle (POST /workspaces' and /epochs' "epoch") wrong in one way each."""
    manifest = base64.b64decode(good["manifest"])
    return [
        None, [], "x", {"manifest": 1}, {"manifest": B64_NOISE}, {"manifest": "AAAA"},
        {**good, "manifest": base64.b64encode(manifest + b"\x00").decode()},
        {**good, "manifest": base64.b64encode(manifest[:-49]).decode()},
        {**good, "epoch": str(good["epoch"])}, {**good, "epoch": True}, {**good, "epoch": good["epoch"] + 1},
        {**good, "epoch": -1}, {**good, "wraps": "x"}, {**good, "wraps": [1]},
        {**good, "wraps": [{"member": "x", "sealed": "AAAA"}]}, {**good, "wraps": []},
        {**good, "wraps": good["wraps"] * 2}, {**good, "custodian_wrap": "AAAA"},
        {**good, "manifest_signature": None}, {**good, "manifest_signature": base64.b64encode(bytes(64)).decode()},
    ]


def _workspace_junk(good: dict) -> list:
    return [
        {}, {"id": 5}, {"id": "not-a-uuid"}, {"id": str(uuid.uuid4())},
        *({**good, "epoch": bundle} for bundle in _bundle_junk(good["epoch"])),
        {**good, "details": "x"}, {**good, "details": {}}, {**good, "details": _post_junk()[6]},
    ]


def _wraps_junk(member: str) -> list:
    sealed = base64.b64encode(bytes(SEALED_EPOCH_KEY_BYTES)).decode()
    return [
        {"member": member}, {"member": member, "wraps": "x"}, {"member": member, "wraps": []},
        {"member": member, "wraps": [1]}, {"member": member, "wraps": [{"epoch": "1", "sealed": sealed}]},
        {"member": member, "wraps": [{"epoch": 0, "sealed": sealed}]},
        {"member": member, "wraps": [{"epoch": 2**40, "sealed": sealed}]},
        {"member": member, "wraps": [{"epoch": 1, "sealed": "AAAA"}]},
        {"member": member, "wraps": [{"epoch": 1, "sealed": sealed}, {"epoch": 1, "sealed": sealed}]},
        {"member": member, "wraps": [{"epoch": 99, "sealed": sealed}]},
        {"member": "x", "wraps": [{"epoch": 1, "sealed": sealed}]},
        {"member": str(uuid.uuid4()), "wraps": [{"epoch": 1, "sealed": sealed}]},
        {"member": None, "wraps": [{"epoch": 1, "sealed": sealed}]},
    ]


def junk_bodies(tail: str, workspace, lead_client, gp_client) -> list:
    gp_id = str(gp_client.user.public_id)
    if tail == "":
        return _workspace_junk(lead_client.workspace_payload())
    if tail == "/posts":
        return _post_junk()
    if tail == "/members":
        good = lead_client.invite_payload(workspace, lead_client.user)
        return [{}, {"member": 5}, {"member": "x"}, {"member": str(uuid.uuid4())}, {**good, "invite_signature": None},
                {**good, "invite_signature": "AAAA"}, {**good, "invite_signature": B64_NOISE},
                {**good, "invite_nonce": None}, {**good, "invite_nonce": "AAAA"}, {**good, "invite_nonce": B64_NOISE},
                {k: v for k, v in good.items() if k != "invite_nonce"},
                {**good, "role": ["member"]}, {**good, "role": {"a": 1}}, {**good, "role": None},
                {**good, "role": "lead"}]
    if tail == "/epochs":
        good = {"epoch": lead_client.next_epoch_bundle(workspace)}
        return [{}, {**good, "remove": 5}, {**good, "remove": "x"}, {**good, "remove": {"a": 1}},
                {**good, "new_lead": [1]}, {**good, "remove": str(uuid.uuid4())},
                *({"epoch": bundle} for bundle in _bundle_junk(good["epoch"]))]
    if tail in ("/rekey", "/history"):
        return _wraps_junk(gp_id)
    if tail == "/key-confirmations":
        good = key_confirmation(lead_client.identity, lead_client.user.public_id, member_key(gp_client.user, "member"))
        return [{}, {"member": gp_id}, {**good, "fingerprint": 5}, {**good, "fingerprint": "AAAA"},
                {**good, "fingerprint": B64_NOISE}, {**good, "member": []}, {**good, "member": "x"},
                {k: v for k, v in good.items() if k != "confirmed_ms"}, {**good, "confirmed_ms": "1"},
                {**good, "confirmed_ms": True}, {**good, "confirmed_ms": -1}, {**good, "confirmed_ms": 2**53},
                {**good, "confirmed_ms": 2**63 - 1}, {**good, "confirmed_ms": 1.5}, {**good, "signature": "AAAA"},
                {**good, "signature": None}, {**good, "confirmed_ms": 1}]
    if tail == "/read":
        return [{}, {"seq": "1"}, {"seq": -1}, {"seq": 1.5}, {"seq": True}, {"seq": None}, {"seq": 2**64},
                {"seq": [1]}]
    if tail == "/status":
        return [{}, {"status": 5}, {"status": None}, {"status": ["closed"]}, {"status": "archived"},
                {"status": {"x": "closed"}}]
    raise AssertionError(tail)


JUNK_TAILS = ["", "/posts", "/members", "/epochs", "/rekey", "/history", "/key-confirmations", "/read", "/status"]


@pytest.mark.parametrize("tail", JUNK_TAILS)
def test_it_answers_garbage_with_400_and_a_reason(http, pair, tail):
    workspace, lead_client, gp_client = pair
    session = http(lead_client.persona)
    path = "/workspaces" if tail == "" else ws_path(workspace, tail)
    if tail == "/rekey":
        lead_client.confirm(workspace, gp_client.user)  # so the wraps themselves are what is checked
    before = (AuditEvent.objects.count(), Post.objects.count(), workspace.epochs.count())
    for raw in GARBAGE:
        refused(send(session, path, raw=raw), 400, "invalid")
    for body in junk_bodies(tail, workspace, lead_client, gp_client):
        response = send(session, path, body)
        assert response.status_code == 400, (body, response.content[:300])
        refused(response, 400, "invalid")
    assert (AuditEvent.objects.count(), Post.objects.count(), workspace.epochs.count()) == before


@pytest.mark.parametrize(("query", "status"), [
    ("after=abc", 400), ("limit=x", 400), ("after=1.5", 400), ("after=", 400), ("after=%00", 400), ("after=1e3", 400),
    ("limit=-1", 400), ("after=-5", 400), ("kind=gossip", 400),
    ("after=99999999999999999999999", 200), ("limit=99999999999999999999999", 200), ("limit=0", 200),
])
def test_it_answers_bad_paging_with_400_never_500(http, pair, query, status):
    workspace, lead_client, _ = pair
    response = get(http(lead_client.persona), ws_path(workspace, f"/posts?{query}"))
    if status == 400:
        refused(response, 400, "invalid")
    else:
        page = ok(response)
        assert page["last_seq"] == 1
        assert [p["seq"] for p in page["posts"]] == ([1] if query.startswith("limit=9") else [])


def test_it_filters_posts_by_kind(http, pair):
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "concern", {"detail": "x"}, rag="amber")
    lead_client.post(workspace, "update", {"text": "y"})
    session = http(gp_client.persona)
    assert [p["kind"] for p in ok(get(session, ws_path(workspace, "/posts?kind=concern")))["posts"]] == ["concern"]
    # Still only from the epochs the caller holds: the details (epoch 1) are not the GP's.
    assert ok(get(session, ws_path(workspace, "/posts?kind=details")))["posts"] == []


def test_it_answers_a_wrong_method_without_running_the_view(http, pair):
    workspace, lead_client, _ = pair
    session = http(lead_client.persona)
    for response, allowed in [(get(session, ws_path(workspace, "/members")), "POST"),
                              (session.delete(f"{API}{ws_path(workspace)}"), "GET"),
                              (session.put(f"{API}/workspaces", "{}", content_type="application/json"), "GET, POST")]:
        assert response.status_code == 405 and response["Allow"] == allowed
        assert response.json()["error"] == "method_not_allowed" and allowed in response.json()["reason"]


@pytest.mark.parametrize("path", ["/workspaces", f"/workspaces/{ANY_WS}/posts", "/me/state"])
def test_it_answers_a_body_over_the_size_limit_in_json(http, lead, settings, path):
    """Django's RequestDataTooBig was its HTML 400 page; an API client gets the JSON shape and the limit."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"blob": "A" * 2000}
    refused(send(http(lead), path, body), 413, "too_large",
            "the request body is larger than the limit of 1000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)")
    # As a form too, which the CSRF check reads before any view runs.
    response = http(lead).post(f"{API}{path}", {"x": "A" * 2000})
    refused(response, 413, "too_large", "DATA_UPLOAD_MAX_MEMORY_SIZE")


def test_it_keeps_django_s_page_for_a_body_over_the_limit_outside_the_api(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/accounts/password-reset/", {"email": "A" * 2000})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


def test_it_answers_an_unknown_api_path_in_json(http, lead):
    response = get(http(lead), "/no-such-endpoint")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found",
                               "reason": f"no API endpoint at {API}/no-such-endpoint (docs/protocol.md lists them)"}


def test_it_keeps_action_metadata_plain_for_oversight(http, pair):
    """What PRODUCT.md says the server may know (kind, owner, due date, status) and nothing written."""
    workspace, lead_client, gp_client = pair
    payload = lead_client.seal(workspace, "action", {"title": "Refer to CAMHS", "detail": "urgent"},
                               owner=gp_client.user.public_id, due=due(5))
    ok(send(http(lead_client.persona), ws_path(workspace, "/posts"), payload), 201)
    stored = Post.objects.get(post_id=payload["post_id"])
    assert (stored.kind, stored.owner_id, stored.due_date, stored.status) == ("action", gp_client.user.pk, due(5),
                                                                              "open")
    assert b"CAMHS" not in bytes(stored.ciphertext) and b"CAMHS" not in bytes(stored.header)
