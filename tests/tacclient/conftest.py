"""The Python client against a live daphne (tests/conftest.py::live_server_url) on the test database:
tests here use `transactional_db`, so what they create is committed and the server sees it."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tacclient import client as tacclient_module
from tacclient.client import TacClient


@pytest.fixture(autouse=True)
def light_kdf_floor(monkeypatch, settings):
    """Test accounts use settings/test.py's light Argon2id cost; the client's floor must allow it."""
    monkeypatch.setattr(tacclient_module, "DEFAULT_KDF_FLOOR", (settings.TAC_KDF_OPSLIMIT, settings.TAC_KDF_MEMLIMIT))


def totp_reusable(persona) -> None:
    """A TOTP code works once per 30 s window and device: let the next sign-in of this persona reuse it."""
    TOTPDevice.objects.filter(pk=persona.device.pk).update(last_t=-1)


@pytest.fixture
def connect(live_server_url, transactional_db):
    """A signed-in TacClient for a persona (the real sign-in: prelogin, auth key, TOTP, keys)."""
    clients = []

    def make(persona, *, password: str | None = None) -> TacClient:
        client = TacClient(live_server_url)
        clients.append(client)
        totp_reusable(persona)  # "now" may have just been used (a sign-in, a password reset)
        client.sign_in(persona.user.email, password or persona.password, persona.totp())
        totp_reusable(persona)
        return client

    yield make
    for client in clients:
        client.close()
