import time
from types import SimpleNamespace

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib import auth

from .access import session_passed_2fa


def _user_if_verified(session):
    """The session's user (Django's own lookup, with its auth-hash check), and whether the session
    passed 2FA: one trip to the database thread."""
    user = auth.get_user(SimpleNamespace(session=session))
    return user, session_passed_2fa(session, user, user_just_loaded=True)


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

