"""The client address: taken from X-Forwarded-For only when the peer is the trusted proxy (nginx, which
overwrites the header with the address it saw), so a forged header neither escapes the sign-in lockout
nor forges the address in the audit trail. teamaroundchild/proxy.py does it for any ASGI server."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from channels.db import database_sync_to_async
from channels.testing import ApplicationCommunicator
from django.conf import settings

from audit.models import AuditEvent
from teamaroundchild.proxy import TrustedProxyMiddleware

BASE_DIR = Path(__file__).resolve().parent.parent
FORGED = "10.66.66.66"


class Recorder:
    """An ASGI application that only remembers the scope it was given."""

    def __init__(self):
        self.scope = None

    async def __call__(self, scope, receive, send):
        self.scope = scope


async def seen_by_the_app(client: tuple[str, int] | None, headers: list[tuple[bytes, bytes]], kind: str = "http",
                          trusted: list[str] | None = None) -> dict:
    inner = Recorder()
    app = TrustedProxyMiddleware(inner, trusted=["127.0.0.1", "::1"] if trusted is None else trusted)
    await app({"type": kind, "path": "/", "headers": headers, "client": client}, None, None)
    return inner.scope


def xff(value: str) -> tuple[bytes, bytes]:
    return (b"x-forwarded-for", value.encode())


# --- the middleware ---------------------------------------------------------------------------------------


async def test_it_ignores_x_forwarded_for_from_an_untrusted_peer():
    scope = await seen_by_the_app(("203.0.113.9", 50000), [xff(FORGED), (b"host", b"tac.example.org")])
    assert scope["client"] == ("203.0.113.9", 50000)
    # Nothing further in can be fooled by the header either.
    assert scope["headers"] == [(b"host", b"tac.example.org")]


async def test_it_takes_the_rightmost_address_from_the_trusted_proxy():
    """nginx sets the header to the address it saw; anything to its left came from the client."""
    scope = await seen_by_the_app(("127.0.0.1", 40000), [xff(f"{FORGED}, 198.51.100.4")])
    assert scope["client"] == ("198.51.100.4", 0)
    assert scope["headers"] == []
    scope = await seen_by_the_app(("127.0.0.1", 40000), [xff(FORGED), xff("198.51.100.5")])
    assert scope["client"] == ("198.51.100.5", 0)


async def test_it_does_the_same_for_websockets():
    assert (await seen_by_the_app(("127.0.0.1", 1), [xff("2001:db8::5")], "websocket"))["client"] == ("2001:db8::5", 0)
    assert (await seen_by_the_app(("192.0.2.1", 1), [xff(FORGED)], "websocket"))["client"] == ("192.0.2.1", 1)


@pytest.mark.parametrize("header", [[], [xff("")], [xff("not-an-address")], [xff(f"{FORGED}, ")], [xff("1.2.3.4:80")]])
async def test_it_keeps_the_peer_address_when_the_proxy_names_no_valid_address(header):
    assert (await seen_by_the_app(("127.0.0.1", 40000), header))["client"] == ("127.0.0.1", 40000)


async def test_it_trusts_networks_as_well_as_addresses():
    scope = await seen_by_the_app(("10.0.5.7", 1), [xff("198.51.100.4")], trusted=["10.0.5.0/24"])
    assert scope["client"] == ("198.51.100.4", 0)
    scope = await seen_by_the_app(("10.0.6.7", 1), [xff("198.51.100.4")], trusted=["10.0.5.0/24"])
    assert scope["client"] == ("10.0.6.7", 1)


async def test_it_passes_other_scopes_untouched():
    inner = Recorder()
    await TrustedProxyMiddleware(inner, trusted=["127.0.0.1"])({"type": "lifespan"}, None, None)
    assert inner.scope == {"type": "lifespan"}


def test_it_trusts_only_the_local_proxy_by_default():
    assert settings.TAC_TRUSTED_PROXIES == ["127.0.0.1", "::1"]


# --- through the real ASGI application: sign-in failures, the audit trail, the address throttle -------


async def post_sign_in(peer: str, forwarded_for: str | None, email: str) -> int:
    from teamaroundchild.asgi import application

    csrf = secrets.token_hex(16)  # Django accepts the unmasked 32-character secret as the form token
    body = urlencode({"email": email, "auth_key": "ab" * 32, "csrfmiddlewaretoken": csrf}).encode()
    headers = [(b"host", b"127.0.0.1"), (b"cookie", f"csrftoken={csrf}".encode()),
               (b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", str(len(body)).encode())]
    if forwarded_for is not None:
        headers.append(xff(forwarded_for))
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/accounts/sign-in/",
             "raw_path": b"/accounts/sign-in/", "query_string": b"", "root_path": "", "headers": headers,
             "client": (peer, 51000), "server": ("127.0.0.1", 8001)}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(timeout=10)
    while (await communicator.receive_output(timeout=10)).get("more_body"):
        pass
    await communicator.wait(timeout=10)
    return start["status"]


@database_sync_to_async
def recorded_addresses() -> tuple[list[str], set[str]]:
    """The audit trail's addresses for failed sign-ins, and those django-axes counted failures under."""
    return (list(AuditEvent.objects.filter(kind="auth.sign_in_failed").values_list("ip", flat=True)),
            set(AccessAttempt.objects.values_list("ip_address", flat=True)))


