"""The live path's cost in statements (teamaroundchild/sql.py, BENCHMARKS.md): an update, the common post,
is the workspace lock, the insert, the workspace update and the audit append's three; a concern adds only
its summary row (oversight's clocks). New work on the post path (summaries, clocks, notifications) must
not add statements to the posts that do not need it."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import services
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
    assert [s.split()[0] for s in update] == ["SELECT", "INSERT", "UPDATE", "SELECT", "INSERT", "UPDATE"], update
    concern = statements(lead_client, workspace, "concern", {"category": "other", "detail": "x"}, rag="amber")
    assert len(concern) == len(update) + 1
    assert any('INSERT INTO "messaging_concernsummary"' in s for s in concern), concern
