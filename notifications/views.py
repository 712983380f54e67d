"""The notification list, the email choice and their JSON API (docs/protocol.md, "Notifications"): parse,
call one service or selector, answer. Everything here is the signed-in professional's own."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import InvalidPage
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from messaging.views import api
from teamaroundchild.validation import require_dict

from . import selectors, services
from .models import NotificationSettings

# At most this many ids in one request to mark read (a page holds 50).
MAX_IDS = 500
CHOOSE = "Choose when to get emails about routine notifications"


@require_http_methods(["GET"])
def notification_list(request):
    page = selectors.notification_page(professional=request.user, number=request.GET.get("page"))
    return render(request, "notifications/list.html", {
        "page": page, "notifications": [selectors.notification_card(n) for n in page],
        "routine_email": services.routine_email_choice(request.user),
        "routine_choices": NotificationSettings.Routine,
    })


@require_http_methods(["POST"])
def notifications_read(request):
    """The page's "Mark all as read" button."""
    changed = services.notifications_mark_read(professional=request.user, request=request)
    if changed:
        messages.success(request, f"{changed} notification{'' if changed == 1 else 's'} marked as read.")
    return redirect("notifications:list")


@require_http_methods(["GET", "POST"])
def notification_settings(request):
    chosen = services.routine_email_choice(request.user)
    error = None
    if request.method == "POST":
        chosen = request.POST.get("routine_email", "")
        if chosen in NotificationSettings.Routine.values:
            services.notification_settings_update(professional=request.user, routine_email=chosen, request=request)
            messages.success(request, "Your email choice has been saved.")
            return redirect("notifications:list")
        error = CHOOSE
    return render(request, "notifications/settings.html", {
        "routine_email": chosen, "routine_choices": NotificationSettings.Routine.choices,
        "form_errors": [("routine_email", error)] if error else [], "error": error,
        "digest_hour": settings.TAC_DIGEST_HOUR,
    }, status=400 if error else 200)


# --- the JSON API -------------------------------------------------------------------------------------------


@api
@require_http_methods(["GET"])
def api_notifications(request):
    number = request.GET.get("page", "1")
    if not number.isdigit() or int(number) < 1:
        raise ValidationError("page must be a whole number from 1")
    try:
        page = selectors.notification_page(professional=request.user, number=int(number), strict=True)
    except InvalidPage as exc:
        raise Http404("no such page of notifications") from exc
    return JsonResponse({
        "unread": selectors.unread_count(professional=request.user),
        "notifications": [selectors.notification_card(n) for n in page],
        "page": page.number, "pages": page.paginator.num_pages, "count": page.paginator.count,
    })


def _ids(body: dict) -> list[int] | None:
    """`{"ids": [n, ...]}` marks those (only the caller's own change); `{"all": true}` marks every one."""
    if body.get("all") is True and "ids" not in body:
        return None
    ids = body.get("ids")
    if "all" in body or not isinstance(ids, list):
        raise ValidationError('send {"ids": [id, ...]} or {"all": true}')
    if len(ids) > MAX_IDS:
        raise ValidationError(f"ids: at most {MAX_IDS} at once")
    # bool is an int to Python: true is not notification 1.
    if not all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= 2**63 - 1 for i in ids):
        raise ValidationError("ids: each is a notification's id, a positive integer")
    return ids


@api
@require_http_methods(["POST"])
def api_notifications_read(request):
    ids = _ids(require_dict(request.json))
    marked = services.notifications_mark_read(professional=request.user, ids=ids, request=request)
    return JsonResponse({"marked": marked, "unread": selectors.unread_count(professional=request.user)})
