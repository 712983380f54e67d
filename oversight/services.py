"""The clock job: what has come due since it last ran (oversight/README.md, "Clocks").

Each step acts only on rows whose moment has passed and that it has not acted on yet, marks them in the
same transaction as the notifications it makes, and writes an audit event: so it can run at any moment,
as often as it likes, on as many workers as there are, and nothing is told twice or missed."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Professional
from audit.services import audit_record
from messaging.models import ActionSummary, ConcernSummary, Workspace
from notifications.models import Notification
from notifications.services import notify
from tacprotocol import actions

# Clocks run while a workspace is open or stepped down; a closed workspace's clocks have stopped.
LIVE = (Workspace.Status.OPEN, Workspace.Status.STEPPED_DOWN)
BATCH = 500


def managers_of(agency_id: int) -> list[Professional]:
    return list(Professional.objects.filter(agency_id=agency_id, role=Professional.Role.MANAGER, is_active=True))


def _concerns_breached(now: dt.datetime) -> int:
    due = (ConcernSummary.objects.select_for_update(skip_locked=True, of=("self",))
           .filter(responded_at__isnull=True, breached_at__isnull=True, retracted=False, due_at__lte=now,
                   workspace__status__in=LIVE)
           .select_related("workspace__lead", "concern").order_by("due_at"))
    count = 0
    with transaction.atomic():
        for summary in due[:BATCH]:
            workspace = summary.workspace
            summary.breached_at = now
            summary.save(update_fields=["breached_at"])
            ConcernSummary.objects.filter(pk=summary.pk).update(breach_count=F("breach_count") + 1)
            subject = f"{summary.concern.post_id}:{summary.clock_started_at.timestamp():.0f}"
            notify(recipients=[workspace.lead], kind=Notification.Kind.CONCERN_BREACHED, workspace_id=workspace.pk,
                   post_seq=summary.concern.seq, subject=subject)
            notify(recipients=managers_of(workspace.lead.agency_id), kind=Notification.Kind.CONCERN_BREACHED,
                   workspace_id=workspace.pk, post_seq=summary.concern.seq, subject=subject, as_manager=True)
            audit_record(kind="clock.concern_breached", target=workspace,
                         data={"post": str(summary.concern.post_id), "rag": summary.rag,
                               "due_at": summary.due_at.isoformat()})
            count += 1
    return count


def _actions_due(now: dt.datetime, *, moment: str, done: str) -> list[ActionSummary]:
    return list(ActionSummary.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(**{f"{moment}__lte": now, f"{done}__isnull": True}, retracted=False,
                        status__in=actions.PENDING, workspace__status__in=LIVE)
                .select_related("workspace__lead", "owner", "action").order_by(moment)[:BATCH])


def _action_subject(summary: ActionSummary) -> str:
    # A reassignment makes a new owner, who is told again; the same owner is told once.
    return f"{summary.action.post_id}:{summary.owner_id}"


def _actions_step(now: dt.datetime, *, moment: str, done: str, audit_kind: str, told) -> int:
    with transaction.atomic():
        due = _actions_due(now, moment=moment, done=done)
        for summary in due:
            setattr(summary, done, now)
            summary.save(update_fields=[done])
            for kind, recipients in told(summary):
                notify(recipients=recipients, kind=kind, workspace_id=summary.workspace_id, post_seq=summary.action.seq,
                       subject=_action_subject(summary), as_manager=kind == Notification.Kind.ACTION_ESCALATED)
            audit_record(kind=audit_kind, target=summary.workspace,
                         data={"post": str(summary.action.post_id), "owner": str(summary.owner.public_id),
                               "due": summary.due_date.isoformat() if summary.due_date else None})
    return len(due)


def clocks_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Everything that has come due by `now`: concerns past their response time (the lead and the lead's
    agency's managers are told), actions due on the next working day (the owner is reminded), actions
    overdue (the owner and the lead are told) and actions overdue a working day (the owner's agency's
    managers are told)."""
    now = now or timezone.now()
    return {
        "concerns_breached": _concerns_breached(now),
        "actions_reminded": _actions_step(
            now, moment="remind_at", done="reminded_at", audit_kind="clock.action_reminded",
            told=lambda s: [(Notification.Kind.ACTION_DUE, [s.owner])]),
        "actions_breached": _actions_step(
            now, moment="breach_at", done="breach_sent_at", audit_kind="clock.action_overdue",
            told=lambda s: [(Notification.Kind.ACTION_OVERDUE, [s.owner]),
                            (Notification.Kind.ACTION_OVERDUE_LEAD, [s.workspace.lead])]),
        "actions_escalated": _actions_step(
            now, moment="escalate_at", done="escalated_at", audit_kind="clock.action_escalated",
            told=lambda s: [(Notification.Kind.ACTION_ESCALATED, managers_of(s.owner_agency_id))]),
    }
