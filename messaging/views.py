"""The versioned HTTP JSON API (docs/protocol.md): parse, call one service or selector, answer. The
websocket consumer calls the same services."""

from __future__ import annotations

import base64
import functools
import json
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from accounts.models import Professional
from teamaroundchild.validation import b64, require_dict

from . import access, selectors, services
from .models import Membership, Post, Workspace
from .schemas import EpochBundle, PostEnvelope, int_field, plain_text, uuid_field, wrap_list


def error(status: int, code: str, reason: str) -> JsonResponse:
    return JsonResponse({"error": code, "reason": reason}, status=status)


def api(view):
    """Turns the services' exceptions into JSON errors with a reason: never a 500 for bad input."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method == "POST":
            try:
                request.json = json.loads(request.body or b"null")
            # ValueError covers JSONDecodeError, UnicodeDecodeError and a number of more digits than
            # Python converts (4,300).
            except ValueError:
                return error(400, "invalid", "the body is not valid JSON")
            except RecursionError:  # "[[[[..." nested deeper than the parser's stack: junk, not a 500
                return error(400, "invalid", "the body is nested too deeply")
        try:
            response = view(request, *args, **kwargs)
            if response.status_code == 405 and response.get("Allow"):  # from require_http_methods: no body
                refused = error(405, "method_not_allowed",
                                f"{request.method} is not allowed here; use {response['Allow']}")
                refused["Allow"] = response["Allow"]
                return refused
            return response
        except services.Conflict as exc:
            return error(409, "conflict", "; ".join(exc.messages))
        except ValidationError as exc:
            return error(400, "invalid", "; ".join(exc.messages))
        except PermissionDenied as exc:
            return error(403, "forbidden", str(exc) or "you may not do that")
        except Http404 as exc:
            return error(404, "not_found", str(exc) or "not found")

    return wrapped


# Paths whose clients read JSON: an error there keeps the API's shape, never an HTML page.
API_PREFIXES = ("/api/", "/accounts/api/")


def csrf_failure(request, reason: str = ""):
    """settings.CSRF_FAILURE_VIEW: API clients get the JSON error shape with what to send; pages get the
    service's "This page has expired" page. It is rendered with the request, so a signed-in person sees
    the navigation again, and its sign-out form carries a fresh token (the usual cause is a page left open
    across a sign-in or sign-out in another tab)."""
    if request.path.startswith(API_PREFIXES):
        return error(403, "csrf_failed", f"CSRF check failed ({reason}): send the csrftoken cookie's value "
                                         "in an X-CSRFToken header with every POST")
    return render(request, "403_csrf.html", status=403)


def not_found(request, exception=None):
    """handler404: under /api/ and /accounts/api/ the JSON error shape; elsewhere 404.html."""
    if request.path.startswith(API_PREFIXES):
        return error(404, "not_found", f"no API endpoint at {request.path} (docs/protocol.md lists them)")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def forbidden(request, exception=None):
    """handler403, for a PermissionDenied that no api() view caught: JSON under the API; elsewhere
    403.html."""
    if request.path.startswith(API_PREFIXES):
        return error(403, "forbidden", "you may not do that")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def server_error(request):
    """handler500: JSON under the API; elsewhere 500.html, rendered without the request's context (as
    Django's own handler does) so that the page cannot fail for the reason the view did."""
    if request.path.startswith(API_PREFIXES):
        return error(500, "server_error", "the server failed to answer; try again later")
    from django.views.defaults import server_error as page

    return page(request)


def bad_request(request, exception=None):
    """handler400 (Django's answer to a SuspiciousOperation): under /api/ and /accounts/api/ the JSON
    error shape, with the limit when the body was too large; elsewhere Django's page."""
    if request.path.startswith(API_PREFIXES):
        if isinstance(exception, RequestDataTooBig):
            return error(413, "too_large", f"the request body is larger than the limit of "
                                           f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)")
        return error(400, "invalid", "the request was refused as malformed")
    from django.views.defaults import bad_request as page

    return page(request, exception)


# One answer for "no such workspace", "not a workspace id" and "not yours": an outsider learns nothing.
NOT_FOUND = "No such workspace, or you are not a member"


