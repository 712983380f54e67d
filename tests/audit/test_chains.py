"""One hash chain per workspace, one for accounts, and a site chain into which a periodic job anchors the
others' heads (audit/README.md). Posts in different workspaces append to different chains, so they do not
wait on each other; a chain cut short or rewritten after it was anchored is caught even when its head row
was rewritten to match."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from audit import services as audit_services
from audit.models import ACCOUNTS, SITE, AuditChain, AuditEvent, genesis_hash, workspace_chain
from messaging import services
from messaging.models import Post, Workspace
from messaging.schemas import PostEnvelope
from messaging.services import posts
from teamaroundchild import jobs
from tests.audit.test_chain import verify, verify_fails
from tests.messaging.factories import Client, join

pytestmark = pytest.mark.django_db


@contextmanager
def holding_in_a_thread(hold) -> Iterator[list]:
    """Run `hold(held)` in a thread, on its own connection, inside a transaction; `hold` sets the event
    `held` once it holds what it locks. The block runs once it has (or has failed), with the list of the
    thread's failures, which the caller asserts is empty after the block; the thread is joined then."""
    held, failures = threading.Event(), []

    def run() -> None:
        try:
            with transaction.atomic():
                hold(held)
        except Exception as exc:  # reported to the test
            failures.append(exc)
        finally:
            held.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert held.wait(30) and not failures, failures
        yield failures
    finally:
        thread.join(30)


def rows(name: str):
    return AuditEvent.objects.filter(chain__name=name).order_by("seq")


@pytest.fixture
def two(lead, custodian):
    """Two of the lead's workspaces, each with the child's details and an update."""
    client = Client(lead, custodian)
    spaces = [client.create_workspace({"name": name}) for name in ("Child A", "Child B")]
    for workspace in spaces:
        client.post(workspace, "update", {"text": "seen at school"})
    return client, spaces


def test_a_workspace_s_events_form_its_own_chain(two):
    _, spaces = two
    for workspace in spaces:
        name = workspace_chain(workspace.pk)
        events = list(rows(name))
        assert [e.kind for e in events] == ["workspace.created", "post.created", "post.created"]
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[0].prev_hash == genesis_hash(name)
        assert all(after.prev_hash == before.hash for before, after in zip(events, events[1:], strict=False))
        assert (AuditChain.objects.get(name=name).seq, AuditChain.objects.get(name=name).hash) == (3, events[-1].hash)
    # Each chain starts from a hash of its own name: one chain's first row cannot pass for another's.
    assert genesis_hash(workspace_chain(spaces[0].pk)) != genesis_hash(workspace_chain(spaces[1].pk))
    assert not rows(ACCOUNTS).filter(kind__startswith="post.").exists()
    assert rows(ACCOUNTS).filter(kind="account.created").exists()
    assert "0 anchored heads" in verify()


def test_the_anchor_job_writes_each_moved_head_into_the_site_chain_once(two, caplog):
    client, spaces = two
    with caplog.at_level(logging.INFO, logger="audit.services"):
        anchored = audit_services.anchors_record()
    assert anchored == 3  # the two workspaces and the accounts chain
    [event] = rows(SITE)
    heads = {name: (seq, hash_) for name, seq, hash_ in event.data["heads"]}
    for workspace in spaces:
        chain = AuditChain.objects.get(name=workspace_chain(workspace.pk))
        assert heads[chain.name] == (chain.seq, chain.hash)
    # The site chain's head goes to the log too: a copy outside the database.
    assert f"#1 {event.hash}" in caplog.text
    assert audit_services.anchors_record() == 0  # nothing moved since
    client.post(spaces[0], "update", {"text": "home visit done"})
    assert audit_services.anchors_record() == 1
    assert rows(SITE).count() == 2
    assert verify().strip().endswith("in 4 chains, 3 anchored heads checked")


def test_a_chain_cut_short_with_its_head_rewound_is_caught_by_its_anchor(two):
    _, spaces = two
    audit_services.anchors_record()
    name = workspace_chain(spaces[0].pk)
    last = rows(name).last()
    before = rows(name).get(seq=last.seq - 1)
    last.delete()
    AuditChain.objects.filter(name=name).update(seq=before.seq, hash=before.hash)
    # The chain alone now looks whole: only the anchor knows it had a row 3.
    assert f"audit chain {name} broken at row 3: the site chain anchored row 3, which is missing" in verify_fails()


