import uuid

from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import render

from accounts.access import public
from messaging import access, selectors
from messaging.models import Membership, Workspace
from tacprotocol.wire import CONCERN_CATEGORIES, MAX_TEXT_CHARS


def home(request):
    workspaces = selectors.workspace_list(professional=request.user)
    return render(request, "frontend/home.html", {
        "invitations": [w for w in workspaces if w["my_state"] == Membership.State.INVITED],
        "workspaces": [w for w in workspaces if w["my_state"] != Membership.State.INVITED],
    })


def workspace_new(request):
    return render(request, "frontend/workspace_new.html", {"max_text": MAX_TEXT_CHARS})


def workspace_page(request, workspace_id):
    try:
        public_id = uuid.UUID(workspace_id)
    except ValueError as exc:
        raise Http404("No such workspace") from exc
    workspace = Workspace.objects.filter(public_id=public_id).first()
    if workspace is None or access.active_membership(request.user, workspace) is None:
        raise Http404("No such workspace, or you are not a member")
    return render(request, "frontend/workspace.html", {"workspace": workspace, "categories": CONCERN_CATEGORIES.items(),
                                                         "max_text": MAX_TEXT_CHARS})


@public
def healthz(request):
    """For nginx and the deploy scripts: the process answers and its database does."""
    connection.ensure_connection()
    if not connection.is_usable():  # a round trip on PostgreSQL
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
