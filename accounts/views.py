"""Thin views: parse, call one service, answer. The crypto happens in the browser (frontend/static/tac);
these views only ever see the auth key, salts and sealed boxes."""

from __future__ import annotations

import base64
import functools
import hmac
import json

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.http import require_GET, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import client_ip
from tacprotocol import crypto

from . import services
from .access import can_administer, is_agency_admin, password_only, public, recent_2fa_required
from .forms import InvitationForm, OTPForm, PasswordResetRequestForm, SignInForm
from .models import Invitation, Professional
from .schemas import KeyEnrolment, PasswordSecrets, auth_key_field, email_field, otp_token_field
from .throttle import sign_in_wait_seconds


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode()


def safe_next(request, default: str = "frontend:home") -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse(default)


def read_json(request):
    try:
        return json.loads(request.body or b"null")
    # ValueError covers JSONDecodeError, UnicodeDecodeError and a number of more digits than Python
    # converts; RecursionError, "[[[[..." nested deeper than the parser's stack.
    except (ValueError, RecursionError):
        return None


def json_error(reason: str, status: int = 400, error: str = "invalid") -> JsonResponse:
    return JsonResponse({"error": error, "reason": reason}, status=status)


def error_context(form, error: str | None = None, error_field: str = "token", ids: dict | None = None) -> dict:
    """GOV.UK error summary entries [(field id, message)], each field's first message by id (to show at
    the field) and the message for the one-field forms. `ids` maps a form field's name to the id of the
    control the person fills in, where they differ (sign-in's auth_key comes from #password)."""
    ids = ids or {}
    entries = [(ids.get(name, name), errors[0]) for name, errors in form.errors.items()]
    if error:
        entries.append((error_field, error))
    field_errors = {}
    for field, message in entries:
        field_errors.setdefault(field, message)
    return {"form_errors": entries, "field_errors": field_errors, "field_error": entries[0][1] if entries else None}


def validation_reason(exc: ValidationError) -> str:
    return "; ".join(exc.messages)


# --- sign-in -------------------------------------------------------------------------------------------

# The auth key is derived from the password field, which has no name: its errors belong to #password.
SIGN_IN_IDS = {"auth_key": "password"}


def lockout_response(request, original_response=None, credentials=None, *args, **kwargs):
    """django-axes calls this (as AXES_LOCKOUT_CALLABLE) when an account or address is locked out: a
    clear page, not a bare 403. The sign-in view calls it too; the event is recorded once a request."""
    email = (credentials or {}).get("email") or request.POST.get("email", "")
    if not getattr(request, "tac_lockout_recorded", False):
        request.tac_lockout_recorded = True
        services.sign_in_failure_record(request=request, email=email, locked_out=True)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "accounts/locked_out.html", {"minutes": minutes}, status=429)


@public
@require_POST
def prelogin(request):
    """Salt and Argon2id cost for an email address. Unknown addresses get a salt derived from the address
    and a server secret, with the default cost, so the answer never tells whether an account exists."""
    try:
        email = email_field(read_json(request))
    except ValidationError as exc:
        return json_error(validation_reason(exc))
    professional = Professional.objects.filter(email__iexact=email).first()
    if professional is not None:
        salt, ops, mem = bytes(professional.kdf_salt), professional.kdf_opslimit, professional.kdf_memlimit
    else:
        key = crypto.sha256(b"tac.fake-salt.v1\x00" + settings.SECRET_KEY.encode())
        salt = hmac.new(key, email.encode(), "sha256").digest()[: crypto.SALT_BYTES]
        ops, mem = settings.TAC_KDF_OPSLIMIT, settings.TAC_KDF_MEMLIMIT
    return JsonResponse({"salt": b64(salt), "opslimit": ops, "memlimit": mem, "alg": "argon2id13"})


@public
def sign_in(request):
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(safe_next(request))
    form = SignInForm(request.POST if request.method == "POST" else None)
    error = None
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        # Before the password is checked: a throttled address gets no answer about it (throttle.py).
        wait = sign_in_wait_seconds(ip=client_ip(request))
        if wait:
            error = f"Too many failed sign-ins from your network. Wait {wait} seconds and try again."
            response = render(request, "accounts/sign_in.html",
                              {"form": form, "next": request.GET.get("next", ""), **error_context(form, error, "email", SIGN_IN_IDS)},
                              status=429)
            response["Retry-After"] = str(wait)
            return response
        user = authenticate(request, email=email, password=form.cleaned_data["auth_key"])
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request, credentials={"email": email})
        if user is None:
            services.sign_in_failure_record(request=request, email=email)
            error = "Enter the correct email address and password"
        else:
            login(request, user)
            services.sign_in_record(request=request, professional=user)
            return redirect(f"{reverse('accounts:two_factor')}?next={safe_next(request)}")
    return render(
        request,
        "accounts/sign_in.html",
        {"form": form, "next": request.GET.get("next", ""), **error_context(form, error, "email", SIGN_IN_IDS)},
        status=400 if (request.method == "POST" and (error or form.errors)) else 200,
    )


