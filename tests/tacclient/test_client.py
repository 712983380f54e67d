"""TacClient and LiveSocket against a live daphne serving the real application, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import uuid

import httpx
import pytest

from accounts.schemas import KeyEnrolment
from accounts.services import password_reset_complete
from messaging.models import EpochWrap, Membership, Post, Workspace
from tacclient import client as tacclient_module
from tacclient.client import LiveSocket, TacClient, TacError, TrustError
from tacprotocol import crypto

pytestmark = pytest.mark.django_db(transaction=True)

DETAILS = {"name": "Leo Example", "dob": "2019-04-02", "nhs_number": "9434765919",
           "address": "1 Test Street, Northshire"}


@pytest.fixture
def team(connect, lead, gp, custodian):
    """A workspace led by `lead` with the GP admitted: (lead's client, GP's client, workspace id)."""
    lead_client, gp_client = connect(lead), connect(gp)
    created = lead_client.create_workspace(DETAILS)
    ws_id = uuid.UUID(created["id"])
    lead_client.invite(ws_id, gp.user.email)
    gp_client.accept(ws_id)
    rotated = lead_client.rotate(ws_id, admit=[gp.user.public_id])  # after comparing safety numbers
    assert rotated.admitted == [gp.user.public_id]
    return lead_client, gp_client, ws_id


def test_it_runs_the_team_flow_end_to_end(connect, lead, gp, custodian):
    lead_client, gp_client = connect(lead), connect(gp)
    created = lead_client.create_workspace(DETAILS)
    assert created["reference"].startswith("TAC-")
    # By reference as well as by id.
    assert lead_client.workspace(created["reference"]).id == uuid.UUID(created["id"])
    [card] = lead_client.directory(gp.user.email)
    assert lead_client.invite(created["id"], card) == {"member": str(gp.user.public_id), "state": "invited"}
    assert [w["my_state"] for w in gp_client.workspaces()] == ["invited"]
    assert gp_client.accept(created["reference"]) == {"state": "accepted"}

    rotated = lead_client.rotate(created["id"], admit=[gp.user.public_id])
    assert (rotated.epoch, rotated.admitted, rotated.warnings) == (2, [gp.user.public_id], [])
    assert rotated.details_reposted is not None and rotated.details_reposted.created

    concern = gp_client.concern(created["id"], "neglect", "red", "Missed two appointments")
    seen = lead_client.read(created["id"])
    assert [p.kind for p in seen] == ["details", "details", "concern"]
    assert (seen[-1].body, seen[-1].rag, seen[-1].author) == (
        {"category": "neglect", "detail": "Missed two appointments"}, "red", gp.user.public_id)
    assert seen[-1].post_id == concern.post_id

    action = lead_client.action(created["id"], "Home visit", "Check on Leo", owner=gp.user.email,
                                due=dt.date.today() + dt.timedelta(days=3))
    lead_client.acknowledge(created["id"], concern.post_id)
    gp_client.complete(created["id"], action.post_id, "Visited; all well")

    gp_view = gp_client.read(created["id"])
    # The GP joined at epoch 2: the first details post is history not shared, the re-posted one is theirs.
    assert [p.kind for p in gp_view] == ["details", "concern", "action", "acknowledgement", "action_status"]
    assert gp_view[0].body == {**DETAILS, "workspace": created["id"], "reference": created["reference"]}
    assert (gp_view[2].owner, gp_view[2].due, gp_view[2].body["title"]) == (
        gp.user.public_id, dt.date.today() + dt.timedelta(days=3), "Home visit")
    assert (gp_view[4].target, gp_view[4].status, gp_view[4].body) == (action.post_id, "done",
                                                                      {"note": "Visited; all well"})
    assert Workspace.objects.get(public_id=created["id"]).current_rag == "red"
    assert Post.objects.get(post_id=action.post_id).owner == gp.user


def test_it_signs_in_without_sending_the_password(live_server_url, lead, transactional_db):
    sent: list[bytes] = []

    def record(request: httpx.Request):
        sent.append(request.content)

    client = TacClient(live_server_url)
    client.http.event_hooks["request"].append(record)
    assert client.sign_in(lead.user.email, lead.password, lead.totp()) == lead.user.public_id
    assert client.identity.sign_public == bytes(lead.user.current_identity_key().sign_public)
    assert sent and not any(lead.password.encode() in body for body in sent)
    assert not any(lead.password.replace(" ", "+").encode() in body for body in sent)


def test_it_refuses_a_wrong_password_with_the_servers_reason(live_server_url, lead, transactional_db):
    with pytest.raises(TacError) as raised:
        TacClient(live_server_url).sign_in(lead.user.email, "not the password at all", "000000")
    assert (raised.value.status, raised.value.reason) == (400, "Enter the correct email address and password")


def test_it_refuses_a_wrong_totp_code(live_server_url, lead, transactional_db):
    wrong = f"{(int(lead.totp()) + 1) % 1_000_000:06d}"
    with pytest.raises(TacError) as raised:
        TacClient(live_server_url).sign_in(lead.user.email, lead.password, wrong)
    assert raised.value.status == 400
    assert "code is not correct" in raised.value.reason


def test_it_refuses_a_server_asking_for_a_weak_password_derivation(live_server_url, lead, transactional_db,
                                                                    monkeypatch):
    monkeypatch.setattr(tacclient_module, "DEFAULT_KDF_FLOOR", (3, 64 * 1024 * 1024))
    client = TacClient(live_server_url)
    with pytest.raises(TrustError, match="weaker password derivation"):
        client.sign_in(lead.user.email, lead.password, lead.totp())
    assert client.identity is None


def test_it_keeps_an_outsider_out(team, connect, outsider):
    _lead, _gp, ws_id = team
    stranger = connect(outsider)
    with pytest.raises(TacError) as raised:
        stranger.read(ws_id)
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert stranger.workspaces() == []


def test_it_retries_a_lost_answer_with_the_same_bytes(team, live_server_url, gp):
    _lead, _gp, ws_id = team

    class LoseFirstAnswer(httpx.HTTPTransport):
        """Delivers the first post to the server, then acts as if the answer never came back."""

        lost = 0

        def handle_request(self, request):
            response = super().handle_request(request)
            if request.url.path.endswith("/posts") and request.method == "POST" and not self.lost:
                self.lost += 1
                response.read()
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    transport = LoseFirstAnswer()
    flaky = TacClient(live_server_url, transport=transport)
    flaky.sign_in(gp.user.email, gp.password, gp.totp())
    receipt = flaky.update(ws_id, "Seen in clinic today")
    assert transport.lost == 1
    assert receipt.created is False  # the retry found the stored post: one post, one sequence number
    assert Post.objects.filter(workspace__public_id=ws_id, kind="update").count() == 1


def test_it_flags_a_post_the_server_altered(team):
    lead_client, gp_client, ws_id = team
    receipt = gp_client.update(ws_id, "Original words")
    stored = Post.objects.get(post_id=receipt.post_id)
    tampered = bytearray(bytes(stored.ciphertext))
    tampered[0] ^= 1
    Post.objects.filter(pk=stored.pk).update(ciphertext=bytes(tampered))
    with pytest.raises(TrustError, match="signature does not verify"):
        lead_client.read(ws_id)
    flagged = lead_client.read(ws_id, strict=False)[-1]
    assert (flagged.ok, flagged.body, flagged.post_id) == (False, None, receipt.post_id)


@pytest.mark.parametrize("case", ["never invited", "invited before, and removed since"])
def test_it_refuses_to_admit_a_member_no_lead_invited(team, outsider, gp, case):
    """A server that slips an 'accepted' member into a workspace cannot get the lead's client to
    encrypt for them: the invitation (signed by the lead, for that key, that epoch, once) is checked
    before the epoch is made, and they are left out with a warning."""
    lead_client, _gp, ws_id = team
    workspace = Workspace.objects.get(public_id=ws_id)
    if case == "never invited":
        slipped, name = outsider.user, "Olly Outsider"
        Membership.objects.create(workspace=workspace, professional=slipped, state="accepted", invited_by=workspace.lead,
                                  invite_signature=bytes(64), invite_epoch=2, invite_nonce=os.urandom(16))
        reason = "no invitation signed by the lead (or a deputy) for their current key"
    else:  # the GP's genuine invitation, replayed after the lead removed them
        slipped, name = gp.user, "Dr Priya GP"
        lead_client.rotate(ws_id, remove=gp.user.public_id)
        old = Membership.objects.get(workspace=workspace, professional=slipped)
        Membership.objects.create(workspace=workspace, professional=slipped, state="accepted", invited_by=workspace.lead,
                                  invite_signature=old.invite_signature, invite_epoch=old.invite_epoch,
                                  invite_nonce=old.invite_nonce)
        reason = "this invitation was used before"
    before = Workspace.objects.get(pk=workspace.pk).current_epoch
    result = lead_client.rotate(ws_id, admit=[slipped.public_id])
    assert (result.epoch, result.admitted) == (before + 1, []) and slipped.public_id not in result.members
    assert [w for w in result.warnings if w.startswith(f"{name} was not admitted: {reason}")]
    assert Membership.objects.get(workspace=workspace, professional=slipped, state="accepted")
    assert not EpochWrap.objects.filter(epoch__workspace=workspace, epoch__number=result.epoch,
                                        recipient=slipped).exists()


def test_it_admits_only_the_accepted_invitees_it_is_told_to(team, connect, manager, outsider):
    """`admit` is the lead saying they compared these safety numbers: the others keep waiting."""
    lead_client, _gp, ws_id = team
    manager_client, outsider_client = connect(manager), connect(outsider)
    for persona, client in ((manager, manager_client), (outsider, outsider_client)):
        lead_client.invite(ws_id, persona.user.email)
        client.accept(ws_id)
    result = lead_client.rotate(ws_id, admit=[manager.user.public_id])
    assert result.admitted == [manager.user.public_id]
    assert [w["my_state"] for w in outsider_client.workspaces()] == ["accepted"]
    assert [p.kind for p in manager_client.read(ws_id)] == ["details"]
    assert lead_client.rotate(ws_id).admitted == []  # nobody compared the outsider's safety number
    assert lead_client.rotate(ws_id, admit=[outsider.user.public_id]).admitted == [outsider.user.public_id]


def test_it_removes_a_member_who_then_reads_nothing_more(team, gp):
    lead_client, gp_client, ws_id = team
    result = lead_client.rotate(ws_id, remove=gp.user.public_id)
    assert (result.epoch, result.members) == (3, [lead_client.me])
    lead_client.update(ws_id, "After the GP left")
    with pytest.raises(TacError) as raised:
        gp_client.read(ws_id)
    assert raised.value.status == 404
    assert [p.kind for p in lead_client.read(ws_id)][-2:] == ["details", "update"]


def test_it_rekeys_a_member_after_a_password_reset_once_a_colleague_confirms_the_key(team, connect, gp, settings):
    lead_client, _gp, ws_id = team
    lead_client.update(ws_id, "Before the reset")
    earlier = lead_client.workspace(ws_id).keys.members()[gp.user.public_id].fingerprint
    enrolment, identity = KeyEnrolment.from_password(password="a brand new passphrase", public_id=gp.user.public_id,
                                                     opslimit=settings.TAC_KDF_OPSLIMIT,
                                                     memlimit=settings.TAC_KDF_MEMLIMIT)
    password_reset_complete(professional=gp.user, enrolment=enrolment, otp_token=gp.totp())
    # Until a colleague compares the new safety number, nobody's device wraps an epoch key for it: the lead's
    # client does not, and the server refuses one that tries.
    assert lead_client.rekey_pending(ws_id) == {}
    ws = lead_client.workspace(ws_id)
    sealed = crypto.epoch_key_wrap(ws.id, 2, ws.keys.epoch_keys[2], identity.box_public)
    with pytest.raises(TacError) as raised:
        lead_client._api("POST", f"/api/v1/workspaces/{ws_id}/rekey", json={
            "member": str(gp.user.public_id), "wraps": [{"epoch": 2, "sealed": base64.b64encode(sealed).decode()}]})
    assert (raised.value.status, raised.value.code) == (403, "forbidden")
    assert "nobody in this workspace has confirmed Dr Priya GP's new key yet" in raised.value.reason
    # A new epoch meanwhile keeps the key the manifest lists, and says why.
    rotated = lead_client.rotate(ws_id)
    assert ("Dr Priya GP's key changed and nobody in the team has confirmed the new one: compare the safety number "
            "with them, then admit it") in rotated.warnings
    assert lead_client.workspace(ws_id).keys.members()[gp.user.public_id].fingerprint == earlier
    gp_again = connect(gp, password="a brand new passphrase")
    with pytest.raises(TrustError, match="holds no key for epoch"):
        gp_again.read(ws_id)
    with pytest.raises(TacError, match="holds no key for the current epoch"):
        gp_again.update(ws_id, "Can anyone read this?")

    with pytest.raises(TrustError, match="that safety number is not the one Dr Priya GP's key makes"):
        lead_client.confirm_key(ws_id, gp.user.public_id, crypto.safety_number(earlier))
    assert lead_client.confirm_key(ws_id, gp.user.public_id, crypto.safety_number(identity.fingerprint())) == 2
    assert [p.body for p in gp_again.read(ws_id) if p.kind == "update"] == [{"text": "Before the reset"}]
    assert lead_client.memory.has_verified(gp.user.public_id, identity.fingerprint())
    # The next epoch seals to the confirmed key, with nothing to warn about.
    assert lead_client.rotate(ws_id).warnings == []
    assert lead_client.workspace(ws_id).keys.members()[gp.user.public_id].fingerprint == identity.fingerprint()
    gp_again.update(ws_id, "Back with my new key")
    [back] = [p for p in lead_client.read(ws_id) if p.kind == "update"][-1:]
    assert (back.body, back.key_trust) == ({"text": "Back with my new key"}, "manifest")


def test_it_refuses_an_action_for_someone_outside_the_workspace(team, outsider):
    lead_client, _gp, ws_id = team
    with pytest.raises(TacError, match="is not an active member"):
        lead_client.action(ws_id, "Visit", owner=str(outsider.user.public_id),
                           due=(dt.date.today() + dt.timedelta(days=30)).isoformat())


def test_it_refuses_an_invalid_nhs_number(connect, lead, custodian):
    with pytest.raises(ValueError, match="NHS number"):
        connect(lead).create_workspace({"name": "X", "nhs_number": "9434765918"})


def test_it_sends_and_receives_posts_on_the_live_socket(team, gp):
    lead_client, gp_client, ws_id = team

    async def scenario():
        async with lead_client.live() as lead_sock, gp_client.live() as gp_sock:
            assert gp_sock.user == str(gp.user.public_id)
            backlog_end = await lead_sock.subscribe(ws_id, after_seq=0)
            # The backlog came first: the two details posts (epochs 1 and 2).
            backlog = [await lead_sock.next(timeout=5) for _ in range(2)]
            assert [f["post"]["kind"] for f in backlog] == ["details", "details"]
            assert backlog_end["last_seq"] == 2
            await gp_sock.subscribe(ws_id, after_seq=backlog_end["last_seq"])
            accepted = await gp_sock.post(ws_id, "concern", {"category": "housing", "detail": "Damp flat"},
                                          rag="amber")
            assert (accepted["type"], accepted["created"], accepted["seq"]) == ("post.accepted", True, 3)
            frame = await lead_sock.next(timeout=5)
            assert frame["type"] == "post.created" and frame["post"]["seq"] == 3
            opened = await lead_sock.open(frame)
            assert (opened.body["detail"], opened.rag, opened.author) == ("Damp flat", "amber", gp.user.public_id)
            # A refused frame raises with the server's code and reason; the socket stays open.
            bad = gp_client.seal(ws_id, "update", {"text": "x"})
            bad["signature"] = base64.b64encode(bytes(64)).decode()
            with pytest.raises(TacError) as raised:
                await gp_sock.send_post({"workspace": ws_id, "post": bad})
            assert (raised.value.status, raised.value.code, raised.value.reason) == (
                400, "invalid", "the post signature does not verify")
            assert (await gp_sock.ping())["type"] == "pong"

    asyncio.run(scenario())


def test_it_refuses_a_socket_without_a_verified_session(live_server_url, transactional_db):
    async def scenario():
        await LiveSocket.connect(TacClient(live_server_url))

    with pytest.raises(TacError) as raised:
        asyncio.run(scenario())
    assert raised.value.status == 403


def test_it_hands_the_lead_role_over(team, lead, gp):
    lead_client, gp_client, ws_id = team
    result = lead_client.rotate(ws_id, new_lead=gp.user.public_id)
    assert result.epoch == 3
    assert gp_client.workspace(ws_id).lead_id == gp.user.public_id
    with pytest.raises(TacError) as raised:
        lead_client.rotate(ws_id)
    assert raised.value.status == 403
    # The new lead's device can start the next epoch; the old lead stays, as a member.
    again = gp_client.rotate(ws_id)
    assert (again.epoch, set(again.members)) == (4, {lead.user.public_id, gp.user.public_id})
    assert gp_client.workspace(ws_id).keys.members()[lead.user.public_id].role == "member"


def test_it_opens_a_bare_socket_from_a_session_cookie(team, live_server_url):
    lead_client, _gp, ws_id = team

    async def scenario():
        sock = await LiveSocket.connect_session(live_server_url, lead_client.cookie_header())
        try:
            assert (await sock.subscribe(ws_id))["last_seq"] == 2
            with pytest.raises(TacError, match="no TacClient"):
                await sock.post(ws_id, "update", {"text": "x"})
        finally:
            await sock.close()

    asyncio.run(scenario())


def test_it_rotates_after_a_member_was_offboarded(team, lead, gp):
    from accounts.services import professional_offboard

    lead_client, _gp, ws_id = team
    professional_offboard(admin=lead.user, professional=gp.user)
    assert lead_client.rotate(ws_id).members == [lead.user.public_id]


def test_it_remembers_the_newest_post_and_stops_on_a_record_rolled_back(team, connect, lead):
    """The saved state (tacclient/memory.py, on the server but sealed by the lead) outlives the sign-in: a
    later session notices the server withholding the newest post."""
    lead_client, gp_client, ws_id = team
    lead_client.update(ws_id, "First")
    newest = lead_client.update(ws_id, "Second")
    assert [p.seq for p in lead_client.read(ws_id)][-1] == newest.seq
    later = connect(lead)
    assert later.memory.workspace(ws_id)["seq"] == newest.seq and later.warnings == []
    Post.objects.filter(post_id=newest.post_id).delete()
    Workspace.objects.filter(public_id=ws_id).update(last_seq=newest.seq - 1)
    again = connect(lead)
    with pytest.raises(TrustError, match=f"Your devices saw posts up to #{newest.seq} here"):
        again.read(ws_id)
    with pytest.raises(TrustError, match="posts have been withheld or deleted"):
        again.read(ws_id)
    assert again.record(ws_id).problems == [
        f"Your devices saw posts up to #{newest.seq} here, but the server now shows only up to #{newest.seq - 1}: "
        f"posts have been withheld or deleted. Posting is stopped."]


def test_it_refuses_free_text_over_the_limit_before_sending(team):
    lead_client, _gp, ws_id = team
    with pytest.raises(ValueError, match="text must be 20,000 characters or fewer"):
        lead_client.update(ws_id, "x" * 20_001)
    assert lead_client.update(ws_id, "x" * 20_000).seq