@pytest.mark.django_db(transaction=True)
async def test_it_records_a_forged_sign_in_under_the_real_address():
    assert await post_sign_in("203.0.113.9", FORGED, "lead@csc.example") == 400
    assert await post_sign_in("127.0.0.1", f"{FORGED}, 198.51.100.4", "lead@csc.example") == 400
    audited, counted = await recorded_addresses()
    assert audited == ["203.0.113.9", "198.51.100.4"]
    assert counted == {"203.0.113.9", "198.51.100.4"}


@pytest.mark.django_db(transaction=True)
async def test_it_throttles_a_spraying_address_whatever_it_forges():
    for i in range(settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS):
        assert await post_sign_in("203.0.113.9", f"10.66.0.{i}", f"guess{i}@csc.example") == 400
    assert await post_sign_in("203.0.113.9", "10.66.1.1", "one-more@csc.example") == 429
    # Behind the proxy, likewise: the proxy's own address for the client is what counts.
    for i in range(settings.TAC_SIGN_IN_ADDRESS_ACCOUNTS):
        assert await post_sign_in("127.0.0.1", f"10.66.0.{i}, 198.51.100.4", f"guess{i}@csc.example") == 400
    assert await post_sign_in("127.0.0.1", "10.66.1.1, 198.51.100.4", "one-more@csc.example") == 429
    assert await post_sign_in("127.0.0.1", "203.0.113.10", "one-more@csc.example") == 400


# --- the shipped configuration ----------------------------------------------------------------------------


def nginx_directives(name: str) -> list[list[str]]:
    text = re.sub(r"#[^\n]*", "", (BASE_DIR / "deploy/nginx/tac.conf").read_text())
    return [statement.split()[1:] for statement in re.split(r"[;{}]", text)
            if statement.split() and statement.split()[0] == name]


def test_it_has_nginx_overwrite_x_forwarded_for_rather_than_append_to_it():
    headers = nginx_directives("proxy_set_header")
    forwarded = [args for args in headers if args[0].lower() == "x-forwarded-for"]
    # One for the websocket location, one for everything else; each the address nginx saw, nothing more.
    assert len(forwarded) == len(nginx_directives("proxy_pass")) == 2
    assert all(args[1:] == ["$remote_addr"] for args in forwarded), forwarded
    assert "$proxy_add_x_forwarded_for" not in (BASE_DIR / "deploy/nginx/tac.conf").read_text()


def test_it_has_daphne_leave_the_proxy_headers_to_the_application():
    """daphne's --proxy-headers believes the leftmost X-Forwarded-For from any peer."""
    unit = (BASE_DIR / "deploy/systemd/tac-daphne@.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, flags=re.M)
    assert "--proxy-headers" not in exec_start
    assert "--bind 127.0.0.1" in exec_start  # only nginx, on this machine, can reach the workers
    env = (BASE_DIR / "deploy/env.example").read_text()
    assert re.search(r"^TAC_TRUSTED_PROXIES=127\.0\.0\.1,::1$", env, flags=re.M)
    assert "AXES_PROXY_COUNT" not in env
