"""An action's life, one rule for the server and every reader (frontend/static/tac/actions.js is its twin;
docs/protocol.md, "Actions").

An action starts `open`: its owner has not taken it on yet. Each change is an `action_status` post that
targets the action (its body holds the note or reason, encrypted):

| status | from | by | then |
| --- | --- | --- | --- |
| accepted | open, reopened | the owner | accepted |
| done | open, accepted, reopened | the owner or the lead | done (the note says what was done) |
| confirmed | done | the lead | confirmed (finished) |
| reopened | done, cancelled | the owner or the lead | reopened (the owner's again) |
| reassigned | open, accepted, reopened | the lead | open, owned by the member the post names, who accepts |
| cancelled | open, accepted, reopened | the owner or the lead | cancelled (the reason says why) |

"The lead" is the workspace's lead professional when the change is made; "the owner" is the action's
owner at that point (a reassignment moves it). An action is overdue while it is open, accepted or
reopened and its due date has passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# What an action can be; and what an action_status post may say.
STATES = ("open", "accepted", "done", "confirmed", "reopened", "cancelled")
CHANGES = ("accepted", "done", "confirmed", "reopened", "reassigned", "cancelled")
# Still the owner's to do: what can be overdue.
PENDING = ("open", "accepted", "reopened")

OWNER, LEAD = "owner", "lead"
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "accepted": (("open", "reopened"), (OWNER,)),
    "done": (("open", "accepted", "reopened"), (OWNER, LEAD)),
    "confirmed": (("done",), (LEAD,)),
    "reopened": (("done", "cancelled"), (OWNER, LEAD)),
    "reassigned": (PENDING, (LEAD,)),
    "cancelled": (PENDING, (OWNER, LEAD)),
}
WHO = {(OWNER,): "its owner", (LEAD,): "the lead professional", (OWNER, LEAD): "its owner or the lead professional"}


@dataclass(frozen=True)
class ActionState:
    status: str
    owner: object  # a public id (clients) or a primary key (the server): compared, never interpreted


def may(state: ActionState, status: str, author, lead) -> bool:
    """Whether `author` is someone who may post `status` on this action at all (whatever its state)."""
    who = RULES[status][1]
    return (OWNER in who and author == state.owner) or (LEAD in who and author == lead)


def change(state: ActionState, *, status: str, author, lead, new_owner=None) -> tuple[ActionState | None, str]:
    """The action's state after `author` posts `status`, or (None, why it is refused)."""
    rule = RULES.get(status)
    if rule is None:
        return None, f"an action status is one of {', '.join(CHANGES)}"
    sources, who = rule
    if not may(state, status, author, lead):
        return None, f"only {WHO[who]} can make an action {status}"
    if state.status not in sources:
        return None, f"an action that is {state.status} cannot be {status}"
    if status == "reassigned":
        if new_owner is None:
            return None, "a reassignment names the new owner"
        if new_owner == state.owner:
            return None, "a reassignment names someone other than the current owner"
        return ActionState("open", new_owner), ""
    if new_owner is not None:
        return None, "only a reassignment names an owner"
    return ActionState(status, state.owner), ""


def overdue(status: str, due: dt.date | None, today: dt.date) -> bool:
    return status in PENDING and due is not None and due < today
