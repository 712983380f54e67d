"""The session engine (settings.SESSION_ENGINE): Django's database sessions, the same table and the same
signed text, loaded by one hand-written statement (accounts/storage.py) instead of a query the ORM builds
afresh for every request and every websocket handshake."""

from django.contrib.sessions.backends import db
from django.utils import timezone

from . import storage


class SessionStore(db.SessionStore):
    def load(self):
        """As Django's: the stored session if it exists and is in date, else empty, and the key forgotten
        (so a new session is made rather than an ended one brought back)."""
        data = storage.session_data(self.session_key, timezone.now()) if self.session_key else None
        if data is None:
            self._session_key = None
            return {}
        return self.decode(data)
