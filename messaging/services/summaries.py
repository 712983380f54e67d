"""The plaintext summaries kept in a post's own transaction: an action's owner, due date, status and clock;
a concern's rating, response clock and acknowledgements; the workspace's highest rating."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Professional
from notifications.models import Notification
from notifications.services import notify
from oversight import clocks
from tacprotocol import actions
from tacprotocol.wire import (
    CONTENT_KINDS,
    RAG_ORDER,
)

from ..custodian import Conflict
from ..models import (
    ActionSummary,
    ConcernAcknowledgement,
    ConcernSummary,
    Post,
    Workspace,
)


def action_change(workspace: Workspace, author: Professional, target: Post, status: str,
                   new_owner: Professional | None) -> ActionSummary:
    """The action's summary as `status` leaves it (tacprotocol/actions.py's rule, on the current lead), not
    yet saved; PermissionDenied for someone the rule does not allow, Conflict for a change that does not
    apply to where the action stands."""
    summary = ActionSummary.objects.get(action=target)
    if summary.retracted:
        raise Conflict("the action was retracted: its status no longer changes")
    before = actions.ActionState(summary.status, summary.owner_id)
    after, refused = actions.change(before, status=status, author=author.pk, lead=workspace.lead_id,
                                    new_owner=new_owner.pk if new_owner else None)
    if after is None:
        may = actions.may(before, status, author.pk, workspace.lead_id)
        raise (Conflict if may else PermissionDenied)(refused)
    summary.status, summary.owner_id = after.status, after.owner
    return summary


def summarise_action(post: Post, summary: ActionSummary | None, author: Professional) -> None:
    """Keep the action's summary row with the post that moves it, in the same transaction; tell a new
    owner that an action waits for them to accept it."""
    if post.kind == "action":
        remind_at, breach_at, escalate_at = clocks.action_clock(post.due_date)
        ActionSummary.objects.create(action=post, workspace_id=post.workspace_id, owner_id=post.owner_id,
                                     owner_agency_id=post.owner.agency_id, status="open", due_date=post.due_date,
                                     created_at=post.created_at, updated_at=post.created_at,
                                     last_change_seq=post.seq, remind_at=remind_at, breach_at=breach_at,
                                     escalate_at=escalate_at)
        if post.owner_id != author.pk:
            notify(recipients=[post.owner], kind=Notification.Kind.ACTION_ASSIGNED, workspace_id=post.workspace_id,
                   post_seq=post.seq, subject=f"{post.post_id}:{post.owner_id}")
        return
    if post.kind == "retraction" and post.target.kind == "action":
        ActionSummary.objects.filter(action_id=post.target_id).update(
            retracted=True, updated_at=post.created_at, last_change_seq=post.seq)
        return
    if summary is None:
        return
    stamp = {"accepted": "accepted_at", "done": "done_at", "confirmed": "confirmed_at"}.get(post.status)
    if stamp:
        setattr(summary, stamp, post.created_at)
    if post.status == "reassigned":
        summary.accepted_at = None
        summary.owner_agency_id = post.owner.agency_id
        # The new owner's reminder and escalation are theirs to receive, to their agency's managers.
        summary.reminded_at = summary.breach_sent_at = summary.escalated_at = None
        notify(recipients=[post.owner], kind=Notification.Kind.ACTION_ASSIGNED, workspace_id=post.workspace_id,
               post_seq=summary.action.seq, subject=f"{summary.action.post_id}:{post.owner_id}:{post.seq}")
    if post.status == "reopened":  # from done or cancelled: never confirmed, which is final
        summary.done_at = None
    summary.updated_at, summary.last_change_seq = post.created_at, post.seq
    summary.save()


def concern_change(workspace: Workspace, author: Professional, kind: str, rag: str, target: Post | None,
                    parent: Post | None) -> ConcernSummary | None:
    """The summary of the concern this post answers or changes (None if none), with a rating change
    checked: it targets a concern that is not retracted, is made by the concern's author or the lead, and
    names a rating other than the current one."""
    if kind in ("acknowledgement", "rating_change", "retraction") and target is not None and target.kind == "concern":
        concern = target
    elif kind in CONTENT_KINDS and parent is not None and parent.kind == "concern":
        concern = parent
    elif kind == "rating_change":
        raise ValidationError("a rating change targets a concern")
    else:
        return None
    summary = ConcernSummary.objects.get(concern=concern)
    if kind == "rating_change":
        if author.pk not in (concern.author_id, workspace.lead_id):
            raise PermissionDenied("only the concern's author or the lead professional changes its rating")
        if summary.retracted:
            raise Conflict("the concern was retracted: its rating no longer changes")
        if rag == summary.rag:
            raise ValidationError(f"the concern is already rated {rag}")
    return summary


def summarise_concern(post: Post, workspace: Workspace, author: Professional, summary: ConcernSummary | None) -> None:
    """Keep the concern's summary (rating, response clock, first acknowledgement by each agency) with the
    post that moves it, in the same transaction. Precondition: `summary` is from concern_change."""
    now, is_lead = post.created_at, author.pk == workspace.lead_id
    if post.kind == "concern":
        ConcernSummary.objects.create(
            concern=post, workspace_id=workspace.pk, author_agency_id=author.agency_id, rag=post.rag,
            raised_at=now, clock_started_at=now, due_at=clocks.concern_due(post.rag, now),
            # The lead's own concern needs no answer from the lead.
            responded_at=now if is_lead else None, updated_at=now, last_change_seq=post.seq)
        return
    if summary is None:
        return
    if post.kind == "retraction":
        summary.retracted = True
    elif post.kind == "rating_change" and not is_lead:
        # Someone else re-rated it: the lead answers the new rating on its own clock.
        summary.rag, summary.clock_started_at, summary.due_at = post.rag, now, clocks.concern_due(post.rag, now)
        summary.responded_at = summary.breached_at = None
    else:
        if post.kind == "rating_change":
            summary.rag = post.rag
        if is_lead and summary.responded_at is None:
            summary.responded_at = now
    if post.kind == "acknowledgement":
        seconds = max(0, int((now - summary.raised_at).total_seconds()))
        ConcernAcknowledgement.objects.bulk_create(
            [ConcernAcknowledgement(concern=summary, agency_id=author.agency_id, rag=summary.rag, acknowledged_at=now,
                                    seconds=seconds)], ignore_conflicts=True)
    summary.updated_at, summary.last_change_seq = now, post.seq
    summary.save()


def highest_rag(workspace: Workspace) -> str:
    """The highest current rating of the workspace's concerns that are not retracted."""
    rags = set(ConcernSummary.objects.filter(workspace=workspace, retracted=False).values_list("rag", flat=True))
    return max(rags, key=lambda r: RAG_ORDER[r], default="")
