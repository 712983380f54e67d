"""The one websocket a browser opens. Frames are JSON objects with a "type"; replies and pushes too.
docs/protocol.md lists every frame."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.access import session_passed_2fa

from .events import user_group

# Close codes (4000-4999 are the application's): the browser shows the reason and does not reconnect.
CLOSE_NOT_ENTITLED = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope["user"]
        if not await self._still_entitled():
            await self.close(code=CLOSE_NOT_ENTITLED)
            return
        self.groups_joined = [user_group(self.user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": str(self.user.public_id)})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _still_entitled(self) -> bool:
        return await database_sync_to_async(session_passed_2fa)(self.scope["session"], self.user)

    async def receive_json(self, content, **kwargs):
        # The session may have ended since connect (offboarding, sign out everywhere): check every frame.
        if not await self._still_entitled():
            await self.close(code=CLOSE_NOT_ENTITLED)
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("frame must be a JSON object with a string 'type'")
            return
        if content["type"] == "ping":
            await self.send_json({"type": "pong", "id": content.get("id")})
            return
        await self.send_error(f"unknown frame type {content['type']!r}", frame_id=content.get("id"))

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_error("binary frames are not accepted; send JSON text")
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_error("frame is not valid JSON")
            return
        await self.receive_json(content, **kwargs)

    async def send_error(self, reason: str, frame_id=None):
        await self.send_json({"type": "error", "reason": reason, "id": frame_id})

    # --- events from the channel layer ---

    async def session_revoked(self, event):
        await self.send_json({"type": "session.revoked", "reason": event.get("reason", "")})
        await self.close(code=CLOSE_NOT_ENTITLED)
