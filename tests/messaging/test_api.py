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
from messaging.models import CustodianKey, Membership, Post, Workspace
from messaging.schemas import SEALED_EPOCH_KEY_BYTES
from tacclient import crypto
from tacclient.workspace import author_sign_keys, now_ms, open_post, verify_workspace
from tests.conftest import sign_in
from tests.messaging.factories import Client, due, flip, password_reset

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


# --- who may call at all --------------------------------------------------------------------------------

ANY_WS = "00000000-0000-4000-8000-000000000001"
ENDPOINTS = [
    ("GET", "/me"), ("GET", "/directory?q=Riverside"), ("GET", "/custodian"), ("GET", "/workspaces"),
    ("POST", "/workspaces"), ("GET", f"/workspaces/{ANY_WS}"), ("GET", f"/workspaces/{ANY_WS}/posts"),
    ("POST", f"/workspaces/{ANY_WS}/posts"), ("POST", f"/workspaces/{ANY_WS}/members"),
    ("POST", f"/workspaces/{ANY_WS}/membership/accept"), ("POST", f"/workspaces/{ANY_WS}/membership/leave"),
    ("POST", f"/workspaces/{ANY_WS}/epochs"), ("POST", f"/workspaces/{ANY_WS}/rekey"),
    ("POST", f"/workspaces/{ANY_WS}/history"), ("POST", f"/workspaces/{ANY_WS}/verify-key"),
    ("POST", f"/workspaces/{ANY_WS}/read"), ("POST", f"/workspaces/{ANY_WS}/status"),
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

    created = ok(send(lead_http, "/workspaces", lead_client.workspace_payload(DETAILS)), 201)
    workspace = Workspace.objects.get(public_id=created["id"])
    assert created["reference"] == workspace.reference
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
    keys = verify_workspace(detail, lead_client.identity)
    signers = author_sign_keys(detail["author_keys"])
    page = ok(get(lead_http, ws_path(workspace, "/posts")))
    opened = [open_post(p, keys, signers) for p in page["posts"]]
    assert [(p.seq, p.header.kind) for p in opened] == [(1, "details"), (2, "concern")]
    assert opened[0].body == DETAILS and opened[1].body["detail"] == "Weight falling"
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
                ("POST", "/epochs"), ("POST", "/rekey"), ("POST", "/history"), ("POST", "/verify-key"),
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
    reused = gp_client.seal(workspace, "update", {"text": "x"}, post_id=lead_post.post_id)
    refused(send(gp_http, posts, reused), 409, "conflict", "this post id is already used by another post")
    stale = gp_client.seal(workspace, "update", {"text": "x"})
    lead_client.rotate(workspace)
    refused(send(gp_http, posts, stale), 409, "conflict", "posts go in the current key epoch (3), not 2")
    assert Post.objects.filter(workspace=workspace).count() == 2


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
    from tacclient.workspace import seal_post

    payload = seal_post(identity=gp_client.identity, author_id=gp.user.public_id, workspace_id=workspace.public_id,
                        epoch=1, epoch_key=crypto.epoch_key_new(), kind="update", body={"text": "early"})
    refused(send(http(gp), ws_path(workspace, "/posts"), payload), 403, "forbidden", "not a member")


# --- membership, epochs, keys ---------------------------------------------------------------------------


def test_it_lets_only_the_lead_invite_and_refuses_bad_invitations(http, pair, outsider, manager):
    workspace, lead_client, gp_client = pair
    lead_http, gp_http = http(lead_client.persona), http(gp_client.persona)
    members = ws_path(workspace, "/members")
    refused(send(gp_http, members, lead_client.invite_payload(workspace, outsider.user)), 403, "forbidden",
            "only the lead professional can invite")
    forged = gp_client.invite_payload(workspace, outsider.user)  # signed by the GP's key
    refused(send(lead_http, members, forged), 400, "invalid", "the invitation signature does not verify")
    refused(send(lead_http, members, {**lead_client.invite_payload(workspace, outsider.user),
                                      "member": str(uuid.uuid4())}), 400, "invalid", "member: no such professional")
    assert ok(send(lead_http, members, lead_client.invite_payload(workspace, outsider.user)), 201) == {
        "member": str(outsider.user.public_id), "state": "invited"}
    refused(send(lead_http, members, lead_client.invite_payload(workspace, outsider.user)), 409, "conflict",
            "already invited")
    oversight = lead_client.invite_payload(workspace, manager.user, role="oversight")
    assert ok(send(lead_http, members, oversight), 201)["state"] == "invited"


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


def test_it_re_keys_a_member_after_a_password_reset(http, pair):
    workspace, lead_client, gp_client = pair
    gp_client.post(workspace, "update", {"text": "before reset"})
    password_reset(gp_client.persona, "another long passphrase")
    gp_client.refresh_identity()
    gp_http, lead_http = http(gp_client.persona), http(lead_client.persona)
    detail = ok(get(lead_http, ws_path(workspace)))
    assert detail["needs_rekey"] == [{"member": str(gp_client.user.public_id),
                                      "box_public": base64.b64encode(gp_client.identity.box_public).decode(),
                                      "epochs": [2]}]
    assert ok(get(gp_http, "/me"))["needs_rekey"] is True

    def wraps(epochs):
        return [{"epoch": n, "sealed": base64.b64encode(s).decode()}
                for n, s in lead_client.wraps_for(workspace, gp_client.user, epochs).items()]

    refused(send(lead_http, ws_path(workspace, "/rekey"), {"member": str(gp_client.user.public_id),
                                                           "wraps": wraps([1])}), 403, "forbidden",
            "cannot be shared with that member: [1]")
    assert ok(send(lead_http, ws_path(workspace, "/rekey"), {"member": str(gp_client.user.public_id),
                                                             "wraps": wraps([2])})) == {"wrapped": 1}
    assert ok(get(gp_http, "/me"))["needs_rekey"] is False
    detail = ok(get(gp_http, ws_path(workspace)))
    keys = verify_workspace(detail, gp_client.identity)
    signers = author_sign_keys(detail["author_keys"])
    posts = ok(get(gp_http, ws_path(workspace, "/posts")))["posts"]
    assert [open_post(p, keys, signers).body for p in posts] == [{"text": "before reset"}]


def test_it_shares_history_only_from_the_lead(http, pair):
    workspace, lead_client, gp_client = pair
    body = {"member": str(gp_client.user.public_id),
            "wraps": [{"epoch": 1, "sealed": base64.b64encode(
                lead_client.wraps_for(workspace, gp_client.user, [1])[1]).decode()}]}
    refused(send(http(gp_client.persona), ws_path(workspace, "/history"), body), 403, "forbidden")
    assert ok(send(http(lead_client.persona), ws_path(workspace, "/history"), body)) == {"wrapped": 1}
    assert AuditEvent.objects.filter(kind="membership.history_shared").count() == 1
    assert [p["seq"] for p in ok(get(http(gp_client.persona), ws_path(workspace, "/posts")))["posts"]] == [1]


def test_it_records_a_verified_safety_number(http, pair):
    workspace, lead_client, gp_client = pair
    gp_http = http(gp_client.persona)
    body = {"member": str(lead_client.user.public_id),
            "fingerprint": base64.b64encode(lead_client.identity.fingerprint()).decode()}
    assert ok(send(gp_http, ws_path(workspace, "/verify-key"), body)) == {"verified": True}
    assert ok(get(gp_http, ws_path(workspace)))["verified_keys"] == {body["member"]: body["fingerprint"]}
    wrong = {**body, "fingerprint": base64.b64encode(bytes(32)).decode()}
    refused(send(gp_http, ws_path(workspace, "/verify-key"), wrong), 409, "conflict", "not their current one")


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


def test_it_publishes_the_custodian_key(http, lead, custodian):
    session = http(lead)
    body = ok(get(session, "/custodian"))
    assert base64.b64decode(body["box_public"]) == custodian.box_public
    assert body["key_id"] == crypto.custodian_key_id(custodian.box_public).hex()
    CustodianKey.objects.update(is_current=False)
    refused(get(session, "/custodian"), 409, "conflict", "no custodian key is configured")


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
        {**good, "header": _header_with(kind_code=99)}, {**good, "header": _header_with(version=2)},
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
                {**good, "role": ["member"]}, {**good, "role": {"a": 1}}, {**good, "role": None},
                {**good, "role": "lead"}]
    if tail == "/epochs":
        good = {"epoch": lead_client.next_epoch_bundle(workspace)}
        return [{}, {**good, "remove": 5}, {**good, "remove": "x"}, {**good, "remove": {"a": 1}},
                {**good, "new_lead": [1]}, {**good, "remove": str(uuid.uuid4())},
                *({"epoch": bundle} for bundle in _bundle_junk(good["epoch"]))]
    if tail in ("/rekey", "/history"):
        return _wraps_junk(gp_id)
    if tail == "/verify-key":
        return [{}, {"member": gp_id}, {"member": gp_id, "fingerprint": 5}, {"member": gp_id, "fingerprint": "AAAA"},
                {"member": gp_id, "fingerprint": B64_NOISE}, {"member": [], "fingerprint": "AAAA"}]
    if tail == "/read":
        return [{}, {"seq": "1"}, {"seq": -1}, {"seq": 1.5}, {"seq": True}, {"seq": None}, {"seq": 2**64},
                {"seq": [1]}]
    if tail == "/status":
        return [{}, {"status": 5}, {"status": None}, {"status": ["closed"]}, {"status": "archived"},
                {"status": {"x": "closed"}}]
    raise AssertionError(tail)


JUNK_TAILS = ["", "/posts", "/members", "/epochs", "/rekey", "/history", "/verify-key", "/read", "/status"]


@pytest.mark.parametrize("tail", JUNK_TAILS)
def test_it_answers_garbage_with_400_and_a_reason(http, pair, tail):
    workspace, lead_client, gp_client = pair
    session = http(lead_client.persona)
    path = "/workspaces" if tail == "" else ws_path(workspace, tail)
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
