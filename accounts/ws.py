import time

from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from .access import session_passed_2fa


class Require2FAWebsocketMiddleware:
    """Refuses the websocket handshake unless the session passed 2FA (and is still current). Consumers
    check again while the socket is open: this is the door, not the only lock. The time of this check
    goes in the scope as `tac_session_checked_at` (time.monotonic()), so the consumer need not repeat it
    at once."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            # channels' AuthMiddleware (outside this one) has just read the user and checked the session's
            # auth hash against it.
            allowed = await database_sync_to_async(session_passed_2fa)(scope["session"], scope.get("user"),
                                                                       user_just_loaded=True)
            if not allowed:
                denier = WebsocketDenier()
                return await denier(scope, receive, send)
            scope = dict(scope, tac_session_checked_at=time.monotonic())
        return await self.app(scope, receive, send)