@password_only
@require_POST
def sign_out(request):
    # The session ends first, whatever happens next; then the audit record and the event that closes this
    # session's sockets (sent if the channel layer answers: sockets also re-check on a timer).
    user, session_key = request.user, request.session.session_key
    logout(request)
    if user.is_authenticated:
        services.sign_out_record(request=request, professional=user, session_key=session_key)
    messages.info(request, "You have signed out.")
    return redirect("accounts:login")


@require_POST
def sign_out_everywhere(request):
    services.sessions_end_all(professional=request.user, request=request)
    logout(request)
    messages.info(request, "You have signed out of every session on every device.")
    return redirect("accounts:login")


# --- two-factor ----------------------------------------------------------------------------------------


def has_authenticator(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


@password_only
def two_factor(request):
    """The challenge after the password. Sends an account with no authenticator to enrol."""
    if not has_authenticator(request.user):
        return redirect(f"{reverse('accounts:two_factor_enrol')}?next={safe_next(request)}")
    if request.user.is_verified():
        return redirect(safe_next(request))
    return _otp_challenge(request, template="accounts/two_factor.html")


def reverify(request):
    """The same challenge again, for sensitive operations after TAC_REVERIFY_SECONDS."""
    return _otp_challenge(request, template="accounts/reverify.html")


def _otp_challenge(request, *, template: str):
    form = OTPForm(request.POST if request.method == "POST" else None)
    error = None
    if request.method == "POST" and form.is_valid():
        outcome = services.otp_verify(request=request, professional=request.user, token=form.cleaned_data["token"])
        if outcome is True:
            return redirect(safe_next(request))
        if outcome == services.OTP_THROTTLED:
            error = "Too many wrong codes in a row. Wait a few seconds, then enter the newest code."
        else:
            error = "The code is not correct, or has been used. Check your authenticator app and try again."
    return render(
        request,
        template,
        {"form": form, "next": request.GET.get("next", ""), **error_context(form, error)},
        status=400 if (request.method == "POST" and (error or form.errors)) else 200,
    )


@password_only
def two_factor_enrol(request):
    user = request.user
    if has_authenticator(user) and not request.user.is_verified():
        return redirect("accounts:two_factor")
    if has_authenticator(user):
        return redirect("accounts:account")
    form = OTPForm(request.POST if request.method == "POST" else None)
    error = None
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if request.method == "POST" and device is not None and form.is_valid():
        codes = services.totp_enrolment_confirm(
            request=request, professional=user, device=device, token=form.cleaned_data["token"].strip()
        )
        if codes is not None:
            request.session["tac_new_backup_codes"] = codes
            return redirect(f"{reverse('accounts:backup_codes')}?next={safe_next(request)}")
        error = "The code is not correct. Check the time on your phone and enter the newest code."
    if device is None or request.method == "GET":
        device = services.totp_enrolment_start(professional=user)
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request,
        "accounts/two_factor_enrol.html",
        {
            "form": form,
            **error_context(form, error),
            "qr_svg": qr_svg(device.config_url),
            "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
            "next": request.GET.get("next", ""),
        },
        status=400 if (request.method == "POST" and (error or form.errors)) else 200,
    )


def backup_codes(request):
    """Shows new backup codes once, straight after enrolment or regeneration."""
    codes = request.session.pop("tac_new_backup_codes", None)
    if codes is None:
        return render(request, "accounts/backup_codes_none.html")
    return render(request, "accounts/backup_codes.html", {"codes": codes, "next": safe_next(request)})


@require_POST
@recent_2fa_required
def backup_codes_regenerate(request):
    request.session["tac_new_backup_codes"] = services.backup_codes_regenerate(
        request=request, professional=request.user
    )
    return redirect("accounts:backup_codes")


# --- account, keys, passwords --------------------------------------------------------------------------


@require_GET
def account(request):
    key = request.user.current_identity_key()
    return render(
        request,
        "accounts/account.html",
        {
            "key": key,
            "safety_number": crypto.safety_number(crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public)))
            if key
            else None,
            "backup_codes_left": sum(d.token_set.count() for d in request.user.staticdevice_set.all()),
        },
    )