def test_a_tail_rewritten_consistently_is_caught_by_its_anchor(two):
    _, spaces = two
    audit_services.anchors_record()
    name = workspace_chain(spaces[1].pk)
    prev = rows(name).get(seq=1).hash
    for event in rows(name).filter(seq__gte=2):
        event.prev_hash = prev
        if event.seq == 2:
            event.data = {**event.data, "kind": "decision"}
        event.hash = event.compute_hash()
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, data=event.data, hash=event.hash)
        prev = event.hash
    AuditChain.objects.filter(name=name).update(hash=prev)
    message = verify_fails()
    assert f"audit chain {name} broken at row 3: row 3 is not the row the site chain anchored" in message


def test_a_whole_chain_deleted_after_it_was_anchored_is_caught(two):
    _, spaces = two
    audit_services.anchors_record()
    name = workspace_chain(spaces[0].pk)
    rows(name).delete()
    AuditChain.objects.filter(name=name).update(seq=0, hash=genesis_hash(name))
    assert f"audit chain {name} broken at row 3: the site chain anchored row 3, which is missing" in verify_fails()


def test_an_altered_anchor_breaks_the_site_chain(two):
    audit_services.anchors_record()
    event = rows(SITE).get()
    AuditEvent.objects.filter(pk=event.pk).update(data={"heads": []})
    assert f"audit chain {SITE} broken at row 1: row 1 was altered" in verify_fails()


def test_each_broken_chain_is_named(two):
    _, spaces = two
    for workspace in spaces:
        victim = rows(workspace_chain(workspace.pk)).get(seq=2)
        AuditEvent.objects.filter(pk=victim.pk).update(kind="post.deleted")
    message = verify_fails()
    for workspace in spaces:
        assert f"audit chain {workspace_chain(workspace.pk)} broken at row 2: row 2 was altered" in message


def test_the_anchor_job_is_a_periodic_job():
    assert "audit.anchors_record" in {task.name for task in jobs.periodic_tasks()}


@pytest.mark.django_db(transaction=True)
def test_posts_in_two_workspaces_commit_without_waiting_on_each_other(lead, custodian):
    """One post's transaction stays open in a thread (its workspace and its chain locked) while a post in
    another workspace commits. With one head row for every chain (before), the second waited on the first
    and hit its lock timeout here."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (make test runs on it)")
    client = Client(lead, custodian)
    first, second = (client.create_workspace({"name": name}) for name in ("Child A", "Child B"))
    envelopes = [PostEnvelope.parse(client.seal(w, "update", {"text": "seen"})) for w in (first, second)]
    posts_before = {w.pk: rows(workspace_chain(w.pk)).filter(kind="post.created").count() for w in (first, second)}
    release = threading.Event()

    def hold_first(held) -> None:
        services.post_create(author=lead.user, workspace=first, envelope=envelopes[0])
        held.set()
        release.wait(30)

    with holding_in_a_thread(hold_first) as failures:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '3s'")
                services.post_create(author=lead.user, workspace=second, envelope=envelopes[1])
            assert rows(workspace_chain(second.pk)).filter(kind="post.created").count() == posts_before[second.pk] + 1
            # The first is still open: its post is not visible yet.
            assert rows(workspace_chain(first.pk)).filter(kind="post.created").count() == posts_before[first.pk]
        finally:
            release.set()
    assert not failures, failures
    assert rows(workspace_chain(first.pk)).filter(kind="post.created").count() == posts_before[first.pk] + 1
    assert "audit chains intact" in verify()


@pytest.mark.django_db(transaction=True)
def test_the_single_chain_kept_before_becomes_the_accounts_chain_unchanged():
    """Migration 0002 on a database with the old single chain: its rows (about workspaces too) keep their
    numbers and hashes in the accounts chain, whose genesis is the old one, and the old head carries over."""
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    from audit.models import GENESIS_HASH
    from audit.models import AuditEvent as Current

    executor = MigrationExecutor(connection)
    executor.migrate([("audit", "0001_initial")])
    try:
        old = executor.loader.project_state([("audit", "0001_initial")]).apps
        Event, Head = old.get_model("audit", "AuditEvent"), old.get_model("audit", "AuditHead")
        prev = GENESIS_HASH
        for seq, kind in enumerate(["agency.created", "workspace.created", "post.created"], start=1):
            row = Current(seq=seq, occurred_at=timezone.now(), kind=kind, target_type="messaging.workspace",
                          target_id="7", data={"n": seq}, prev_hash=prev)
            row.hash = row.compute_hash()
            Event.objects.create(seq=seq, occurred_at=row.occurred_at, kind=kind, target_type=row.target_type,
                                 target_id="7", data=row.data, prev_hash=prev, hash=row.hash)
            prev = row.hash
        Head.objects.update_or_create(pk=1, defaults={"seq": 3, "hash": prev})
    finally:  # whatever happens above, the database is left at the latest schema for the next test
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    chain = AuditChain.objects.get(name=ACCOUNTS)
    assert (chain.seq, chain.hash) == (3, prev)
    assert [(e.seq, e.kind) for e in rows(ACCOUNTS)] == [(1, "agency.created"), (2, "workspace.created"),
                                                         (3, "post.created")]
    assert verify().strip() == "audit chains intact: 3 rows in 1 chain, 0 anchored heads checked"


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("one", [True, False], ids=["one statement", "two statements"])
def test_a_post_waits_for_a_service_holding_its_workspace_without_deadlock(lead, custodian, monkeypatch, one):
    """Every service locks the workspace's row, then its chain (audit/README.md). A post that arrives while
    a service holds the workspace waits for it holding nothing else, then chains its event after the
    service's. Before, the post's first statement locked the chain before the workspace, and the service,
    appending to the chain, deadlocked with it (PostgreSQL aborted one of the two after a second)."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (make test runs on it)")
    monkeypatch.setattr(posts, "ONE_STATEMENT", one)
    client = Client(lead, custodian)
    workspace = client.create_workspace({"name": "Child E"})
    client.post(workspace, "update", {"text": "the roster checked, the author's key read"})
    envelope = PostEnvelope.parse(client.seal(workspace, "update", {"text": "waits its turn"}))
    def service(held) -> None:
        Workspace.objects.select_for_update().filter(pk=workspace.pk).update(status=F("status"))
        held.set()
        deadline = time.monotonic() + 20
        while not _someone_waits_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        audit_services.audit_record(kind="test.service", target=workspace)

    with holding_in_a_thread(service) as failures, CaptureQueriesContext(connection) as captured:
        stored = services.post_create(author=lead.user, workspace=workspace, envelope=envelope).post
    assert not failures, failures
    assert len(captured) == (1 if one else 4)  # the one statement, or BEGIN, two statements and COMMIT
    events = list(rows(workspace_chain(workspace.pk)))
    assert [e.kind for e in events][-2:] == ["test.service", "post.created"]
    assert events[-1].data["seq"] == stored.seq
    assert "audit chains intact" in verify()


