"""An action's life as the Python client makes it and reads it back (tacprotocol/actions.py's rule), against
the live server: assigned, accepted, done with a note, confirmed; reassigned and accepted by the new
owner; and a change the rule forbids that reaches the reader anyway (the operator wrote the row) is
ignored, with a note, wherever signed causal order puts it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import transaction

from accounts.models import Professional
from messaging.models import Epoch, Post, Workspace
from messaging.schemas import PostEnvelope
from tacclient.client import TacClient, TacError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(connect, lead, gp, manager, custodian):
    """Sam leads; Dr Priya GP and Morgan Manager are admitted members. (lead's, GP's, manager's client, id)."""
    lead_client, gp_client, manager_client = connect(lead), connect(gp), connect(manager)
    ws_id = uuid.UUID(lead_client.create_workspace({"name": "Robin Example"})["id"])
    for persona, client in ((gp, gp_client), (manager, manager_client)):
        lead_client.invite(ws_id, persona.user.email)
        client.accept(ws_id)
    assert sorted(lead_client.rotate(ws_id, admit=[gp.user.public_id, manager.user.public_id]).admitted) == sorted(
        [gp.user.public_id, manager.user.public_id])
    return lead_client, gp_client, manager_client, ws_id


def insert(client: TacClient, ws_id: uuid.UUID, status: str, note: str, *, action, **fields) -> Post:
    """A status change the server would refuse, signed by `client`: the operator writes the row instead."""
    envelope = client.seal(ws_id, "action_status", {"note": note}, target=action.post_id, status=status, **fields)
    parsed = PostEnvelope.parse(envelope)
    workspace = Workspace.objects.get(public_id=ws_id)
    target = Post.objects.get(post_id=action.post_id)
    author = Professional.objects.get(public_id=client.me)
    post = Post.objects.create(
        workspace=workspace, seq=workspace.last_seq + 1, post_id=parsed.header.post_id, author=author,
        author_key=author.current_identity_key(), epoch=Epoch.objects.get(workspace=workspace, number=parsed.header.epoch),
        kind="action_status", status=status, target=target, client_time=target.client_time,
        header=parsed.header_bytes, nonce=parsed.nonce, ciphertext=parsed.ciphertext, signature=parsed.signature)
    Workspace.objects.filter(pk=workspace.pk).update(last_seq=workspace.last_seq + 1)
    return post


def test_it_walks_an_action_from_assigned_to_confirmed(team, lead, gp):
    lead_client, gp_client, manager_client, ws_id = team
    due = dt.date.today() + dt.timedelta(days=3)
    action = lead_client.action(ws_id, "Medical", "Book the review", owner=gp.user.email, due=due)
    entry = gp_client.record(ws_id).get(action.post_id)
    assert (entry.status, entry.owner, entry.status_by, entry.due) == ("open", gp.user.public_id, None, due)
    assert not entry.overdue(dt.date.today()) and entry.overdue(due + dt.timedelta(days=1))

    gp_client.accept_action(ws_id, action.post_id)
    with pytest.raises(ValueError, match="a completion note is required"):
        gp_client.complete_action(ws_id, action.post_id, "  ")
    with pytest.raises(TacError, match="only the lead professional can make an action confirmed") as refused:
        gp_client.confirm_action(ws_id, action.post_id)
    assert refused.value.status == 403
    gp_client.complete_action(ws_id, action.post_id, "Review booked for Tuesday")
    assert gp_client.record(ws_id).get(action.post_id).overdue(due + dt.timedelta(days=1)) is False
    # The lead's client has not read the thread since posting the action: its confirmation follows the
    # action, not the done. Readers still judge it where the server did, after the done.
    lead_client.confirm_action(ws_id, action.post_id, "Thank you")

    for reader in (lead_client, gp_client, manager_client):
        record = reader.record(ws_id)
        entry = record.get(action.post_id)
        assert (entry.status, entry.owner, entry.status_by) == ("confirmed", gp.user.public_id, lead.user.public_id)
        assert [(e.header.status, e.opened.body["note"]) for e in entry.events] == [
            ("accepted", ""), ("done", "Review booked for Tuesday"), ("confirmed", "Thank you")]
        assert entry.notes == [] and not record.warnings and not record.problems
    with pytest.raises(TacError, match="an action that is confirmed cannot be reopened") as refused:
        lead_client.reopen_action(ws_id, action.post_id, "Not really")
    assert refused.value.status == 409


def test_it_reassigns_and_the_new_owner_accepts(team, lead, gp, manager):
    lead_client, gp_client, manager_client, ws_id = team
    action = lead_client.action(ws_id, "Home visit", owner=gp.user.email)
    gp_client.accept_action(ws_id, action.post_id)
    with pytest.raises(ValueError, match="names the new owner"):
        lead_client.action_status(ws_id, action.post_id, "reassigned")
    with pytest.raises(TacError, match="only the lead professional can make an action reassigned"):
        gp_client.reassign_action(ws_id, action.post_id, manager.user.email)
    lead_client.reassign_action(ws_id, action.post_id, manager.user.email, "Morgan is seeing the family")

    entry = manager_client.record(ws_id).get(action.post_id)
    assert (entry.status, entry.owner, entry.status_by) == ("open", manager.user.public_id, lead.user.public_id)
    with pytest.raises(TacError, match="only its owner can make an action accepted"):
        gp_client.accept_action(ws_id, action.post_id)  # no longer theirs
    manager_client.accept_action(ws_id, action.post_id)
    with pytest.raises(ValueError, match="a reason is required"):
        manager_client.cancel_action(ws_id, action.post_id, "")
    manager_client.cancel_action(ws_id, action.post_id, "The family moved away")
    entry = gp_client.record(ws_id).get(action.post_id)
    assert (entry.status, entry.owner, entry.status_by) == ("cancelled", manager.user.public_id, manager.user.public_id)
    assert [e.header.status for e in entry.events] == ["accepted", "reassigned", "accepted", "cancelled"]
    assert entry.events[1].header.owner_id == manager.user.public_id


def test_a_change_the_rule_forbids_is_ignored_by_readers_with_a_note(team, gp, manager):
    lead_client, gp_client, manager_client, ws_id = team
    action = lead_client.action(ws_id, "Home visit", owner=gp.user.email)
    gp_client.complete_action(ws_id, action.post_id, "Visited")
    # The GP confirms their own work, and Morgan (neither owner nor lead) cancels: both refused by the
    # server, both signed and written into the record by the operator.
    gp_client.read(ws_id)
    confirmed = insert(gp_client, ws_id, "confirmed", "All done, trust me", action=action)
    manager_client.read(ws_id)
    cancelled = insert(manager_client, ws_id, "cancelled", "closing it", action=action)

    record = lead_client.record(ws_id)
    entry = record.get(action.post_id)
    assert (entry.status, entry.status_by) == ("done", gp.user.public_id)
    assert [e.header.status for e in entry.events] == ["done"]
    assert record.get(confirmed.post_id).ignored == "only the lead professional can make an action confirmed"
    assert record.get(confirmed.post_id).notes == ["Ignored: only the lead professional can make an action confirmed"]
    assert record.get(cancelled.post_id).notes == [
        f"Ignored: only the owner of #{entry.seq} or the lead professional may change its status"]
    assert entry.notes == [
        f"A change to confirmed signed by Dr Priya GP (#{confirmed.seq}) was ignored: only the lead professional can "
        f"make an action confirmed",
        "A status change signed by Morgan Manager, who neither owns this action nor leads the workspace, was ignored"]

    # The former owner accepting after a reassignment: the owner is the one the reassignment named.
    lead_client.read(ws_id)
    lead_client.reopen_action(ws_id, action.post_id, "Not seen yet")
    lead_client.reassign_action(ws_id, action.post_id, manager.user.email)
    gp_client.read(ws_id)
    late = insert(gp_client, ws_id, "accepted", "", action=action)
    record = manager_client.record(ws_id)
    entry = record.get(action.post_id)
    assert (entry.status, entry.owner) == ("open", manager.user.public_id)
    assert record.get(late.post_id).notes == ["Ignored: only its owner can make an action accepted"]


def test_a_change_is_judged_where_signed_order_puts_it_not_where_the_server_numbers_it(team, gp, manager):
    """The server swaps a done and the confirmation that follows it: read in its order, the confirmation
    would come first and be refused; the reader puts it after the done and applies both."""
    lead_client, gp_client, manager_client, ws_id = team
    action = lead_client.action(ws_id, "Home visit", owner=gp.user.email)
    done = gp_client.complete_action(ws_id, action.post_id, "Visited")
    lead_client.read(ws_id)
    confirmed = lead_client.confirm_action(ws_id, action.post_id)
    a, b = Post.objects.get(post_id=done.post_id), Post.objects.get(post_id=confirmed.post_id)
    with transaction.atomic():
        Post.objects.filter(pk=a.pk).update(seq=10_000)
        Post.objects.filter(pk=b.pk).update(seq=a.seq)
        Post.objects.filter(pk=a.pk).update(seq=b.seq)
    record = manager_client.record(ws_id)
    entry = record.get(action.post_id)
    assert (entry.status, [e.header.status for e in entry.events]) == ("confirmed", ["done", "confirmed"])
    assert entry.notes == [] and record.get(confirmed.post_id).ignored is None
    assert not any(n.startswith("Ignored") for e in record.entries for n in e.notes)
    assert any("order was changed" in n for n in record.get(confirmed.post_id).notes)
