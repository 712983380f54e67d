import time

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django_otp import DEVICE_ID_SESSION_KEY

from .access import session_device, session_passed_2fa
from .models import Professional


def _user_if_verified(session):
    """The session's user, and whether the session passed 2FA: one trip to the database thread and two
    statements, the session and then the user with whether the session's device is theirs and
    confirmed. The checks are Django's for an HTTP request (the session names a configured backend and
    an active account, whose auth hash it holds: session_passed_2fa) and the 2FA ones. Django's get_user
    and django-otp's device lookup, used before, failed with an exception (the handshake hung) on a
    session naming a user id of the wrong type or a model that is not a device."""
    refused = AnonymousUser(), False
    devices = session_device(session.get(DEVICE_ID_SESSION_KEY))
    if devices is None or session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return refused
    try:
        pk = Professional._meta.pk.to_python(session.get(SESSION_KEY))
    except ValidationError:
        return refused
    if pk is None:
        return refused
    user = (Professional.objects.filter(pk=pk, is_active=True)
            .annotate(tac_device_confirmed=Exists(devices.filter(user_id=OuterRef("pk"), confirmed=True))).first())
    if user is None:
        return refused
    return user, session_passed_2fa(session, user, user_just_loaded=True, device_confirmed=user.tac_device_confirmed)


class Require2FAWebsocketMiddleware(AuthMiddleware):
    """channels' AuthMiddleware (scope["user"] from the session cookie) that also refuses the handshake
    unless the session passed 2FA and is still current, in the same database call. Consumers check
    again while the socket is open: this is the door, not the only lock. The time of this check goes in
    the scope as `tac_session_checked_at` (time.monotonic()), so the consumer need not repeat it at
    once."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        self.populate_scope(scope)
        user, allowed = await database_sync_to_async(_user_if_verified)(scope["session"])
        if not allowed:
            return await WebsocketDenier()(scope, receive, send)
        scope["user"]._wrapped = user
        scope["tac_session_checked_at"] = time.monotonic()
        return await self.inner(scope, receive, send)


def VerifiedSessionMiddlewareStack(inner):
    """Cookie, session, then the user and the 2FA check: channels' AuthMiddlewareStack with the 2FA
    door built into the user lookup."""
    return CookieMiddleware(SessionMiddleware(Require2FAWebsocketMiddleware(inner)))

