"""notifications/services.py against the real database: each happening notifies each person once, emails
go at once or in a daily digest as chosen (urgent kinds always at once), a removed member is sent and
shown nothing more about the workspace, a failing mail server leaves the email to be retried by the
queue, and marking read is audited and announced to the person's sockets."""

from __future__ import annotations

import datetime as dt
import smtplib
import zoneinfo

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from procrastinate.contrib.django.models import ProcrastinateJob

from accounts.services import professional_offboard
from audit.models import AuditEvent
from messaging.models import Membership
from notifications import selectors, services
from notifications.models import Notification, NotificationSettings
from tests.notifications.conftest import email_jobs

pytestmark = pytest.mark.django_db

Kind = Notification.Kind
LONDON = zoneinfo.ZoneInfo("Europe/London")
REFUSING = "tests.notifications.test_services.RefusingBackend"


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def assign(team, title: str = "Book the review meeting"):
    """The lead gives the GP an action, which notifies the GP (messaging/services.py)."""
    return team.lead.post(team.workspace, "action", {"title": title, "detail": ""},
                          owner=team.gp.user.public_id, status="open").post


def events_to(capture_events, user, kind: str) -> list[dict]:
    return [m for g, m in capture_events if g == f"user.{user.pk}" and m["type"] == kind]


def sent_to(user) -> list:
    return [m for m in mail.outbox if m.to == [user.email]]


def test_it_notifies_each_person_once_per_subject(team, gp, capture_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.notify(recipients=[gp.user, gp.user], kind=Kind.ACTION_DUE, subject="action-1",
                                workspace_id=team.workspace.pk, post_seq=3)
    with django_capture_on_commit_callbacks(execute=True):
        again = services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject="action-1",
                                workspace_id=team.workspace.pk, post_seq=3)
    assert len(first) == 1 and again == []
    assert Notification.objects.filter(recipient=gp.user).count() == 1
    assert email_jobs() == [first[0].pk]
    assert events_to(capture_events, gp.user, "notification.created") == [{"type": "notification.created", "unread": 1}]
    # Another subject (another action) is another notification.
    with django_capture_on_commit_callbacks(execute=True):
        services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject="action-2", workspace_id=team.workspace.pk)
    assert events_to(capture_events, gp.user, "notification.created")[-1] == {"type": "notification.created", "unread": 2}


def test_it_tells_the_owner_of_an_action_once_and_not_its_author(team, gp, lead):
    action = assign(team)
    notification = Notification.objects.get(recipient=gp.user)
    assert (notification.kind, notification.workspace_id, notification.post_seq) == (
        Kind.ACTION_ASSIGNED, team.workspace.pk, action.seq)
    team.gp.post(team.workspace, "action_status", {"note": "ok"}, target=action.post_id, status="accepted")
    assert Notification.objects.filter(recipient=gp.user).count() == 1
    assert not Notification.objects.filter(recipient=lead.user).exists()


def test_it_tells_an_offboarded_account_nothing_and_sends_it_nothing(team, gp, make_persona):
    waiting = assign(team)
    practice_admin = make_persona("admin@gp.example", "gp", full_name="Pat Admin", is_agency_admin=True)
    professional_offboard(admin=practice_admin.user, professional=gp.user)
    gp.user.refresh_from_db()

    assert services.notify(recipients=[gp.user], kind=Kind.INVITATION, subject="membership:99",
                           workspace_id=None) == []
    notification = Notification.objects.get(recipient=gp.user, post_seq=waiting.seq)
    assert services.notification_email_send(notification_id=notification.pk) == "skipped"
    assert sent_to(gp.user) == []
    assert Notification.objects.filter(recipient=gp.user).count() == 1


