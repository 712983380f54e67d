"""What accounts announces to the apps that keep state about a professional elsewhere (messaging: their
memberships and their live sockets), so that accounts imports none of them. Sent synchronously inside the
transaction of the change (Signal.send, not send_robust): a receiver's writes commit or roll back with it,
and a receiver's error fails the change. messaging/handlers.py receives both."""

from django.dispatch import Signal

# professional (just offboarded), actor, request. Sent after the account is disabled and before accounts
# writes its own audit record, so receivers take their workspace locks first (audit/README.md, lock order).
professional_offboarded = Signal()

# professional, reason, and optionally keep_session or only_session (a session fingerprint): sessions
# ended; every socket of those sessions must close once the change commits.
sessions_revoked = Signal()
