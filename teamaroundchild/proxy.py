"""The client's address, for the audit trail and the sign-in lockout and throttle.

Behind the shipped nginx the peer of every connection is nginx itself, which sets X-Forwarded-For to the
address it saw (deploy/nginx/tac.conf overwrites the header rather than appending to it). So the header
is believed only from a peer in TAC_TRUSTED_PROXIES, and then only its rightmost value: anything to the
left came from the client. From any other peer the header is a forgery and the peer's address stands.
Either way the header is dropped, so nothing further in (Django, django-axes) can be fooled by it.

daphne's own --proxy-headers is not used: it believes the leftmost value from any peer. Doing this in the
application keeps the rule the same under uvicorn or hypercorn.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings

FORWARDED_FOR = b"x-forwarded-for"


def _networks(entries: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _trusted(address: str, networks) -> bool:
    parsed = _address(address)
    return parsed is not None and any(ipaddress.ip_address(parsed) in network for network in networks)


class TrustedProxyMiddleware:
    """ASGI middleware for HTTP and websocket scopes: sets scope["client"] to the real client address."""

    def __init__(self, app, trusted: Iterable[str] | None = None):
        self.app = app
        self.networks = _networks(settings.TAC_TRUSTED_PROXIES if trusted is None else trusted)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = self.resolve(scope)
        return await self.app(scope, receive, send)

    def resolve(self, scope: dict) -> dict:
        forwarded = [value for name, value in scope.get("headers", []) if name.lower() == FORWARDED_FOR]
        scope = dict(scope, headers=[(name, value) for name, value in scope.get("headers", [])
                                     if name.lower() != FORWARDED_FOR])
        peer = scope.get("client")
        if forwarded and peer and _trusted(peer[0], self.networks):
            # Several headers count as one list, in order (RFC 9110, 5.3).
            rightmost = b",".join(forwarded).decode("latin-1").split(",")[-1]
            address = _address(rightmost)
            if address is not None:
                scope["client"] = (address, 0)
        return scope
