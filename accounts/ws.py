from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier

from .access import session_passed_2fa


class Require2FAWebsocketMiddleware:
    """Refuses the websocket handshake unless the session passed 2FA (and is still current). Consumers
    check again on every frame: this is the door, not the only lock."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            allowed = await database_sync_to_async(session_passed_2fa)(scope["session"], scope.get("user"))
            if not allowed:
                denier = WebsocketDenier()
                return await denier(scope, receive, send)
        return await self.app(scope, receive, send)
