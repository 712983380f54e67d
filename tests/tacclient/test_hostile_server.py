"""The Python client against a server that edits rows and rewrites answers (issue 8, where it applies
to tacclient): each test performs the attack on a live daphne and ends with the client refusing it,
never encrypting for the attacker and never believing what does not verify. The same rules, run over
rewritten answers without a network, are in tests/scenarios.py."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from django.db import transaction

from accounts.models import IdentityKey
from messaging.models import CustodianKey, Epoch, EpochWrap, Membership, Post, Workspace
from messaging.schemas import EpochBundle, PostEnvelope
from tacclient.client import TacClient, TacError, TrustError
from tacprotocol import crypto
from tacprotocol.workspace import MemberKey, epoch_bundle
from tests.messaging.factories import password_reset
from tests.scenarios import server_identity
from tests.tacclient.conftest import totp_reusable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(connect, lead, gp, custodian):
    lead_client, gp_client = connect(lead), connect(gp)
    ws_id = uuid.UUID(lead_client.create_workspace({"name": "Robin Example"})["id"])
    lead_client.invite(ws_id, gp.user.email)
    gp_client.accept(ws_id)
    assert lead_client.rotate(ws_id, admit=[gp.user.public_id]).admitted == [gp.user.public_id]
    gp_client.update(ws_id, "Before anything happened")
    return lead_client, gp_client, ws_id


class Rewriting(httpx.BaseTransport):
    """A transport that hands every JSON answer for a path containing `marker` to `rewrite` first: the
    server rewriting its API answers."""

    def __init__(self, marker: str, rewrite):
        self.inner = httpx.HTTPTransport()
        self.marker, self.rewrite = marker, rewrite

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        if self.marker not in request.url.path or request.method != "GET":
            return response
        response.read()
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        return httpx.Response(response.status_code, json=self.rewrite(body), headers={"content-type": "application/json"})


def test_a_reset_members_new_key_gets_nothing_until_a_colleague_confirms_it(team, connect, gp):
    lead_client, _gp_client, ws_id = team
    password_reset(gp, "a new passphrase for the gp")
    assert lead_client.rekey_pending(ws_id) == {}  # never wrapped for a key nobody confirmed
    new_key = gp.user.current_identity_key()
    assert not EpochWrap.objects.filter(recipient_key=new_key).exists()
    with pytest.raises(TrustError, match="not the one"):
        lead_client.confirm_key(ws_id, gp.user.public_id, safety_number="00000 00000 00000 00000 00000 00000")
    assert not EpochWrap.objects.filter(recipient_key=new_key).exists()
    digits = crypto.safety_number(crypto.fingerprint(bytes(new_key.sign_public), bytes(new_key.box_public)))
    assert lead_client.confirm_key(ws_id, gp.user.public_id, safety_number=digits) == 1  # epoch 2, all she had
    gp_again = connect(gp, password="a new passphrase for the gp")
    assert [p.body["text"] for p in gp_again.read(ws_id) if p.kind == "update"] == ["Before anything happened"]


def test_the_lead_does_not_admit_an_invitation_signed_with_a_key_the_server_made(team, lead, outsider):
    lead_client, _gp, ws_id = team
    workspace = Workspace.objects.get(public_id=ws_id)
    fake, card = server_identity(lead.user.public_id)
    IdentityKey.objects.filter(professional=lead.user, replaced_at__isnull=True).update(replaced_at=workspace.created_at)
    IdentityKey.objects.create(professional=lead.user, version=9, wrapped_secret=bytes(104),
                               **{k: base64.b64decode(v) for k, v in card.items()})
    target = outsider.user.current_identity_key()
    nonce = bytes(16)
    statement = crypto.invite_statement(ws_id, outsider.user.public_id,
                                        crypto.fingerprint(bytes(target.sign_public), bytes(target.box_public)),
                                        "member", workspace.current_epoch, nonce)
    Membership.objects.create(workspace=workspace, professional=outsider.user, role="member", state="accepted",
                              invited_by=lead.user, invite_signature=fake.sign(statement),
                              invite_epoch=workspace.current_epoch, invite_nonce=nonce)
    with pytest.raises((TrustError, TacError)):
        lead_client.rotate(ws_id, admit=[outsider.user.public_id])
    assert not EpochWrap.objects.filter(recipient=outsider.user).exists()


def test_the_lead_does_not_readmit_a_removed_member_on_their_old_invitation(team, gp):
    lead_client, _gp, ws_id = team
    lead_client.rotate(ws_id, remove=gp.user.public_id)
    workspace = Workspace.objects.get(public_id=ws_id)
    epoch = workspace.current_epoch
    Membership.objects.filter(workspace=workspace, professional=gp.user).update(state="accepted", left_at=None)
    result = lead_client.rotate(ws_id, admit=[gp.user.public_id])
    assert result.admitted == [] and any("used before" in w for w in result.warnings)
    assert not EpochWrap.objects.filter(recipient=gp.user, epoch__number__gt=epoch).exists()


def test_an_epoch_signed_with_a_server_key_is_refused_and_nothing_is_sealed_under_it(team, lead, gp, custodian):
    lead_client, gp_client, ws_id = team
    workspace = Workspace.objects.get(public_id=ws_id)
    fake, card = server_identity(lead.user.public_id)
    keys = lead_client.workspace(ws_id).keys
    members = [MemberKey.from_manifest(m) for m in keys.current.members]
    pin = lead_client.custodian()
    bundle, _key = epoch_bundle(lead=fake, workspace_id=ws_id, epoch=3, prev_manifest_hash=keys.manifest_hashes[2],
                                members=members, custodian=pin.current)
    parsed = EpochBundle.parse(bundle)
    previous = Epoch.objects.get(workspace=workspace, number=2)
    forged = Epoch.objects.create(workspace=workspace, number=3, manifest=parsed.manifest_bytes,
                                  manifest_signature=parsed.manifest_signature,
                                  manifest_hash=crypto.hash32(parsed.manifest_bytes), signed_by=lead.user,
                                  signer_key=previous.signer_key, custodian_key=previous.custodian_key,
                                  start_seq=workspace.last_seq)
    for pid, sealed in parsed.wraps.items():
        user = gp.user if pid == gp.user.public_id else lead.user
        EpochWrap.objects.create(epoch=forged, recipient=user, recipient_key=user.current_identity_key(), sealed=sealed,
                                 created_by=lead.user)
    Workspace.objects.filter(pk=workspace.pk).update(current_epoch=3)
    gp_client._workspaces.clear()
    with pytest.raises(TrustError, match="not signed by the lead"):
        gp_client.update(ws_id, "Would be readable by the server")
    assert not Post.objects.filter(epoch=forged).exists()


def test_a_swapped_sealed_key_is_never_used(team, gp):
    lead_client, gp_client, ws_id = team
    server_key = crypto.epoch_key_new()
    box = bytes(gp.user.current_identity_key().box_public)
    EpochWrap.objects.filter(recipient=gp.user, epoch__number=2).update(
        sealed=crypto.epoch_key_wrap(ws_id, 2, server_key, box))
    gp_client._workspaces.clear()
    with pytest.raises(TrustError, match="not the one the lead sealed"):
        gp_client.update(ws_id, "Would be readable by the server")
    assert Post.objects.filter(workspace__public_id=ws_id).count() == 3  # nothing new was stored


def test_new_epochs_are_sealed_to_the_pinned_custodian_key_never_to_a_row_the_server_adds(team, custodian):
    lead_client, _gp, ws_id = team
    rogue = crypto.custodian_identity(bytes(32))
    CustodianKey.objects.update(is_current=False)
    CustodianKey.objects.create(box_public=rogue.box_public, sign_public=rogue.sign_public, label="server's",
                                key_id=crypto.custodian_key_id(rogue.box_public, rogue.sign_public), is_current=True)
    with pytest.raises(TacError):  # the client seals to the pin; the server (rightly, for its row) refuses
        lead_client.rotate(ws_id)
    for wrap in EpochWrap.objects.filter(custodian_key__isnull=False):
        crypto.epoch_key_unwrap(bytes(wrap.sealed), custodian, ws_id, wrap.epoch.number)  # opens with the real one
    assert not EpochWrap.objects.filter(custodian_key__box_public=rogue.box_public).exists()


def test_a_members_keys_swapped_in_place_are_not_wrapped_for_and_their_posts_are_refused(team, gp):
    lead_client, gp_client, ws_id = team
    fake, card = server_identity(gp.user.public_id)
    IdentityKey.objects.filter(professional=gp.user).update(**{k: base64.b64decode(v) for k, v in card.items()})
    workspace = Workspace.objects.get(public_id=ws_id)
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)
    with pytest.raises(TacError):  # wrapped for the manifest's key, which the server no longer knows
        lead_client.rotate(ws_id)
    for wrap in EpochWrap.objects.filter(recipient=gp.user):
        with pytest.raises(crypto.DecryptionError):
            crypto.epoch_key_unwrap(bytes(wrap.sealed), fake, ws_id, wrap.epoch.number)


def test_a_hidden_newest_epoch_stops_a_member_who_saw_it(team, lead, live_server_url):
    lead_client, _gp, ws_id = team
    lead_client.workspace(ws_id)  # remembered: epoch 2, in the saved state on the server

    def hide_epoch_two(body):
        if "epochs" in body:
            body["epochs"] = [e for e in body["epochs"] if e["number"] < 2]
        return body

    rolled = TacClient(live_server_url, transport=Rewriting(f"/api/v1/workspaces/{ws_id}", hide_epoch_two))
    totp_reusable(lead)
    rolled.sign_in(lead.user.email, lead.password, lead.totp())
    with pytest.raises(TrustError, match="hiding a newer epoch"):
        rolled.workspace(ws_id)
    with pytest.raises(TrustError):
        rolled.update(ws_id, "Posted under the old key")
    rolled.close()


def test_swapped_numbers_deletions_and_replays_are_flagged_and_status_follows_signed_order(team, gp):
    lead_client, gp_client, ws_id = team
    action = lead_client.action(ws_id, "Home visit", owner=gp.user.email)
    done = gp_client.complete(ws_id, action.post_id, "Visited")
    lead_client.read(ws_id)
    reopened = lead_client.post(ws_id, "action_status", {"note": "Not seen"}, target=action.post_id, status="reopened")
    a, b = Post.objects.get(post_id=done.post_id), Post.objects.get(post_id=reopened.post_id)
    with transaction.atomic():
        Post.objects.filter(pk=a.pk).update(seq=10_000)
        Post.objects.filter(pk=b.pk).update(seq=a.seq)
        Post.objects.filter(pk=a.pk).update(seq=b.seq)
    record = gp_client.record(ws_id)
    entry = record.get(action.post_id)
    assert entry.status == "reopened"  # signed causal order, not the server's numbers
    assert any("order was changed" in n for e in record.entries for n in e.notes)


def test_an_edit_by_someone_who_did_not_write_the_post_is_not_applied(team, gp, lead):
    lead_client, gp_client, ws_id = team
    update = lead_client.update(ws_id, "Spoke to school")
    gp_client.read(ws_id)
    envelope = gp_client.seal(ws_id, "edit", {"text": "Rewritten by the GP"}, target=update.post_id)
    # The server would refuse it (only the author edits): the operator inserts the row instead.
    workspace = Workspace.objects.get(public_id=ws_id)
    parsed = PostEnvelope.parse(envelope)
    Post.objects.create(workspace=workspace, seq=workspace.last_seq + 1, post_id=parsed.header.post_id, author=gp.user,
                        author_key=gp.user.current_identity_key(), epoch=Epoch.objects.get(workspace=workspace, number=2),
                        kind="edit", target=Post.objects.get(post_id=update.post_id),
                        client_time=Post.objects.get(post_id=update.post_id).client_time,
                        header=parsed.header_bytes, nonce=parsed.nonce, ciphertext=parsed.ciphertext,
                        signature=parsed.signature)
    Workspace.objects.filter(pk=workspace.pk).update(last_seq=workspace.last_seq + 1)
    record = lead_client.record(ws_id)
    assert record.get(update.post_id).body == {"text": "Spoke to school"}
    assert any("did not write this post" in n for n in record.get(update.post_id).notes)


def test_a_client_does_not_post_into_a_record_rolled_back_below_what_its_devices_saw(team, gp, connect):
    lead_client, gp_client, ws_id = team
    gp_client.update(ws_id, "The newest post")
    gp_client.read(ws_id)  # remembered in the GP's saved state: the newest post, by number and hash
    newest = Post.objects.filter(workspace__public_id=ws_id).order_by("-seq").first()
    Post.objects.filter(pk=newest.pk).delete()
    Workspace.objects.filter(public_id=ws_id).update(last_seq=newest.seq - 1)
    again = connect(gp)  # a new session: it knows only the saved state
    with pytest.raises(TrustError, match="withheld or deleted"):
        again.update(ws_id, "Posted into the rolled-back record")
    assert Post.objects.filter(workspace__public_id=ws_id).count() == newest.seq - 1


def test_rotate_admits_by_itself_only_invitees_whose_safety_number_the_lead_compared(team, connect, manager, outsider):
    lead_client, _gp, ws_id = team
    manager_key = manager.user.current_identity_key()
    digits = crypto.safety_number(crypto.fingerprint(bytes(manager_key.sign_public), bytes(manager_key.box_public)))
    with pytest.raises(TrustError, match="not the one"):
        lead_client.invite(ws_id, manager.user.email, safety_number="12345 12345 12345 12345 12345 12345")
    lead_client.invite(ws_id, manager.user.email, safety_number=digits)
    lead_client.invite(ws_id, outsider.user.email)
    connect(manager).accept(ws_id)
    connect(outsider).accept(ws_id)
    result = lead_client.rotate(ws_id)
    assert result.admitted == [manager.user.public_id]
    assert any(w.startswith("Olly Outsider accepted: compare their safety number") for w in result.warnings)
    assert not EpochWrap.objects.filter(recipient=outsider.user).exists()
