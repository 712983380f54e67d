"""The live path's cost in statements (messaging/storage.py, BENCHMARKS.md). On PostgreSQL an update, the
common post, is two: the first locks the workspace and its audit chain and reads what the checks need,
the second writes the post, the workspace's changes, the audit event and the chain's head together. A
concern adds only its summary row (oversight's clocks). The plain path (one statement per write, as on
SQLite) must store exactly the same rows. New work on the post path must not add statements to the posts
that do not need it."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent, workspace_chain
from messaging import services, storage
from messaging.models import Post
from messaging.schemas import PostEnvelope


def statements(client, workspace, kind: str, body: dict, **fields) -> list[str]:
    envelope = PostEnvelope.parse(client.seal(workspace, kind, body, **fields))
    workspace.refresh_from_db()
    with CaptureQueriesContext(connection) as captured:
        services.post_create(author=client.user, workspace=workspace, envelope=envelope)
    shapes = [" ".join(q["sql"].split())[:40] for q in captured.captured_queries]
    return [s for s in shapes if not re.match(r"(RELEASE )?SAVEPOINT", s)]


def test_an_update_and_a_concern_cost_what_they_did(pair):
    workspace, lead_client, _ = pair
    lead_client.post(workspace, "update", {"text": "the roster's wraps checked once"})
    update = statements(lead_client, workspace, "update", {"text": "seen at school"})
    assert [s.split()[:2] for s in update] == [["WITH", "chain"], ["WITH", "p"]], update
    concern = statements(lead_client, workspace, "concern", {"category": "other", "detail": "x"}, rag="amber")
    assert len(concern) == len(update) + 1
    assert any('INSERT INTO "messaging_concernsummary"' in s for s in concern), concern


def stored(workspace) -> tuple[list, list]:
    """The workspace's posts and audit events, without ids and times the two runs cannot share."""
    posts = list(Post.objects.filter(workspace=workspace).order_by("seq").values_list("seq", "kind", "rag", "status"))
    events = list(AuditEvent.objects.filter(chain__name=workspace_chain(workspace.pk)).order_by("seq")
                  .values_list("seq", "kind", "data"))
    return posts, events


@pytest.mark.parametrize("combined", [True, False], ids=["one statement", "plain statements"])
def test_both_write_paths_store_the_same_rows(pair, monkeypatch, combined):
    monkeypatch.setattr(storage, "COMBINED_WRITES", combined)
    workspace, lead_client, gp_client = pair
    lead_client.post(workspace, "update", {"text": "seen at school"})
    concern = gp_client.post(workspace, "concern", {"category": "other", "detail": "x"}, rag="amber").post
    lead_client.post(workspace, "rating_change", {"reason": "worse"}, target=concern.post_id, rag="red")
    lead_client.post(workspace, "update", {"text": "answered"}, parent=concern.post_id)
    posts, events = stored(workspace)
    assert [p[1] for p in posts][-4:] == ["update", "concern", "rating_change", "update"]
    assert [e[1] for e in events][-4:] == ["post.created"] * 4
    assert events[-2][2]["from"] == "amber" and events[-2][2]["to"] == "red"
    workspace.refresh_from_db()
    assert (workspace.last_seq, workspace.current_rag) == (posts[-1][0], "red")
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "intact" in out.getvalue()
