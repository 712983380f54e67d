"""Every permission decision about workspaces, asked at the moment of reading or writing."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from accounts.models import Professional
from teamaroundchild import sql

from .models import Membership, Workspace


def active_membership(professional: Professional, workspace: Workspace | int) -> Membership | None:
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    if not professional.is_active:
        return None
    return (
        Membership.objects.filter(workspace_id=workspace_id, professional=professional, state=Membership.State.ACTIVE)
        .select_related("workspace")
        .first()
    )


def current_membership(professional: Professional, workspace: Workspace) -> Membership | None:
    """Invited, accepted or active: may see that the workspace exists and answer the invitation."""
    if not professional.is_active:
        return None
    return Membership.objects.filter(
        workspace=workspace, professional=professional, state__in=Membership.CURRENT_STATES
    ).first()


def _active_member(professional_id: int, via: str = "") -> dict:
    """The one rule, as filter terms: an active membership of an account that is not offboarded. `via`
    is the path to Membership from the model queried ("memberships__" from Workspace)."""
    return {f"{via}professional_id": professional_id, f"{via}professional__is_active": True,
            f"{via}state": Membership.State.ACTIVE}


def active_member_sql(workspace_column: str) -> str:
    """The same rule as an SQL condition, for the hand-written statements of the live path
    (teamaroundchild/sql.py). One parameter: the professional's id."""
    return f"""EXISTS (
        SELECT 1 FROM messaging_membership rule_m
        JOIN accounts_professional rule_p ON rule_p.id = rule_m.professional_id
        WHERE rule_m.workspace_id = {workspace_column} AND rule_m.professional_id = %s
          AND rule_m.state = '{Membership.State.ACTIVE.value}' AND rule_p.is_active = TRUE)"""


def active_member_exists(professional_id: int) -> Exists:
    """For annotating a Workspace query: is the professional an active member of this workspace?"""
    return Exists(Membership.objects.filter(workspace=OuterRef("pk"), **_active_member(professional_id)))


def is_active_member(professional_id: int, workspace_id: int) -> bool:
    """The cheap check a socket makes before forwarding a workspace event when its roster moved; one
    hand-written statement (teamaroundchild/sql.py)."""
    return bool(sql.fetch_one(f"SELECT {active_member_sql('%s')}", [workspace_id, professional_id])[0])


_SOCKET_FIELDS = ("id", "public_id", "roster_version")


def workspace_if_member(professional_id: int, public_id) -> Workspace | None:
    """The workspace, if the professional is an active member of it; one statement, one snapshot. For
    the socket: only the fields it uses are loaded (others load on access, as with QuerySet.only())."""
    row = sql.fetch_one(
        f"SELECT {', '.join(f'w.{f}' for f in _SOCKET_FIELDS)} FROM messaging_workspace w "
        f"WHERE w.public_id = %s AND {active_member_sql('w.id')}",
        [sql.param(Workspace, "public_id", public_id), professional_id])
    return sql.instance(Workspace, _SOCKET_FIELDS, row) if row is not None else None


def is_lead(professional: Professional, workspace: Workspace) -> bool:
    return workspace.lead_id == professional.pk and active_membership(professional, workspace) is not None
