"""Who may see the managers' dashboards, and which workspaces each of them sees (oversight/README.md,
"Dashboards"). Views and selectors ask here; nothing else decides.

A manager oversees the workspaces their agency takes part in: those led by a professional of their
agency, and those with an active member from it (messaging/access.py's one rule: an active membership
of an account that is not offboarded). A safeguarding-partnership lead oversees every workspace. Either
sees metadata only; reading a workspace's content needs an invitation like anyone else's."""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from accounts.models import Professional
from messaging.models import Membership, Workspace

DASHBOARD_ROLES = (Professional.Role.MANAGER, Professional.Role.PARTNERSHIP)


def may_see_dashboard(user) -> bool:
    """A signed-in, active manager or partnership lead. (Require2FAMiddleware has already insisted on a
    session that passed 2FA before any view runs.)"""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.role in DASHBOARD_ROLES)


def dashboard_required(view):
    """For the dashboard views: anyone else gets the service's 403 page (handler403)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not may_see_dashboard(request.user):
            raise PermissionDenied("Only managers and safeguarding partnership leads can see the dashboards")
        return view(request, *args, **kwargs)

    return wrapped


def sees_every_agency(viewer: Professional) -> bool:
    return viewer.role == Professional.Role.PARTNERSHIP


def agency_member_workspaces(agency_id: int) -> QuerySet:
    """Ids of the workspaces with an active member from the agency: the same terms as
    messaging.access._active_member, for an agency instead of one professional."""
    return Membership.objects.filter(state=Membership.State.ACTIVE, professional__agency_id=agency_id,
                                     professional__is_active=True).values("workspace_id")


def agency_takes_part(agency_id: int) -> Q:
    """Workspace terms: led by a professional of the agency (whether or not still active: an offboarded
    lead's workspace is exactly what its managers must see), or with an active member from it."""
    leads = Professional.objects.filter(agency_id=agency_id).values("pk")
    return Q(lead_id__in=leads) | Q(pk__in=agency_member_workspaces(agency_id))


def workspace_scope(viewer: Professional) -> Q | None:
    """Workspace terms for what the viewer oversees; None for everything (a partnership lead). Call only
    for someone may_see_dashboard admits."""
    if not may_see_dashboard(viewer):
        raise PermissionDenied("Only managers and safeguarding partnership leads can see the dashboards")
    if sees_every_agency(viewer):
        return None
    return agency_takes_part(viewer.agency_id)


def workspaces_overseen(viewer: Professional) -> QuerySet:
    scope = workspace_scope(viewer)
    return Workspace.objects.all() if scope is None else Workspace.objects.filter(scope)


def workspace_overseen(viewer: Professional, reference: str) -> Workspace | None:
    """The workspace with this reference if the viewer oversees it; None whether it does not exist or is
    not theirs, so another agency's manager learns nothing, not even that it exists."""
    if "\x00" in reference or len(reference) > Workspace._meta.get_field("reference").max_length:
        return None  # no reference is like that, and PostgreSQL refuses a NUL in a query (found by fuzzing)
    return workspaces_overseen(viewer).select_related("lead__agency").filter(reference=reference).first()