def test_it_emails_at_once_by_default(team, gp):
    assign(team)
    notification = Notification.objects.get(recipient=gp.user)
    assert notification.email == Notification.Email.PENDING and email_jobs() == [notification.pk]
    assert services.notification_email_send(notification_id=notification.pk) == "sent"
    assert services.notification_email_send(notification_id=notification.pk) == "nothing to send"  # a retried job
    (email,) = sent_to(gp.user)
    assert email.subject == services.EMAIL_SUBJECT
    assert "http://127.0.0.1:8000/notifications\n" in email.body
    notification.refresh_from_db()
    assert notification.email == Notification.Email.SENT and notification.emailed_at is not None
    assert AuditEvent.objects.filter(kind="notification.emailed", data__notification=notification.pk).count() == 1


def test_it_keeps_routine_items_for_one_digest_a_day(team, gp):
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.DAILY)
    with time_machine.travel(dt.datetime(2026, 12, 7, 15, 0, tzinfo=LONDON), tick=False):  # a Monday
        assign(team, "first")
        assign(team, "second")
    waiting = Notification.objects.filter(recipient=gp.user)
    assert [n.email for n in waiting] == [Notification.Email.DIGEST] * 2
    assert email_jobs() == []  # no email job for either

    with time_machine.travel(dt.datetime(2026, 12, 8, 6, 59, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 0  # before TAC_DIGEST_HOUR (7)
    assert sent_to(gp.user) == []
    with time_machine.travel(dt.datetime(2026, 12, 8, 7, 0, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 1
    (digest,) = sent_to(gp.user)
    assert digest.subject == services.EMAIL_SUBJECT and "one email a day" in digest.body
    assert {n.email for n in Notification.objects.filter(recipient=gp.user)} == {Notification.Email.SENT}

    # Something routine later that day waits for tomorrow's digest, however often the job runs.
    with time_machine.travel(dt.datetime(2026, 12, 8, 9, 30, tzinfo=LONDON), tick=False):
        assign(team, "third")
        assert services.digests_send() == 0
    with time_machine.travel(dt.datetime(2026, 12, 8, 23, 59, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 0
    assert len(sent_to(gp.user)) == 1
    with time_machine.travel(dt.datetime(2026, 12, 9, 7, 15, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 1
        assert services.digests_send() == 0
    assert len(sent_to(gp.user)) == 2


def test_it_sends_a_digest_to_nobody_with_nothing_waiting(team, gp):
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.DAILY)
    with time_machine.travel(dt.datetime(2026, 12, 8, 8, 0, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 0
    assert mail.outbox == []


@pytest.mark.parametrize("kind", sorted(Notification.URGENT))
def test_it_emails_urgent_kinds_at_once_to_someone_who_chose_a_digest(team, gp, kind):
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.DAILY)
    (notification,) = services.notify(recipients=[gp.user], kind=kind, subject="urgent-1",
                                      workspace_id=team.workspace.pk)
    assert notification.email == Notification.Email.PENDING and email_jobs() == [notification.pk]
    assert services.notification_email_send(notification_id=notification.pk) == "sent"
    assert len(sent_to(gp.user)) == 1


def test_it_sends_waiting_items_when_someone_goes_back_to_straight_away(team, gp):
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.DAILY)
    assign(team)
    notification = Notification.objects.get(recipient=gp.user)
    assert email_jobs() == []
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.IMMEDIATE)
    notification.refresh_from_db()
    assert notification.email == Notification.Email.PENDING and email_jobs() == [notification.pk]
    assert [e.data for e in AuditEvent.objects.filter(kind="notifications.settings_changed").order_by("pk")] == [
        {"routine_email": "daily"}, {"routine_email": "immediate"}]


def test_it_skips_a_removed_members_email_and_lists_nothing_more_of_that_workspace(team, gp, lead):
    assign(team)
    services.notification_settings_update(professional=gp.user, routine_email=NotificationSettings.Routine.DAILY)
    assign(team, "for the digest")
    pending, digest = Notification.objects.filter(recipient=gp.user).order_by("id")
    assert [n.pk for n in selectors.notification_list(professional=gp.user)] == [digest.pk, pending.pk]
    assert selectors.unread_count(professional=gp.user) == 2

    team.lead.rotate(team.workspace, remove=gp.user)
    assert Membership.objects.get(workspace=team.workspace, professional=gp.user).state == Membership.State.REMOVED

    assert services.notification_email_send(notification_id=pending.pk) == "skipped"
    with time_machine.travel(dt.datetime.now(LONDON).replace(hour=12) + dt.timedelta(days=1)):
        assert services.digests_send() == 0
    assert sent_to(gp.user) == []
    assert {n.email for n in Notification.objects.filter(recipient=gp.user)} == {Notification.Email.SKIPPED}
    assert list(selectors.notification_list(professional=gp.user)) == []
    assert selectors.unread_count(professional=gp.user) == 0
    assert services.unread_count(gp.user) == 0
    # Nor is the removed member told anything new about it.
    assert services.notify(recipients=[gp.user], kind=Kind.ACTION_DUE, subject="later",
                           workspace_id=team.workspace.pk) == []


def test_it_raises_when_the_mail_server_fails_and_leaves_the_email_pending(team, gp, settings):
    assign(team)
    notification = Notification.objects.get(recipient=gp.user)
    settings.EMAIL_BACKEND = REFUSING
    with pytest.raises(smtplib.SMTPException):
        services.notification_email_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert (notification.email, notification.emailed_at) == (Notification.Email.PENDING, None)
    assert not AuditEvent.objects.filter(kind="notification.emailed").exists()


@pytest.mark.django_db(transaction=True)
def test_it_is_retried_by_the_queue_until_the_mail_server_answers(team, gp, settings):
    """A real worker (`manage.py tac_worker --once`) runs the email job: it fails while the mail server
    is down and the queue schedules it again; once the server answers, the next attempt sends it."""
    assign(team)
    notification = Notification.objects.get(recipient=gp.user)
    settings.EMAIL_BACKEND = REFUSING
    call_command("tac_worker", "--once")
    job = ProcrastinateJob.objects.get(task_name="notifications.email_send")
    assert (job.status, job.attempts) == ("todo", 1)
    assert job.scheduled_at is not None and job.scheduled_at > dt.datetime.now(dt.UTC)
    notification.refresh_from_db()
    assert notification.email == Notification.Email.PENDING

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with connection.cursor() as cursor:  # the retry's moment has come
        cursor.execute("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", [job.pk])
    call_command("tac_worker", "--once")
    job = ProcrastinateJob.objects.get(pk=job.pk)
    assert (job.status, job.attempts) == ("succeeded", 2)
    notification.refresh_from_db()
    assert notification.email == Notification.Email.SENT
    assert [m.subject for m in sent_to(gp.user)] == [services.EMAIL_SUBJECT]


def test_it_marks_read_audits_and_tells_the_persons_sockets(team, gp, lead, capture_events,
                                                            django_capture_on_commit_callbacks):
    first, second = assign(team, "one"), assign(team, "two")
    mine = {n.post_seq: n for n in Notification.objects.filter(recipient=gp.user)}
    theirs = services.notify(recipients=[lead.user], kind=Kind.ACTION_DUE, subject="x", workspace_id=team.workspace.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.notifications_mark_read(professional=gp.user, ids=[mine[first.seq].pk]) == 1
    assert events_to(capture_events, gp.user, "notifications.read") == [{"type": "notifications.read", "unread": 1}]
    (audit,) = AuditEvent.objects.filter(kind="notifications.read")
    assert (audit.actor_id, audit.data) == (gp.user.pk, {"count": 1})

    # Someone else's notification, or one already read: nothing changes, nothing is audited or sent.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notifications_mark_read(professional=gp.user, ids=[theirs[0].pk, mine[first.seq].pk]) == 0
    assert Notification.objects.get(pk=theirs[0].pk).read_at is None
    assert AuditEvent.objects.filter(kind="notifications.read").count() == 1
    assert len(events_to(capture_events, gp.user, "notifications.read")) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert services.notifications_mark_read(professional=gp.user) == 1
    assert events_to(capture_events, gp.user, "notifications.read")[-1] == {"type": "notifications.read", "unread": 0}
    assert Notification.objects.get(pk=mine[second.seq].pk).read_at is not None
    assert events_to(capture_events, lead.user, "notifications.read") == []


def test_it_lists_exactly_what_it_would_still_email(team, gp, lead, manager, outsider, custodian):
    """The list's filter (access.visible_to) and the email job's check (services.relevant) are one rule
    written twice, as a query and for one row: they agree for every kind of recipient."""
    from tests.messaging.factories import Client

    workspace = team.workspace
    team.lead.invite(workspace, outsider.user)  # invited: a current member
    elsewhere = Client(outsider, custodian).create_workspace({"name": "Other Child"})  # the GP was never in it
    cases = [
        (gp.user, workspace, False), (gp.user, elsewhere, False), (gp.user, None, False), (gp.user, elsewhere, True),
        (outsider.user, workspace, False), (outsider.user, elsewhere, False), (outsider.user, workspace, True),
        (manager.user, workspace, True), (manager.user, workspace, False), (manager.user, None, True),
        (lead.user, workspace, False), (lead.user, elsewhere, False),
    ]
    made = [(Notification.objects.create(recipient=who, kind=Kind.CONCERN_BREACHED, subject=f"case-{i}",
                                         workspace=where, as_manager=as_manager), who)
            for i, (who, where, as_manager) in enumerate(cases)]
    team.lead.rotate(workspace, remove=gp.user)  # and now a removed member
    for notification, who in made:
        listed = selectors.notification_list(professional=who).filter(pk=notification.pk).exists()
        assert listed == services.relevant(who, workspace_id=notification.workspace_id,
                                           as_manager=notification.as_manager), notification.subject
    shown = {n.subject for who in (gp.user, outsider.user, manager.user, lead.user)
             for n in selectors.notification_list(professional=who).filter(subject__startswith="case-")}
    # The GP, removed, keeps only what is about no workspace; the outsider sees the workspace they are
    # invited to and their own; the manager their oversight notifications; the lead their workspace.
    assert shown == {"case-2", "case-4", "case-5", "case-7", "case-9", "case-10"}


class RefusingOneAddressBackend(BaseEmailBackend):
    """A mail server that refuses, for good, the first address it is sent to, and delivers the rest (to
    the test outbox): so the refused digest is the first one tried, whatever order they go in."""

    refused: list[str] = []

    def send_messages(self, email_messages):
        for message in email_messages:
            if not self.refused:
                self.refused.append(message.to[0])
            if message.to[0] in self.refused:
                raise smtplib.SMTPRecipientsRefused({message.to[0]: (550, b"No such mailbox")})
        mail.outbox.extend(email_messages)
        return len(email_messages)


def test_one_refused_address_does_not_hold_back_anyone_elses_digest(team, gp, lead, settings):
    for person in (gp, lead):
        services.notification_settings_update(professional=person.user, routine_email=NotificationSettings.Routine.DAILY)
    with time_machine.travel(dt.datetime(2026, 12, 7, 15, 0, tzinfo=LONDON), tick=False):
        assign(team, "for the GP")
        services.notify(recipients=[lead.user], kind=Kind.ACTION_DUE, subject="lead's", workspace_id=team.workspace.pk)
    RefusingOneAddressBackend.refused = []
    settings.EMAIL_BACKEND = "tests.notifications.test_services.RefusingOneAddressBackend"
    with time_machine.travel(dt.datetime(2026, 12, 8, 7, 0, tzinfo=LONDON), tick=False):
        # The job fails, so the queue retries it; everyone else's digest went all the same.
        with pytest.raises(services.DigestsFailed, match="1 of 2"):
            services.digests_send()
    [refused] = RefusingOneAddressBackend.refused
    other = ({gp.user.email, lead.user.email} - {refused}).pop()
    assert [m.to for m in mail.outbox] == [[other]]
    assert {n.email for n in Notification.objects.filter(recipient__email=refused)} == {Notification.Email.DIGEST}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(dt.datetime(2026, 12, 8, 7, 15, tzinfo=LONDON), tick=False):
        assert services.digests_send() == 1  # the retry sends the refused one's, not the other's again
    assert [m.to for m in mail.outbox] == [[other], [refused]]
