"""The live path's cost in statements (messaging/storage.py, BENCHMARKS.md). On PostgreSQL a plain post
(an update, a decision, the child's details: the common post) is one statement, its own transaction
(storage.post_one_statement), once the author's current key has been read; any other post is two: the
first locks the workspace and its audit chain and reads what the checks need, the second writes the
post, the workspace's changes, the audit event and the chain's head together. A concern adds only its
summary row (oversight's clocks). The general path, and the plain path (one statement per write, as on
SQLite), must store exactly the same rows. New work on the post path must not add statements to the
posts that do not need it."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import IdentityKey, Professional
from audit.models import AuditChain, AuditEvent, workspace_chain
from messaging import services, storage
from messaging.models import Membership, Post, Workspace
from messaging.schemas import PostEnvelope
from messaging.services import posts
from tests.messaging.factories import join, newest


def statements(client, workspace, kind: str, body: dict, **fields) -> list[str]:
    envelope = PostEnvelope.parse(client.seal(workspace, kind, body, **fields))
    workspace.refresh_from_db()
    with CaptureQueriesContext(connection) as captured:
        services.post_create(author=client.user, workspace=workspace, envelope=envelope)
    shapes = [" ".join(q["sql"].split())[:40] for q in captured.captured_queries]
    return [s for s in shapes if not re.match(r"(RELEASE )?SAVEPOINT", s)]


def test_an_update_is_one_statement_and_a_concern_three(pair):
    workspace, lead_client, _ = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    update = statements(lead_client, workspace, "update", {"text": "seen at school"})
    assert [s.split()[:3] for s in update] == [["WITH", "ws", "AS"]], update
    concern = statements(lead_client, workspace, "concern", {"category": "other", "detail": "x"}, rag="amber")
    assert [s.split()[:2] for s in concern[:2]] == [["WITH", "w"], ["WITH", "p"]], concern
    assert len(concern) == 3 and 'INSERT INTO "messaging_concernsummary"' in concern[2], concern
    # A reply: the general path, which looks its parent up.
    parent = Post.objects.filter(workspace=workspace, kind="update").last()
    reply = statements(lead_client, workspace, "update", {"text": "noted"}, parent=parent.post_id)
    assert [s.split()[:2] for s in reply] == [["WITH", "w"], ["SELECT", '"messaging_post"."id",'], ["WITH", "p"]], reply


def test_an_authors_first_post_in_a_process_reads_their_key_under_the_lock(pair):
    """The one statement checks the signature against the key the general path last read for the author;
    with none read yet (a new worker), the post goes the general way, and the next is one statement."""
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    posts._current_keys.pop(gp_client.user.pk, None)
    assert len(statements(gp_client, workspace, "decision", {"text": "first"})) == 2
    assert len(statements(gp_client, workspace, "decision", {"text": "second"})) == 1


def stored(workspace) -> tuple[list, list]:
    """The workspace's posts and audit events, without ids and times the two runs cannot share."""
    posts = list(Post.objects.filter(workspace=workspace).order_by("seq").values_list("seq", "kind", "rag", "status"))
    events = list(AuditEvent.objects.filter(chain__name=workspace_chain(workspace.pk)).order_by("seq")
                  .values_list("seq", "kind", "data"))
    return posts, events


@pytest.mark.parametrize(("one", "combined"), [(True, True), (False, True), (False, False)],
                         ids=["one statement", "two statements", "plain statements"])
def test_every_write_path_stores_the_same_rows(pair, monkeypatch, one, combined):
    monkeypatch.setattr(posts, "ONE_STATEMENT", one)
    monkeypatch.setattr(storage, "COMBINED_WRITES", combined)
    workspace, lead_client, gp_client = pair
    update = lead_client.post(workspace, "update", {"text": "seen at school"}).post
    concern = gp_client.post(workspace, "concern", {"category": "other", "detail": "x"}, rag="amber").post
    lead_client.post(workspace, "rating_change", {"reason": "worse"}, target=concern.post_id, rag="red")
    lead_client.post(workspace, "update", {"text": "answered"}, parent=concern.post_id)
    details = lead_client.post(workspace, "details", {"name": "Child C", "school": "Oak"}).post
    posts_, events = stored(workspace)
    assert [p[1] for p in posts_][-5:] == ["update", "concern", "rating_change", "update", "details"]
    assert [e[1] for e in events][-5:] == ["post.created"] * 5
    assert events[-5][2] == {"seq": update.seq, "post": str(update.post_id), "kind": "update"}
    assert events[-1][2] == {"seq": details.seq, "post": str(details.post_id), "kind": "details"}
    assert events[-3][2]["from"] == "amber" and events[-3][2]["to"] == "red"
    stored_update = Post.objects.get(pk=update.pk)
    assert (stored_update.seq, stored_update.epoch_id, stored_update.author_key_id) == (
        update.seq, update.epoch_id, update.author_key_id)
    assert bytes(stored_update.ciphertext) == bytes(update.ciphertext)
    workspace.refresh_from_db()
    assert (workspace.last_seq, workspace.current_rag) == (posts_[-1][0], "red")
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()


