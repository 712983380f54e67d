"""Every state change of notifications: making them (each once), emailing them, marking them read, and
each person's choice of immediate or daily email for routine items. Callers pass who and what; this
module never reads a workspace's content (it has none to read)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Professional
from audit.services import audit_record
from messaging import events
from teamaroundchild import jobs

from . import selectors
from .models import Notification, NotificationSettings

logger = logging.getLogger(__name__)

NOTIFICATION_CREATED = "notification.created"
NOTIFICATIONS_READ = "notifications.read"
# Every email this app sends has this subject and nothing more specific (tests/conftest.py tells them apart
# by it from the account emails, which may name their reader).
EMAIL_SUBJECT = "Something new for you in Team Around the Child"


def routine_email_choice(professional: Professional) -> str:
    found = NotificationSettings.objects.filter(professional=professional).values_list("routine_email", flat=True)
    return found.first() or NotificationSettings.Routine.IMMEDIATE


def unread_count(professional: Professional) -> int:
    """The badge's number, as the list counts it (selectors.py: only what the professional may still see)."""
    return selectors.unread_count(professional=professional)


def notify(*, recipients: Iterable[Professional], kind: str, subject: str, workspace_id: int | None = None,
           post_seq: int | None = None, as_manager: bool = False) -> list[Notification]:
    """Tell each recipient that `kind` happened, once per (recipient, kind, subject), inside the caller's
    transaction: the notification, its email job and its live badge event all happen if and only if the
    change that caused them commits. Only those it is relevant to are told (`relevant`): active accounts
    that are current members of the workspace, or managers when `as_manager`."""
    made = []
    for recipient in {r.pk: r for r in recipients}.values():
        if not relevant(recipient, workspace_id=workspace_id, as_manager=as_manager):
            continue
        urgent = kind in Notification.URGENT
        daily = not urgent and routine_email_choice(recipient) == NotificationSettings.Routine.DAILY
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    recipient=recipient, kind=kind, subject=subject, workspace_id=workspace_id, post_seq=post_seq,
                    as_manager=as_manager,
                    email=Notification.Email.DIGEST if daily else Notification.Email.PENDING)
        except IntegrityError:  # already told of this happening
            continue
        if not daily:
            from .tasks import notification_email_send

            jobs.defer(notification_email_send, notification_id=notification.pk)
        events.send_event_on_commit(events.user_group(recipient.pk), NOTIFICATION_CREATED,
                                    {"unread": unread_count(recipient)})
        made.append(notification)
    return made


OVERSIGHT_ROLES = (Professional.Role.MANAGER, Professional.Role.PARTNERSHIP)


def relevant(recipient: Professional, *, workspace_id: int | None, as_manager: bool) -> bool:
    """Who may be told about a workspace, asked when a notification is made and again before its email
    goes: an offboarded account nothing; a manager told for oversight while still a manager; anyone
    else while a current member (invited, accepted or active) of the workspace."""
    if not recipient.is_active:
        return False
    if as_manager:
        return recipient.role in OVERSIGHT_ROLES
    if workspace_id is None:
        return True
    from messaging.models import Membership  # the one rule of who is in a workspace lives there

    return Membership.objects.filter(workspace_id=workspace_id, professional=recipient,
                                     state__in=Membership.CURRENT_STATES).exists()


def _still_relevant(notification: Notification) -> bool:
    """An offboarded account, or someone no longer in the workspace, is sent nothing more about it."""
    return relevant(notification.recipient, workspace_id=notification.workspace_id,
                    as_manager=notification.as_manager)


def _email(recipient: Professional, template: str) -> None:
    """The whole of what an email says: that there is something new, and where to look. No child's name,
    no workspace reference, no rating, no names (tests/notifications/test_email_content.py scans every
    email the suite sends)."""
    context = {"site_url": settings.TAC_SITE_URL, "notifications_url": f"{settings.TAC_SITE_URL}/notifications"}
    send_mail(subject=EMAIL_SUBJECT,
              message=render_to_string(template, context), from_email=None, recipient_list=[recipient.email])


def notification_email_send(*, notification_id: int) -> str:
    """Send one notification's email, once. Raises on a mail failure, so the queue retries it."""
    with transaction.atomic():
        notification = (Notification.objects.select_for_update().select_related("recipient")
                        .filter(pk=notification_id).first())
        if notification is None or notification.email != Notification.Email.PENDING:
            return "nothing to send"
        if not _still_relevant(notification):
            notification.email = Notification.Email.SKIPPED
            notification.save(update_fields=["email"])
            return "skipped"
        # Sent while the row is locked: a second worker given the same job waits, then finds it sent.
        _email(notification.recipient, "notifications/email_new.txt")
        notification.email, notification.emailed_at = Notification.Email.SENT, timezone.now()
        notification.save(update_fields=["email", "emailed_at"])
        audit_record(kind="notification.emailed", target=notification.recipient,
                     data={"notification": notification.pk, "kind": notification.kind})
    return "sent"


