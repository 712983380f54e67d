"""Notifications that never carry content (notifications/README.md).

A notification names a kind of happening and, for the in-app list, the workspace reference and the
post's number, both metadata the server holds anyway; never a child's name, a rating's reason or
anything a professional wrote. Emails say less still: only that there is something new, with a link to
the list. Rows are append-only but for read_at and the email columns."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    class Kind(models.TextChoices):
        INVITATION = "invitation", "You have been invited to join a workspace"
        ACTION_ASSIGNED = "action_assigned", "An action has been assigned to you: it is waiting for you to accept it"
        ACTION_DUE = "action_due", "An action you own is due on the next working day"
        ACTION_OVERDUE = "action_overdue", "An action you own is overdue"
        ACTION_OVERDUE_LEAD = "action_overdue_lead", "An action in a workspace you lead is overdue"
        ACTION_ESCALATED = "action_escalated", "An action owned by someone at your agency is overdue"
        CONCERN_BREACHED = "concern_breached", "A concern has not been responded to in time"
        LEAD_TAKEN_OVER = "lead_taken_over", ("The lead professional of a workspace you deputise in has left: you "
                                              "are its lead now. Open it so your device renews its keys")
        WORKSPACE_FROZEN = "workspace_frozen", ("The lead professional of a workspace you are in has left and no "
                                                "deputy was named: nothing new can be shared until the key "
                                                "custodians appoint a new lead")
        LEAD_APPOINTED = "lead_appointed", ("The key custodians have appointed you lead professional of a workspace. "
                                            "Open it so your device renews its keys")

    # Always emailed at once, whatever the person chose for routine items.
    URGENT = frozenset({Kind.INVITATION, Kind.ACTION_ESCALATED, Kind.CONCERN_BREACHED, Kind.ACTION_OVERDUE_LEAD,
                        Kind.LEAD_TAKEN_OVER, Kind.WORKSPACE_FROZEN, Kind.LEAD_APPOINTED})

    class Email(models.TextChoices):
        PENDING = "pending", "To be sent"
        DIGEST = "digest", "Waiting for the daily digest"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent: no longer relevant"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    workspace = models.ForeignKey("messaging.Workspace", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+")
    post_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # What this notification is about, so the same happening never notifies the same person twice (a
    # clock job that runs again, a retried request).
    subject = models.CharField(max_length=64)
    # Sent to a manager for their agency's oversight (escalations), not as a member of the workspace:
    # relevant while they are a manager, where other notifications are relevant while they are a member.
    as_manager = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email = models.CharField(max_length=16, choices=Email.choices, default=Email.PENDING)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["recipient", "kind", "subject"], name="one_notification_each")]
        indexes = [models.Index(fields=["recipient", "read_at"]), models.Index(fields=["email", "recipient"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"

    @property
    def urgent(self) -> bool:
        return self.kind in self.URGENT


class NotificationSettings(models.Model):
    """How a professional wants routine items emailed. Urgent ones (invitations, escalations) are always
    sent at once."""

    class Routine(models.TextChoices):
        IMMEDIATE = "immediate", "Straight away"
        DAILY = "daily", "In one email a day"

    professional = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                        related_name="notification_settings")
    routine_email = models.CharField(max_length=16, choices=Routine.choices, default=Routine.IMMEDIATE)
    last_digest_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.professional_id}: {self.routine_email}"