def identity_payload(user: Professional) -> dict:
    key = user.current_identity_key()
    return {
        "public_id": str(user.public_id),
        "salt": b64(user.kdf_salt),
        "opslimit": user.kdf_opslimit,
        "memlimit": user.kdf_memlimit,
        "key_version": key.version,
        "sign_public": b64(key.sign_public),
        "box_public": b64(key.box_public),
        "binding_signature": b64(key.binding_signature),
        "wrapped_secret": b64(key.wrapped_secret),
    }


@require_GET
def api_my_keys(request):
    """The signed-in professional's public keys and sealed private keys, for their browser to unlock."""
    return JsonResponse(identity_payload(request.user))


@recent_2fa_required
def password_change(request):
    if request.method != "POST":
        return render(request, "accounts/password_change.html", {"keys": identity_payload(request.user)})
    payload = read_json(request)
    if not isinstance(payload, dict):
        return json_error("expected a JSON object")
    try:
        current = auth_key_field(payload, "current_auth_key")
        new = PasswordSecrets.parse(payload)
        services.password_change(request=request, professional=request.user, current_auth_key=current, new=new)
    except ValidationError as exc:
        return json_error(validation_reason(exc))
    messages.success(request, "Your password has been changed. Other sessions have been signed out.")
    return JsonResponse({"redirect": reverse("accounts:account")})


@public
def password_reset_request(request):
    form = PasswordResetRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        user = Professional.objects.filter(email__iexact=form.cleaned_data["email"], is_active=True).first()
        if user is not None:
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = default_token_generator.make_token(user)
            url = request.build_absolute_uri(reverse("accounts:password_reset_confirm", args=[uid, token]))
            body = render_to_string("accounts/email/password_reset.txt", {"user": user, "url": url})
            send_mail("Reset your Team Around the Child password", body, settings.DEFAULT_FROM_EMAIL, [user.email])
        # The same answer whether or not the account exists.
        return render(request, "accounts/password_reset_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "accounts/password_reset_request.html", {"form": form, **error_context(form)})


def _reset_user(uidb64: str, token: str) -> Professional | None:
    try:
        user = Professional.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))), is_active=True)
    except (ValueError, TypeError, OverflowError, Professional.DoesNotExist):
        return None
    return user if default_token_generator.check_token(user, token) else None


@public
def password_reset_confirm(request, uidb64: str, token: str):
    user = _reset_user(uidb64, token)
    if request.method != "POST":
        if user is None:
            return render(request, "accounts/link_invalid.html", {"what": "password reset link"}, status=410)
        return render(request, "accounts/password_reset_confirm.html", {
            "public_id": user.public_id, "ask_code": services.second_factor_enrolled(professional=user),
        })
    if user is None:
        return json_error("This password reset link has expired or has been used", status=410)
    payload = read_json(request)
    try:
        enrolment = KeyEnrolment.parse(payload, public_id=user.public_id)
        services.password_reset_complete(
            professional=user, enrolment=enrolment, otp_token=otp_token_field(payload), request=request
        )
    except ValidationError as exc:
        refused_code = getattr(exc, "code", None) == services.OTP_REFUSED
        return json_error(validation_reason(exc), error=services.OTP_REFUSED if refused_code else "invalid")
    messages.success(request, "Your password has been reset. Sign in with your new password.")
    return JsonResponse({"redirect": reverse("accounts:login")})


# --- invitations ---------------------------------------------------------------------------------------


@public
def invitation_accept(request, token: str):
    invitation = services.invitation_for_token(token)
    if request.method != "POST":
        if invitation is None or invitation.state != "pending":
            reason = "is not valid" if invitation is None else f"has {invitation.state_sentence}"
            return render(request, "accounts/invitation_invalid.html", {"reason": reason}, status=410)
        return render(request, "accounts/invitation_accept.html", {"invitation": invitation})
    payload = read_json(request)
    try:
        professional = services.invitation_accept(token=token, payload=payload, request=request)
    except ValidationError as exc:
        status = 410 if invitation is None or invitation.state != "pending" else 400
        return json_error(validation_reason(exc), status=status)
    if request.user.is_authenticated:
        logout(request)
    login(request, professional, backend="django.contrib.auth.backends.ModelBackend")
    services.sign_in_record(request=request, professional=professional)
    return JsonResponse({"redirect": reverse("accounts:two_factor_enrol")})


# --- agency administration -----------------------------------------------------------------------------


def agency_admin_only(view):
    def wrapped(request, *args, **kwargs):
        if not is_agency_admin(request.user):
            raise Http404("Only agency administrators can see this page")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@agency_admin_only