@pytest.mark.django_db(transaction=True)
def test_posts_sent_at_once_are_each_stored_once_and_chained_in_order(lead, gp, custodian):
    """Four workers post into one workspace at once, plain posts (one statement) and concerns (the
    general path) mixed: every post is stored once, the sequence has no gap, and the audit chain holds
    one event a post, in the posts' order."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (make test runs on it)")
    clients = [Client(lead, custodian), Client(gp, custodian)]
    workspace = clients[0].create_workspace({"name": "Child F"})
    join(clients[0], workspace, clients[1])
    for client in clients:
        client.post(workspace, "update", {"text": "the author's key read"})
    first_seq = Workspace.objects.get(pk=workspace.pk).last_seq
    batches = [[(client, PostEnvelope.parse(
        client.seal(workspace, "concern" if k % 5 == 4 else "update", {"text": f"{worker} {k}"} if k % 5 != 4 else
                    {"category": "other", "detail": f"{worker} {k}"}, **({"rag": "amber"} if k % 5 == 4 else {}))))
                for k in range(15)] for worker, client in enumerate(clients * 2)]
    start, failures = threading.Barrier(len(batches)), []

    def worker(batch) -> None:
        try:
            start.wait(30)
            for client, envelope in batch:
                services.post_create(author=client.user, workspace=workspace, envelope=envelope)
        except Exception as exc:  # reported to the test below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    sent = {str(envelope.header.post_id) for batch in batches for _, envelope in batch}
    stored = list(Post.objects.filter(workspace=workspace, seq__gt=first_seq).order_by("seq").values_list("seq", "post_id"))
    assert [seq for seq, _ in stored] == list(range(first_seq + 1, first_seq + 1 + len(sent)))
    assert {str(post_id) for _, post_id in stored} == sent
    events = [e.data for e in rows(workspace_chain(workspace.pk)).filter(kind="post.created")]
    assert [(d["seq"], d["post"]) for d in events[-len(sent):]] == [(seq, str(pid)) for seq, pid in stored]
    assert "audit chains intact" in verify()
