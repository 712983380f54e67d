"""Who may still see a notification, as filter terms: the rule of services.relevant (asked when a
notification is made and again before its email goes) for a query of many, so that the list, the unread
badge and the API show exactly what would still be emailed (tests/notifications/test_views.py checks that
the two agree).

A notification about a workspace is seen while its recipient is a current member of that workspace
(invited, accepted or active): a member removed a moment ago sees nothing more about it, not even that
something happened there. A manager told for their agency's oversight (`as_manager`: escalations about
workspaces they are usually not in) sees it while they hold an oversight role."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from accounts.models import Professional
from messaging.models import Membership


def visible_to(professional: Professional) -> Q:
    """Filter terms for Notification: the professional's own notifications that they may still see."""
    from .services import OVERSIGHT_ROLES

    if not professional.is_active:
        return Q(pk__in=[])
    current_member = Exists(Membership.objects.filter(workspace_id=OuterRef("workspace_id"), professional=professional,
                                                      state__in=Membership.CURRENT_STATES))
    as_member = Q(as_manager=False) & (Q(workspace__isnull=True) | Q(current_member))
    rule = (as_member | Q(as_manager=True)) if professional.role in OVERSIGHT_ROLES else as_member
    return Q(recipient=professional) & rule