class DigestsFailed(Exception):
    """Some digests could not be sent (the rest were): raised so the queue runs the job again later."""


def digests_send(*, now: dt.datetime | None = None) -> int:
    """One email a day, at TAC_DIGEST_HOUR or later (site time), to each person who chose a digest and has
    routine notifications waiting. Returns how many were sent. Each person's digest is its own
    transaction: a mail server that refuses one address holds back nobody else's, and the job raises
    DigestsFailed at the end so the queue tries the failed ones again (those sent today are not resent)."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.TAC_DIGEST_HOUR:
        return 0
    waiting = (Notification.objects.filter(email=Notification.Email.DIGEST)
               .values_list("recipient_id", flat=True).distinct().order_by("recipient_id"))
    recipients = list(waiting)
    sent, failed = 0, 0
    for recipient_id in recipients:
        try:
            sent += _digest_send(recipient_id, now, local.date())
        except Exception:  # the mail server's errors are not one class (smtplib's, OSError, timeouts)
            logger.warning("the daily digest for professional %s could not be sent", recipient_id, exc_info=True)
            failed += 1
    if failed:
        raise DigestsFailed(f"{failed} of {len(recipients)} digests could not be sent; the others were")
    return sent


def _digest_send(recipient_id: int, now: dt.datetime, today: dt.date) -> int:
    with transaction.atomic():
        choice = (NotificationSettings.objects.select_for_update()
                  .filter(professional_id=recipient_id).select_related("professional").first())
        recipient = choice.professional if choice else Professional.objects.get(pk=recipient_id)
        if choice and choice.last_digest_on == today:
            return 0
        pending = [n for n in Notification.objects.select_for_update().select_related("recipient")
                   .filter(recipient_id=recipient_id, email=Notification.Email.DIGEST)]
        relevant = [n for n in pending if _still_relevant(n)]
        if relevant:
            # Sent while the rows are locked: if it raises, nothing below happens and they stay waiting.
            _email(recipient, "notifications/email_digest.txt")
        for n in pending:
            n.email = Notification.Email.SENT if n in relevant else Notification.Email.SKIPPED
            n.emailed_at = now if n in relevant else None
            n.save(update_fields=["email", "emailed_at"])
        NotificationSettings.objects.update_or_create(professional_id=recipient_id, defaults={"last_digest_on": today})
        if relevant:
            audit_record(kind="notification.digest_emailed", target=recipient, data={"count": len(relevant)})
        return 1 if relevant else 0


def notifications_mark_read(*, professional: Professional, ids: list[int] | None = None, request=None) -> int:
    """Mark some (or all) of a professional's own notifications read. Returns how many changed."""
    with transaction.atomic():
        query = Notification.objects.filter(recipient=professional, read_at__isnull=True)
        if ids is not None:
            query = query.filter(pk__in=ids)
        changed = query.update(read_at=timezone.now())
        if changed:
            audit_record(kind="notifications.read", actor=professional, request=request, target=professional,
                         data={"count": changed})
            events.send_event_on_commit(events.user_group(professional.pk), NOTIFICATIONS_READ,
                                        {"unread": unread_count(professional)})
    return changed


def notification_settings_update(*, professional: Professional, routine_email: str, request=None) -> NotificationSettings:
    if routine_email not in NotificationSettings.Routine.values:
        raise ValidationError(f"routine_email is one of {', '.join(NotificationSettings.Routine.values)}")
    with transaction.atomic():
        choice, _ = NotificationSettings.objects.select_for_update().get_or_create(professional=professional)
        if choice.routine_email != routine_email:
            choice.routine_email, choice.updated_at = routine_email, timezone.now()
            choice.full_clean()
            choice.save()
            audit_record(kind="notifications.settings_changed", actor=professional, request=request,
                         target=professional, data={"routine_email": routine_email})
            if routine_email == NotificationSettings.Routine.IMMEDIATE:
                # What was waiting for a digest goes now rather than waiting for a digest that no longer comes.
                from .tasks import notification_email_send

                waiting = Notification.objects.filter(recipient=professional, email=Notification.Email.DIGEST)
                for pk in list(waiting.values_list("pk", flat=True)):
                    Notification.objects.filter(pk=pk).update(email=Notification.Email.PENDING)
                    jobs.defer(notification_email_send, notification_id=pk)
    return choice
