"""Every read of notifications, filtered by who may still see them (access.py): the list page, the API
and the navigation's unread badge show the same rows."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.urls import reverse

from accounts.models import Professional
from messaging.models import Membership, Post

from . import access
from .models import Notification

PAGE_SIZE = 50


def unread_count(*, professional: Professional) -> int:
    """The badge's number: unread notifications the professional may still see."""
    return Notification.objects.filter(access.visible_to(professional), read_at__isnull=True).count()


def notification_list(*, professional: Professional) -> QuerySet[Notification]:
    """The professional's notifications they may still see, newest first, each with what its line needs:
    the workspace's reference and public id, the post's public id (the workspace page's anchor is
    `post-<post id>`) and whether the professional may open the workspace page (an active member)."""
    post = Post.objects.filter(workspace_id=OuterRef("workspace_id"), seq=OuterRef("post_seq")).values("post_id")[:1]
    active = Membership.objects.filter(workspace_id=OuterRef("workspace_id"), professional=professional,
                                       state=Membership.State.ACTIVE)
    return (Notification.objects.filter(access.visible_to(professional))
            .annotate(reference=F("workspace__reference"), workspace_public_id=F("workspace__public_id"),
                      post_public_id=Subquery(post), active_member=Exists(active))
            .order_by("-created_at", "-id"))


def notification_page(*, professional: Professional, number: int | str | None = 1, strict: bool = False) -> Page:
    """One page of notification_list. `strict` (the API): a page number that is not one raises
    django.core.paginator.InvalidPage; otherwise the nearest page is shown (as for a typed URL)."""
    paginator = Paginator(notification_list(professional=professional), PAGE_SIZE)
    return paginator.page(number) if strict else paginator.get_page(number)


def notification_link(notification: Notification) -> str | None:
    """Where a notification leads: the post on the workspace page for an active member; the home page
    (where invitations are answered) for one invited or waiting to be admitted; the oversight page of the
    workspace (its metadata) for a manager told about a workspace they are not in; nowhere for a
    notification about no workspace."""
    if notification.workspace_id is None:
        return None
    if notification.active_member:
        page = reverse("frontend:workspace", args=[notification.workspace_public_id])
        return f"{page}#post-{notification.post_public_id}" if notification.post_public_id else page
    if notification.as_manager:  # told for their agency's oversight: the workspace's metadata, never content
        return reverse("oversight:workspace", args=[notification.reference])
    return reverse("frontend:home")


def notification_card(notification: Notification) -> dict:
    """One notification as the API and the page show it: its kind's sentence and metadata, never content.
    Precondition: from notification_list (annotated)."""
    workspace = None
    if notification.workspace_id is not None:
        workspace = {"id": str(notification.workspace_public_id), "reference": notification.reference}
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "text": notification.get_kind_display(),
        "urgent": notification.urgent,
        "workspace": workspace,
        "seq": notification.post_seq,
        "post": str(notification.post_public_id) if notification.post_public_id else None,
        "link": notification_link(notification),
        # Datetimes: JsonResponse writes them in ISO 8601; the page formats them.
        "created_at": notification.created_at,
        "read_at": notification.read_at,
    }