def workspace_or_404(workspace_id: str) -> Workspace:
    try:
        public_id = uuid.UUID(workspace_id)
    except ValueError as exc:
        raise Http404(NOT_FOUND) from exc
    workspace = Workspace.objects.select_related("lead").filter(public_id=public_id).first()
    if workspace is None:
        raise Http404(NOT_FOUND)
    return workspace


def member_workspace(request, workspace_id: str) -> Workspace:
    """The workspace, if the caller is a current member (invited, accepted or active); 404 otherwise, so
    an outsider learns nothing, not even that it exists."""
    workspace = workspace_or_404(workspace_id)
    if not Membership.objects.filter(workspace=workspace, professional=request.user,
                                     state__in=Membership.CURRENT_STATES).exists():
        raise Http404(NOT_FOUND)
    return workspace


def professional_or_400(payload: dict, name: str) -> Professional:
    public_id = uuid_field(payload, name)
    professional = Professional.objects.filter(public_id=public_id).first()
    if professional is None:
        raise ValidationError(f"{name}: no such professional")
    return professional


@api
@require_http_methods(["GET", "POST"])
def workspaces(request):
    if request.method == "GET":
        return JsonResponse({"workspaces": selectors.workspace_list(professional=request.user)})
    body = require_dict(request.json)
    details = body.get("details")
    workspace = services.workspace_create(
        lead=request.user,
        workspace_id=uuid_field(body, "id"),
        epoch=EpochBundle.parse(body.get("epoch")),
        details=PostEnvelope.parse(details) if details is not None else None,
        request=request,
    )
    return JsonResponse({"id": str(workspace.public_id), "reference": workspace.reference}, status=201)