def agency(request):
    admin = request.user
    return render(
        request,
        "accounts/agency.html",
        {
            "agency": admin.agency,
            "staff": Professional.objects.filter(agency=admin.agency).order_by("-is_active", "full_name"),
            "invitations": Invitation.objects.filter(agency=admin.agency, accepted_at__isnull=True)[:50],
        },
    )


@agency_admin_only
@recent_2fa_required
def agency_invite(request):
    form = InvitationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                admin=request.user,
                request=request,
                accept_url_for=lambda t: request.build_absolute_uri(reverse("accounts:invitation_accept", args=[t])),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            form.add_error("email", exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}. The link works once, for "
                             f"{int(settings.TAC_INVITATION_TTL.total_seconds() // 3600)} hours.")
            return redirect("accounts:agency")
    return render(
        request,
        "accounts/agency_invite.html",
        {"form": form, **error_context(form)},
        status=400 if form.errors else 200,
    )


@agency_admin_only
@require_POST
def agency_invitation_revoke(request, pk: int):
    invitation = get_object_or_404(Invitation, pk=pk, agency=request.user.agency)
    try:
        services.invitation_revoke(admin=request.user, invitation=invitation, request=request)
    except ValidationError as exc:
        messages.error(request, validation_reason(exc))
    else:
        messages.success(request, f"The invitation for {invitation.email} has been withdrawn.")
    return redirect("accounts:agency")


def _staff_member(request, pk: int) -> Professional:
    professional = get_object_or_404(Professional, pk=pk)
    if not can_administer(request.user, professional):
        raise Http404("No such member of your agency")
    return professional


@agency_admin_only
@recent_2fa_required
def agency_offboard(request, pk: int):
    professional = _staff_member(request, pk)
    if request.method == "POST":
        try:
            services.professional_offboard(admin=request.user, professional=professional, request=request)
        except ValidationError as exc:
            messages.error(request, validation_reason(exc))
        else:
            messages.success(request, f"{professional.full_name} has been offboarded. All their access has ended.")
        return redirect("accounts:agency")
    return render(request, "accounts/agency_offboard.html", {"professional": professional})


@agency_admin_only
@recent_2fa_required
def agency_reset_2fa(request, pk: int):
    professional = _staff_member(request, pk)
    if request.method == "POST":
        services.two_factor_reset(admin=request.user, professional=professional, request=request)
        messages.success(request, f"{professional.full_name} will set up two-factor authentication at next sign-in.")
        return redirect("accounts:agency")
    return render(request, "accounts/agency_reset_2fa.html", {"professional": professional})


# --- idle sign-out (WCAG 2.2.1) ------------------------------------------------------------------------
# frontend/static/tac/idle.js warns before the session's idle limit and offers to stay signed in.


def session_seconds_left(session) -> float:
    """How long the stored session has left before it expires while idle. The stored expiry is what counts:
    another tab, or a websocket frame (access.session_touch), may have restarted the clock since this
    request's copy was read. Stores that keep no expiry row (cache, signed cookies) answer the full limit."""
    model_class = getattr(session, "get_model_class", None)
    if model_class is None:
        return float(session.get_expiry_age())
    expire_date = model_class().objects.filter(session_key=session.session_key).values_list("expire_date", flat=True).first()
    if expire_date is None:
        return 0.0
    return max(0.0, round((expire_date - timezone.now()).total_seconds(), 3))


def leaves_session_unsaved(view):
    """SESSION_SAVE_EVERY_REQUEST saves the session after every answer, and saving restarts its idle clock:
    an answer about that clock must not restart it. Django's SessionMiddleware leaves alone a response
    whose request has no session attribute (tests/accounts/test_session_status.py checks it still does)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        del request.session
        return response

    return wrapped


def session_answer(request, seconds_left: float) -> JsonResponse:
    response = JsonResponse({"seconds_left": seconds_left, "idle_seconds": request.session.get_expiry_age()})
    response["Cache-Control"] = "no-store"
    return response


@leaves_session_unsaved
@require_GET
def api_session_status(request):
    """How long this session has left, without restarting its idle clock. An ended session never gets
    here: Require2FAMiddleware answers 401."""
    return session_answer(request, session_seconds_left(request.session))


@require_POST
def api_session_keep_alive(request):
    """'Stay signed in': restart the session's idle clock, as any request does. Not audited: it changes no
    record, only when an idle session ends, as every page view and socket frame does (accounts/README.md)."""
    request.session.modified = True  # saved, so extended, even without SESSION_SAVE_EVERY_REQUEST
    return session_answer(request, float(request.session.get_expiry_age()))