def _unchanged(workspace):
    workspace.refresh_from_db()
    chain = AuditChain.objects.get(name=workspace_chain(workspace.pk))
    return workspace.last_seq, Post.objects.filter(workspace=workspace).count(), chain.seq, chain.hash


def _closed(workspace, client):
    Workspace.objects.filter(pk=workspace.pk).update(status=Workspace.Status.CLOSED)


def _keys_to_renew(workspace, client):
    Workspace.objects.filter(pk=workspace.pk).update(rotation_required=True)


def _roster_moved(workspace, client):
    Workspace.objects.filter(pk=workspace.pk).update(roster_version=F("roster_version") + 1)


def _member_removed(workspace, client):
    Membership.objects.filter(workspace=workspace, professional=client.user).update(state=Membership.State.REMOVED)


def _account_offboarded(workspace, client):
    Professional.objects.filter(pk=client.user.pk).update(is_active=False)


def _key_replaced(workspace, client):
    IdentityKey.objects.filter(professional=client.user).update(replaced_at=timezone.now())


def _key_row_swapped(workspace, client):
    """The cached key's id now holds other public keys (a row rewritten, or an id reused)."""
    IdentityKey.objects.filter(professional=client.user, replaced_at=None).update(sign_public=b"\\x01" * 32)


@pytest.mark.parametrize("change", [_closed, _keys_to_renew, _roster_moved, _member_removed, _account_offboarded,
                                    _key_replaced, _key_row_swapped])
def test_the_one_statement_writes_nothing_when_the_general_path_would_look_again(pair, change):
    """Each thing the general path reads under the lock, changed after the post was checked against what
    the worker knew: the statement writes nothing (no post, no sequence number, no audit event) and the
    caller goes the general way."""
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    envelope = PostEnvelope.parse(gp_client.seal(workspace, "update", {"text": "checked, then the world moved"}))
    before = _unchanged(workspace)
    change(workspace, gp_client)
    assert posts._post_plain(gp_client.user, workspace, envelope, None) is None
    assert _unchanged(workspace) == before


@pytest.mark.parametrize("case", ["stored already", "another workspace", "after the newest post", "an old epoch"])
def test_the_one_statement_writes_nothing_for_a_post_the_general_path_refuses(pair, case):
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    if case == "stored already":
        payload = gp_client.seal(workspace, "update", {"text": "sent twice"})
        assert services.post_create(author=gp_client.user, workspace=workspace,
                                    envelope=PostEnvelope.parse(payload)).created
    elif case == "another workspace":
        other = lead_client.create_workspace({"name": "Child D"})
        join(lead_client, other, gp_client)
        payload = gp_client.seal(other, "update", {"text": "meant for the other child"})
    elif case == "after the newest post":
        seq, post_hash = newest(workspace)
        payload = gp_client.seal(workspace, "update", {"text": "from the future"}, prev=(seq + 1, post_hash))
    else:
        payload = gp_client.seal(workspace, "update", {"text": "the old key"})
        lead_client.rotate(workspace)
    before = _unchanged(workspace)
    assert posts._post_plain(gp_client.user, workspace, PostEnvelope.parse(payload), None) is None
    assert _unchanged(workspace) == before


def test_the_one_statement_stores_what_was_checked(pair):
    """The control for the two tests above: the same kind of post, nothing changed, is stored by it."""
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    envelope = PostEnvelope.parse(gp_client.seal(workspace, "update", {"text": "checked and stored"}))
    last_seq, count, chain_seq, _ = _unchanged(workspace)
    post = posts._post_plain(gp_client.user, workspace, envelope, None)
    assert post is not None and post.seq == last_seq + 1
    assert _unchanged(workspace)[:3] == (last_seq + 1, count + 1, chain_seq + 1)
    event = AuditEvent.objects.get(chain__name=workspace_chain(workspace.pk), seq=chain_seq + 1)
    assert (event.kind, event.actor_id, event.data) == ("post.created", gp_client.user.pk,
                                                        {"seq": post.seq, "post": str(post.post_id), "kind": "update"})
    assert event.hash == event.compute_hash()