@api
@require_http_methods(["GET"])
def workspace_detail(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    detail = selectors.workspace_detail(professional=request.user, workspace=workspace)
    if detail["my_state"] == Membership.State.ACTIVE:
        detail["author_keys"] = selectors.author_keys(professional=request.user, workspace=workspace)
        detail["needs_rekey"] = selectors.members_needing_rekey(professional=request.user, workspace=workspace)
    return JsonResponse(detail)


@api
@require_http_methods(["GET", "POST"])
def posts(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    if request.method == "GET":
        try:
            after = int(request.GET.get("after", "0"))
            limit = min(int(request.GET.get("limit", "500")), 1000)
        except ValueError as exc:
            raise ValidationError("after and limit must be integers") from exc
        if after < 0 or limit < 0:
            raise ValidationError("after and limit must not be negative")
        kind = request.GET.get("kind")
        if kind is not None and kind not in Post.Kind.values:
            raise ValidationError(f"kind must be one of {', '.join(Post.Kind.values)}")
        items = selectors.post_list(professional=request.user, workspace=workspace, after_seq=after, limit=limit,
                                    kind=kind)
        return JsonResponse({"posts": items, "last_seq": workspace.last_seq})
    result = services.post_create(author=request.user, workspace=workspace,
                                  envelope=PostEnvelope.parse(request.json), request=request)
    return JsonResponse({"seq": result.post.seq, "post_id": str(result.post.post_id), "created": result.created},
                        status=201 if result.created else 200)


@api
@require_http_methods(["POST"])
def members(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    role = body.get("role", Membership.Role.MEMBER)
    membership = services.membership_invite(
        lead=request.user, workspace=workspace, professional=professional_or_400(body, "member"),
        invite_signature=b64(body, "invite_signature", length=64),
        invite_nonce=b64(body, "invite_nonce", length=16), role=role, request=request,
    )
    return JsonResponse({"member": str(membership.professional.public_id), "state": membership.state}, status=201)


@api
@require_http_methods(["POST"])
def membership(request, workspace_id, action):
    workspace = member_workspace(request, workspace_id)
    if action in ("accept", "decline"):
        m = services.membership_respond(professional=request.user, workspace=workspace, accept=action == "accept",
                                        request=request)
        return JsonResponse({"state": m.state})
    if action == "leave":
        services.membership_leave(professional=request.user, workspace=workspace, request=request)
        return JsonResponse({"state": Membership.State.LEFT})
    raise Http404("No such membership action")


@api
@require_http_methods(["POST"])
def epochs(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    remove = professional_or_400(body, "remove") if body.get("remove") else None
    new_lead = professional_or_400(body, "new_lead") if body.get("new_lead") else None
    deputies = None
    if body.get("deputies") is not None:
        if not isinstance(body["deputies"], list) or len(body["deputies"]) > 20:
            raise ValidationError("deputies: a list of at most 20 member ids")
        deputies = [professional_or_400({"deputy": d}, "deputy") for d in body["deputies"]]
    epoch = services.epoch_rotate(lead=request.user, workspace=workspace, epoch=EpochBundle.parse(body.get("epoch")),
                                  remove=remove, new_lead=new_lead, deputies=deputies, request=request)
    return JsonResponse({"epoch": epoch.number}, status=201)


@api
@require_http_methods(["POST"])
def rekey(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    count = services.member_rekey(actor=request.user, workspace=workspace, member=professional_or_400(body, "member"),
                                  wraps=wrap_list(body.get("wraps")), request=request)
    return JsonResponse({"wrapped": count})


@api
@require_http_methods(["POST"])
def history(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    count = services.history_share(lead=request.user, workspace=workspace, member=professional_or_400(body, "member"),
                                   wraps=wrap_list(body.get("wraps")), request=request)
    return JsonResponse({"wrapped": count})


@api
@require_http_methods(["POST"])
def key_confirmations(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    services.key_confirm(confirmer=request.user, workspace=workspace, subject=professional_or_400(body, "member"),
                         fingerprint=b64(body, "fingerprint", length=32),
                         confirmed_ms=int_field(body, "confirmed_ms", maximum=2**53 - 1),
                         signature=b64(body, "signature", length=64), request=request)
    return JsonResponse({"confirmed": True}, status=201)


@api
@require_http_methods(["GET"])
def my_work(request):
    return JsonResponse(selectors.my_work(professional=request.user))


@api
@require_http_methods(["GET", "POST"])
def my_state(request):
    if request.method == "GET":
        return JsonResponse(selectors.client_state(professional=request.user))
    body = require_dict(request.json)
    state = services.client_state_save(professional=request.user, version=int_field(body, "version", minimum=1),
                                       blob=b64(body, "blob", max_length=services.MAX_STATE_BYTES),
                                       signature=b64(body, "signature", length=64), request=request)
    return JsonResponse({"version": state.version})


@api
@require_http_methods(["GET"])
def action_list(request, workspace_id):
    """Where each action stands and whether it is overdue, from the server's metadata: for active members
    (an invited professional sees none of the record)."""
    workspace = member_workspace(request, workspace_id)
    if not access.is_active_member(request.user.pk, workspace.pk):
        raise Http404(NOT_FOUND)
    return JsonResponse({"actions": selectors.action_list(workspace=workspace)})


@api
@require_http_methods(["POST"])
def read_position(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    seq = int_field(require_dict(request.json), "seq")
    return JsonResponse({"seq": services.read_position_update(professional=request.user, workspace=workspace, seq=seq)})


@api
@require_http_methods(["POST"])
def status(request, workspace_id):
    workspace = member_workspace(request, workspace_id)
    body = require_dict(request.json)
    services.workspace_close(lead=request.user, workspace=workspace, status=str(body.get("status")), request=request)
    return JsonResponse({"status": body.get("status")})


@api
@require_http_methods(["GET"])
def directory(request):
    # Trimmed first (what a paste brings along); an address is at most 254 characters.
    query = plain_text(request.GET.get("q", "").strip(), "q", max_length=254)
    return JsonResponse({"professionals": selectors.directory_search(query=query)})


@api
@require_http_methods(["GET"])
def custodian(request):
    key = services.custodian_key_current()
    return JsonResponse({"box_public": base64.b64encode(bytes(key.box_public)).decode(),
                         "sign_public": base64.b64encode(bytes(key.sign_public)).decode(), "label": key.label,
                         "key_id": bytes(key.key_id).hex()})


@api
@require_http_methods(["GET"])
def me(request):
    return JsonResponse(selectors.professional_card(request.user))
