"""Permission decisions about accounts. Views and services ask here; nothing else decides."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from importlib import import_module

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from .models import Professional

# Marks a view for Require2FAMiddleware. Unmarked views need a session that passed 2FA: deny by default.
PUBLIC = "public"  # no session needed (sign-in, invitation links, password reset)
PASSWORD_ONLY = "password_only"  # signed in with a password, 2FA still to come (enrol, challenge)


def public(view):
    view.tac_access = PUBLIC
    return view


def password_only(view):
    view.tac_access = PASSWORD_ONLY
    return view


def view_access(view_func) -> str | None:
    access = getattr(view_func, "tac_access", None)
    if access is None and hasattr(view_func, "view_class"):
        access = getattr(view_func.view_class, "tac_access", None)
    return access


def otp_is_recent(request) -> bool:
    from .services import OTP_VERIFIED_AT_KEY

    verified_at = request.session.get(OTP_VERIFIED_AT_KEY)
    return verified_at is not None and time.time() - verified_at < settings.TAC_REVERIFY_SECONDS


def recent_2fa_required(view):
    """Sensitive operations ask for a fresh code if the last one is older than TAC_REVERIFY_SECONDS."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not otp_is_recent(request):
            return redirect(f"{reverse('accounts:reverify')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    return wrapped


def can_administer(admin: Professional, professional: Professional) -> bool:
    """An agency admin administers the active and offboarded staff of their own agency only."""
    return admin.is_active and admin.is_agency_admin and admin.agency_id == professional.agency_id


def is_agency_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_agency_admin", False))


def device_ref(persistent_id):
    """(device model, pk) for django-otp's persistent id ("app_label.model_name/pk"), or None if it names
    no device model. (django-otp's Device.from_persistent_id raises AttributeError for a model that is
    not a device.)"""
    from django.apps import apps
    from django_otp.models import Device

    if not isinstance(persistent_id, str):
        return None
    label, _, pk = persistent_id.rpartition("/")
    app_label, _, model_name = label.partition(".")
    try:
        model, pk = apps.get_model(app_label, model_name), int(pk)
    except (LookupError, ValueError):
        return None
    return (model, pk) if issubclass(model, Device) else None


def session_passed_2fa(session, user, *, device_confirmed: bool) -> bool:
    """For websockets, which Django's middleware never sees: is this session's user active, signed in in
    the current session generation, and verified by a 2FA device of their own? `user` as just read from
    the database for this check, and `device_confirmed` read with it (whether the session's device is
    theirs and confirmed: accounts/storage.py::active_user_and_device)."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.utils.crypto import constant_time_compare

    from .services import SESSION_GENERATION_KEY

    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return False
    if session.get(SESSION_GENERATION_KEY) != user.session_generation:
        return False
    # A password change elsewhere changes the auth hash, as Django checks for HTTP requests.
    if not constant_time_compare(session.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
        return False
    return device_confirmed


def session_verified_user(session, user_pk=None) -> Professional | None:
    """The account a session (Django's, or its data as a dict) is signed in to, read afresh, if the
    session passed 2FA and is still current (session_passed_2fa); None otherwise. `user_pk`: the account
    the caller expects (an open socket's), instead of the one the session names. One statement, none for
    a session that names no backend of ours or no device."""
    from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
    from django.core.exceptions import ValidationError
    from django_otp import DEVICE_ID_SESSION_KEY

    from . import storage

    device = device_ref(session.get(DEVICE_ID_SESSION_KEY))
    if device is None or session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return None
    if user_pk is None:
        try:
            user_pk = Professional._meta.pk.to_python(session.get(SESSION_KEY))
        except ValidationError:
            return None
        if user_pk is None:
            return None
    found = storage.active_user_and_device(user_pk, *device)
    if found is None:
        return None
    user, device_confirmed = found
    return user if session_passed_2fa(session, user, device_confirmed=device_confirmed) else None


def session_reloaded(session):
    """The session as the store holds it now, or None if it has ended (signed out, or expired while
    idle). A websocket keeps the copy it read at the handshake; this is what it checks against."""
    key = session.session_key
    if not key:
        return None
    fresh = session.__class__(key)
    data = fresh.load()  # an ended or expired session loads as empty and loses its key
    if not data or fresh.session_key is None:
        return None
    fresh._session_cache = data
    return fresh


def session_still_verified(session, user) -> bool:
    """For an open websocket: the stored session still exists, is in date, and passed 2FA. Two statements."""
    fresh = session_reloaded(session)
    return fresh is not None and session_verified_user(fresh, user.pk) is not None


def sessions_still_verified(sockets: Sequence[tuple[str | None, Professional]],
                            seen: dict[str, tuple[str, dict]]) -> list[bool]:
    """session_still_verified for every open socket of a process at once, `sockets` being each one's
    (session key, user): the same answer in at most four statements whatever their number (the stored
    sessions, their users, and their devices, one statement per device model), where one socket at a
    time took four each. `seen` holds each session's stored text and the four values of it the check
    reads, kept by the caller between calls, so a session that has not changed is not decoded again; it
    is updated here."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django_otp import DEVICE_ID_SESSION_KEY

    from .services import SESSION_GENERATION_KEY

    if not issubclass(import_module(settings.SESSION_ENGINE).SessionStore, SessionStore):
        raise ImproperlyConfigured("open websockets are checked against sessions stored in the database")
    keys = {key for key, _ in sockets if key}
    stored = dict(Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
                  .values_list("session_key", "session_data"))
    sessions = {}
    for key, text in stored.items():
        known = seen.get(key)
        if known is None or known[0] != text:
            # A bad signature decodes as {}. Only what the check reads is remembered: a thousand open
            # sockets keep this between rounds (W4 in BENCHMARKS.md).
            data = SessionStore().decode(text)
            known = seen[key] = (text, {name: data[name] for name in (BACKEND_SESSION_KEY, DEVICE_ID_SESSION_KEY,
                                                                        HASH_SESSION_KEY, SESSION_GENERATION_KEY)
                                        if name in data})
        sessions[key] = known[1]
    for key in keys - stored.keys():
        seen.pop(key, None)
    user_pks = {user.pk for key, user in sockets if key in sessions}
    users = {user.pk: user for user in Professional.objects.filter(pk__in=user_pks, is_active=True)
             .only("pk", "is_active", "session_generation", "password")}
    devices = {}
    for data in sessions.values():
        ref = device_ref(data.get(DEVICE_ID_SESSION_KEY))
        if ref is not None:
            devices.setdefault(ref[0], set()).add(ref[1])
    confirmed = {(model, pk): user_pk for model, pks in devices.items()
                 for pk, user_pk in model.objects.filter(pk__in=pks, confirmed=True).values_list("pk", "user_id")}

    def verified(key, user) -> bool:
        data, fresh = sessions.get(key), users.get(user.pk)
        if data is None or fresh is None or data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
            return False
        ref = device_ref(data.get(DEVICE_ID_SESSION_KEY))
        return session_passed_2fa(data, fresh, device_confirmed=ref is not None and confirmed.get(ref) == user.pk)

    return [verified(key, user) for key, user in sockets]


def session_touch(session) -> None:
    """Restart the session's idle clock (SESSION_COOKIE_AGE), as an HTTP request does."""
    fresh = session_reloaded(session)
    if fresh is not None:
        fresh.save()
