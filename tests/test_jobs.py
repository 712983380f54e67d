"""Background work (teamaroundchild/jobs.py, issue 10 item 4): jobs deferred inside the transaction of the
change that causes them, and real procrastinate workers (`manage.py tac_worker`, separate processes on the
test database) that run them, retry what failed, and run the clocks."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.models import SITE, AuditChain, AuditEvent, workspace_chain
from audit.tasks import anchors_record
from messaging.models import ConcernSummary
from notifications.models import Notification
from notifications.services import notify
from oversight.tasks import clocks_run
from teamaroundchild import jobs
from tests.messaging.factories import Client, join

ROOT = Path(__file__).resolve().parent.parent


def queued(task_name: str | None = None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_name, args, status, attempts FROM procrastinate_jobs"
                       + (" WHERE task_name = %s" if task_name else "") + " ORDER BY id",
                       [task_name] if task_name else [])
        # Django's connection hands jsonb back as text (its JSONField decodes it).
        return [{"task": task, "args": json.loads(args), "status": status, "attempts": attempts}
                for task, args, status, attempts in cursor.fetchall()]


def test_the_queue_is_on_with_postgresql_and_the_tasks_are_registered():
    assert settings.TAC_JOB_QUEUE
    assert {"notifications.email_send", "notifications.digests_send", "oversight.clocks_run",
            "audit.anchors_record"} <= set(jobs.app.tasks)
    crons = {p.task.name: p.cron for p in jobs.app.periodic_registry.periodic_tasks.values()}
    assert crons == {"oversight.clocks_run": "* * * * *", "notifications.digests_send": "*/15 * * * *",
                     "audit.anchors_record": "*/5 * * * *"}


def test_a_job_exists_only_if_its_change_committed(gp):
    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack), transaction.atomic():
        notify(recipients=[gp.user], kind=Notification.Kind.INVITATION, subject="a")
        assert len(queued("notifications.email_send")) == 1  # written in the same transaction...
        raise RolledBack
    assert queued("notifications.email_send") == []  # ...and gone with it
    assert not Notification.objects.exists()

    with transaction.atomic():
        [made] = notify(recipients=[gp.user], kind=Notification.Kind.INVITATION, subject="b")
    assert queued("notifications.email_send") == [
        {"task": "notifications.email_send", "args": {"notification_id": made.pk}, "status": "todo", "attempts": 0}]


def test_a_post_that_assigns_an_action_defers_its_email_with_it(lead, gp, custodian):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    before = len(queued("notifications.email_send"))
    lead_client.post(workspace, "action", {"title": "Medical"}, owner=gp.user.public_id)
    assert len(queued("notifications.email_send")) == before + 1


def worker(*args: str, email_url: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`manage.py tac_worker` in a process of its own, on this test's database (committed rows only)."""
    db = settings.DATABASES["default"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.dev", "DEBUG": "False",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "EMAIL_URL": email_url, "SECRET_KEY": "test-only-not-secret", "REDIS_URL": settings.REDIS_URL}
    return subprocess.run([sys.executable, "manage.py", "tac_worker", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def queue(transactional_db):
    """Committed rows, and an empty queue: procrastinate's tables are not Django models, so the test
    database's flush between tests leaves their rows behind."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE procrastinate_jobs CASCADE")


@pytest.fixture
def committed_gp(queue, make_persona):
    return make_persona("gp@gp.example", "gp", full_name="Dr Priya GP")


def test_a_real_worker_sends_the_email_once(committed_gp, tmp_path):
    [made] = notify(recipients=[committed_gp.user], kind=Notification.Kind.INVITATION, subject="w")
    done = worker("--once", email_url=f"filemail:///{tmp_path}")
    assert done.returncode == 0, done.stderr
    made.refresh_from_db()
    assert (made.email, made.emailed_at is not None) == (Notification.Email.SENT, True)
    [sent] = list(tmp_path.iterdir())
    assert "gp@gp.example" in sent.read_text() and "/notifications" in sent.read_text()
    assert queued("notifications.email_send")[0]["status"] == "succeeded"

    again = worker("--once", email_url=f"filemail:///{tmp_path}")  # nothing left to do
    assert again.returncode == 0 and len(list(tmp_path.iterdir())) == 1


def test_a_mail_server_that_is_down_is_retried_later(committed_gp):
    [made] = notify(recipients=[committed_gp.user], kind=Notification.Kind.INVITATION, subject="r")
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    done = worker("--once", email_url="smtp://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    [job] = queued("notifications.email_send")
    assert (job["status"], job["attempts"]) == ("todo", 1)  # back in the queue, for later
    with connection.cursor() as cursor:
        cursor.execute("SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = 'notifications.email_send'")
        assert cursor.fetchone()[0] > timezone.now() + dt.timedelta(seconds=30)
    made.refresh_from_db()
    assert made.email == Notification.Email.PENDING


def test_a_real_worker_runs_the_clock(queue, lead, gp, manager, custodian, tmp_path):
    lead_client, gp_client = Client(lead, custodian), Client(gp, custodian)
    workspace = lead_client.create_workspace({"name": "Robin Example"})
    join(lead_client, workspace, gp_client)
    post = gp_client.post(workspace, "concern", {"category": "neglect", "detail": "Hungry"}, rag="red").post
    ConcernSummary.objects.filter(concern=post).update(due_at=timezone.now() - dt.timedelta(minutes=1))
    with transaction.atomic():
        jobs.defer(clocks_run, timestamp=int(timezone.now().timestamp()))
    done = worker("--once", email_url=f"filemail:///{tmp_path}")
    assert done.returncode == 0, done.stderr
    assert ConcernSummary.objects.get(concern=post).breached_at is not None
    breached = Notification.objects.filter(kind=Notification.Kind.CONCERN_BREACHED)
    assert {n.recipient.email for n in breached} == {"lead@csc.example", "manager@csc.example"}
    # The worker took the breach emails it deferred itself, in the same run.
    assert {n.email for n in breached} == {Notification.Email.SENT}


def test_a_real_worker_anchors_the_audit_chains(queue, lead, custodian, tmp_path):
    workspace = Client(lead, custodian).create_workspace({"name": "Robin Example"})
    with transaction.atomic():
        jobs.defer(anchors_record, timestamp=int(timezone.now().timestamp()))
    done = worker("--once", email_url=f"filemail:///{tmp_path}")
    assert done.returncode == 0, done.stderr
    chain = AuditChain.objects.get(name=workspace_chain(workspace.pk))
    [anchored] = AuditEvent.objects.filter(chain__name=SITE, kind="audit.anchored")
    assert [chain.name, chain.seq, chain.hash] in anchored.data["heads"]


def test_the_quick_start_runs_jobs_in_process_after_commit(settings, gp, mailoutbox,
                                                          django_capture_on_commit_callbacks):
    settings.TAC_JOB_QUEUE = False
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            [made] = notify(recipients=[gp.user], kind=Notification.Kind.INVITATION, subject="q")
        assert mailoutbox == []  # nothing runs before the commit
    assert len(callbacks) == 2  # the email job and the badge event
    assert queued("notifications.email_send") == []  # no queue on SQLite: run in this process
    assert [m.to for m in mailoutbox] == [["gp@gp.example"]]
    made.refresh_from_db()
    assert made.email == Notification.Email.SENT
