"""Every permission decision about workspaces, asked at the moment of reading or writing."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from accounts.models import Professional

from . import storage
from .models import Membership, Workspace


def active_membership(professional: Professional, workspace: Workspace | int) -> Membership | None:
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    if not professional.is_active:
        return None
    return (Membership.objects.filter(workspace_id=workspace_id, **active_member_terms(professional.pk))
            .select_related("workspace").first())


def current_membership(professional: Professional, workspace: Workspace) -> Membership | None:
    """Invited, accepted or active: may see that the workspace exists and answer the invitation."""
    if not professional.is_active:
        return None
    return Membership.objects.filter(
        workspace=workspace, professional=professional, state__in=Membership.CURRENT_STATES
    ).first()


def active_member_terms(professional_id: int, via: str = "") -> dict:
    """The one rule, as filter terms: an active membership of an account that is not offboarded. `via`
    is the path to Membership from the model queried ("memberships__" from Workspace). Its SQL form, for
    the hand-written statements of the live path, is storage.active_member_sql; a test checks the two
    agree over every membership state."""
    return {f"{via}professional_id": professional_id, **active_terms(via)}


def active_terms(via: str = "") -> dict:
    """active_member_terms for anyone: every active member of an account that is not offboarded."""
    return {f"{via}professional__is_active": True, f"{via}state": Membership.State.ACTIVE}


def active_member_exists(professional_id: int) -> Exists:
    """For annotating a Workspace query: is the professional an active member of this workspace?"""
    return Exists(Membership.objects.filter(workspace=OuterRef("pk"), **active_member_terms(professional_id)))


def is_active_member(professional_id: int, workspace_id: int) -> bool:
    """The cheap check a socket makes before forwarding a workspace event when its roster moved: one
    hand-written statement."""
    return storage.is_active_member(professional_id, workspace_id)


def workspace_if_member(professional_id: int, public_id) -> Workspace | None:
    """The workspace, if the professional is an active member of it (one statement, one snapshot)."""
    return storage.workspace_if_member(professional_id, public_id)


def is_lead(professional: Professional, workspace: Workspace) -> bool:
    return workspace.lead_id == professional.pk and active_membership(professional, workspace) is not None
