"""Django's PostgreSQL backend, whose connection health check (CONN_HEALTH_CHECKS, on in production) skips a
connection that answered within the last TAC_DB_HEALTH_CHECK_SKIP_SECONDS, as PgBouncer's
server_check_delay skips its check of a server connection used moments ago.

Why: Django checks a reused connection (`SELECT 1`) before the first statement of every "request", and
every database call a websocket makes is one (channels' database_sync_to_async ends a request around
each call), so on the live path every post paid a round trip before its one statement, and under W3's
load a fifth of the server's CPU went with it (BENCHMARKS.md). A connection that answered a moment ago is
as likely to be alive as one that has just passed the check; one idle for longer is checked as before, so
a connection PostgreSQL dropped while idle (a restart, a failover) is still replaced before use."""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # time.monotonic() when this connection last finished a request's statements without a connection error
    answered_at = float("-inf")

    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and time.monotonic() - self.answered_at < settings.TAC_DB_HEALTH_CHECK_SKIP_SECONDS):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self):
        # The request used the connection (its health was settled when its first cursor was made) and no
        # error said the connection failed (a DataError or an IntegrityError is PostgreSQL answering).
        answered = self.connection is not None and self.health_check_done and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if answered and self.connection is not None:
            self.answered_at = time.monotonic()
