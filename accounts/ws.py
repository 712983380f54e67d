import time

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser

from .access import session_verified_user


def _user_if_verified(session):
    """The session's user, and whether the session passed 2FA: one trip to the database thread and two
    hand-written statements (accounts/sessions.py, accounts/storage.py), the session and then the user
    with whether the session's device is theirs and confirmed. The checks are Django's for an HTTP
    request (the session names a configured backend and an active account, whose auth hash it holds)
    and the 2FA ones (accounts.access.session_verified_user). Django's get_user and django-otp's device
    lookup, used before, raised on a user id of the wrong type or a device id naming a model that is not
    a device, and the handshake hung."""
    user = session_verified_user(session)
    return (user, True) if user is not None else (AnonymousUser(), False)


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
        # What the session holds was for this check only: every later check reads the stored session
        # afresh (accounts.access.session_reloaded), so the decoded copy is not kept for the socket's life
        # (about 0.7 KiB a socket; W4 in BENCHMARKS.md). Were anything to ask, Django loads it again.
        vars(scope["session"]._wrapped).pop("_session_cache", None)
        return await self.inner(scope, receive, send)


def VerifiedSessionMiddlewareStack(inner):
    """Cookie, session, then the user and the 2FA check: channels' AuthMiddlewareStack with the 2FA
    door built into the user lookup."""
    return CookieMiddleware(SessionMiddleware(Require2FAWebsocketMiddleware(inner)))

