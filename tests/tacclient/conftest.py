"""The Python client against a live daphne (tests/conftest.py::live_server_url) on the test database:
tests here use `transactional_db`, so what they create is committed and the server sees it."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from tacclient import client as tacclient_module
from tacclient.cli import main
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


@pytest.fixture
def tac(live_server_url, monkeypatch, capsys, tmp_path):
    """Runs `tac --url ... --email <persona> ARGS` with the password and a fresh TOTP code in the
    environment, and the local saved state under this test's own directory (not the real home's, where
    another test's account of the same address would leave a copy sealed under other keys). Returns
    (exit code, stdout, stderr)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TAC_STATE_FILE", raising=False)

    def run(persona, *argv: str, password: str | None = None):
        monkeypatch.setenv("TAC_PASSWORD", password or persona.password)
        monkeypatch.setenv("TAC_TOTP", persona.totp())
        capsys.readouterr()
        code = main(["--url", live_server_url, "--email", persona.user.email, *argv])
        totp_reusable(persona)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run
