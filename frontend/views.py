import uuid

from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import render

from accounts.access import public
from messaging import selectors
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
    if workspace is None or not Membership.objects.filter(
        workspace=workspace, professional=request.user, state=Membership.State.ACTIVE
    ).exists():
        raise Http404("No such workspace, or you are not a member")
    return render(request, "frontend/workspace.html", {"workspace": workspace, "categories": CONCERN_CATEGORIES.items(),
                                                         "max_text": MAX_TEXT_CHARS})


@public
def healthz(request):
    """For nginx and the deploy scripts: the process answers and its database does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
