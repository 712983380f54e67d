"""Shared fixtures. Personas (healthchecks' style): `lead` and `manager` in children's social care,
`gp` at a GP practice (another agency), `outsider` who must see nothing. Accounts are made through the
same services and Python KDF as the demo seed, at the light KDF cost of settings/test.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
from daphne.testing import DaphneProcess
from django.conf import settings
from django.db import connections
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Agency, Professional
from accounts.services import agency_create, professional_create_with_password
from tacprotocol import crypto

PASSWORD = "correct horse battery staple"


def pytest_sessionstart(session):
    # As deployed: PostgreSQL and the Redis channel layer. Never a quiet fallback (CI=true or not).
    engine = settings.DATABASES["default"]["ENGINE"]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if "postgresql" not in engine or "channels_redis" not in layer:
        raise pytest.UsageError(
            f"tests need PostgreSQL and the Redis channel layer, not {engine} / {layer}: run `make test`"
        )


@pytest.fixture(autouse=True, scope="session")
def _redis_answers():
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL).ping()
    except redis.RedisError as exc:  # a missing service fails, never skips
        pytest.exit(f"Redis at {settings.REDIS_URL} is not answering ({exc}); run deploy/local/ensure-services.sh",
                    returncode=1)
    yield


@dataclass
class Persona:
    user: Professional
    password: str = PASSWORD

    @property
    def device(self) -> TOTPDevice:
        return TOTPDevice.objects.get(user=self.user, confirmed=True)

    def totp(self) -> str:
        d = self.device
        d.refresh_from_db()
        return f"{totp(d.bin_key, step=d.step, t0=d.t0, digits=d.digits, drift=d.drift):06d}"

    def auth_key(self, password: str | None = None) -> str:
        u = self.user
        u.refresh_from_db()
        return crypto.derive_keys(password or self.password, bytes(u.kdf_salt), u.kdf_opslimit, u.kdf_memlimit).auth_password


@pytest.fixture
def agencies(db):
    return {
        "csc": agency_create(name="Northshire Children's Social Care", kind=Agency.Kind.CHILDRENS_SOCIAL_CARE),
        "gp": agency_create(name="Riverside Medical Practice", kind=Agency.Kind.GP_PRACTICE),
        "school": agency_create(name="St Anne's Primary", kind=Agency.Kind.SCHOOL),
    }


@pytest.fixture
def make_persona(agencies):
    def make(email: str, agency: str = "csc", *, with_totp: bool = True, password: str = PASSWORD, **fields):
        fields.setdefault("full_name", email.split("@")[0].title())
        fields.setdefault("job_title", "Social worker")
        user = professional_create_with_password(
            password=password, email=email, agency=agencies[agency], **fields
        )
        if with_totp:
            TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
        return Persona(user=user, password=password)

    return make


@pytest.fixture
def lead(make_persona):
    return make_persona("lead@csc.example", "csc", full_name="Sam Lead", is_agency_admin=True)


@pytest.fixture
def manager(make_persona):
    return make_persona("manager@csc.example", "csc", full_name="Morgan Manager", role="manager")


@pytest.fixture
def gp(make_persona):
    return make_persona("gp@gp.example", "gp", full_name="Dr Priya GP", job_title="GP", is_agency_admin=True)


@pytest.fixture
def outsider(make_persona):
    return make_persona("outsider@school.example", "school", full_name="Olly Outsider", job_title="Teacher")


def sign_in(client, persona: Persona, *, verify: bool = True):
    """The real flow through the views: the auth key as password, then a TOTP code."""
    response = client.post(reverse("accounts:login"), {"email": persona.user.email, "auth_key": persona.auth_key()})
    assert response.status_code == 302, response.content[:500]
    if verify:
        # Each TOTP code works once: move the device's counter so that this sign-in may use "now" even if
        # something else just did (another sign-in, a password reset), and so may the next one.
        TOTPDevice.objects.filter(pk=persona.device.pk).update(last_t=-1)
        response = client.post(reverse("accounts:two_factor"), {"token": persona.totp()})
        assert response.status_code == 302, response.content[:500]
        TOTPDevice.objects.filter(pk=persona.device.pk).update(last_t=-1)
    return client


@pytest.fixture
def signed_in(client):
    def go(persona: Persona, *, verify: bool = True):
        return sign_in(client, persona, verify=verify)

    return go


@pytest.fixture
def capture_events(monkeypatch, django_capture_on_commit_callbacks):
    """Events services sent through the channel layer (after commit), as (group, message)."""
    from messaging import events

    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(events, "deliver", lambda group, message: sent.append((group, message)))
    return sent


# --- no email carries anything of a workspace (tests/notifications/email_content.py says what) ----------

# Where the forked test servers (live_server_url) write the emails they send, for the same scan.
MAIL_SPOOL = Path(tempfile.mkdtemp(prefix="tac-test-mail-"))


@pytest.fixture(autouse=True, scope="session")
def _email_scan():
    """Every email sent anywhere in the run, scanned at the end: the run fails if one carries a reference,
    a rating, a name (notification emails) or any plaintext sealed during the run or by the demo seed.
    Sealed plaintext is recorded as tacclient seals it; names as accounts and agencies are saved."""
    from django.db.models.signals import post_save

    from tests.notifications import email_content as scan

    forbidden, sent = scan.Forbidden(), []
    seal = crypto.post_seal

    def recording_seal(identity, header, body, epoch_key, nonce=None):
        forbidden.add_plaintext(body)
        return seal(identity, header, body, epoch_key, nonce)

    def named(sender, instance, **kwargs):
        forbidden.add_name(getattr(instance, "full_name", None) or instance.name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crypto, "post_seal", recording_seal)
        for model in (Professional, Agency):
            post_save.connect(named, sender=model, dispatch_uid=f"email-scan-{model.__name__}")
        yield SimpleNamespace(sent=sent, forbidden=forbidden)
        for model in (Professional, Agency):
            post_save.disconnect(sender=model, dispatch_uid=f"email-scan-{model.__name__}")
    sent += scan.from_spool(MAIL_SPOOL)
    shutil.rmtree(MAIL_SPOOL, ignore_errors=True)
    demo = scan.demo_forbidden()
    forbidden.texts |= demo.texts
    forbidden.names |= demo.names
    if found := scan.problems(sent, forbidden):
        pytest.fail(f"{len(found)} forbidden things in the {len(sent)} emails this run sent:\n" + "\n".join(found[:50]),
                    pytrace=False)


@pytest.fixture(autouse=True)
def _emails_scanned(request, _email_scan):
    yield
    from django.core import mail

    from tests.notifications.email_content import from_django

    _email_scan.sent.extend(from_django(m, request.node.nodeid) for m in getattr(mail, "outbox", []))


os.environ.setdefault("TAC_TESTING", "1")


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main thread for
    the rest of the session, where pytest-asyncio's tests could not run."""
    browser_dir = os.path.join("tests", "browser") + os.sep
    for item in items:
        if browser_dir in str(item.fspath):
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: browser_dir in str(item.fspath))


def _application():
    """For a daphne process serving the real ASGI application on the test database (the browser tests,
    the Python client's tests, the two-worker test). Tests that use it need `transactional_db`."""
    # In the forked child. asgiref's single thread for thread-sensitive sync code (database_sync_to_async)
    # is an executor made in the parent; if earlier async tests started its thread, that thread did not
    # survive the fork and work sent to it waits forever (websocket handshakes time out): give it a new
    # one. Likewise drop any channel layer the parent opened: its Redis connections are the parent's.
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync
    from channels.layers import channel_layers

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    channel_layers.backends = {}
    # Its emails go to files that the session's email scan reads (_email_scan).
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(MAIL_SPOOL)
    from teamaroundchild.asgi import application

    return application


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    process = DaphneProcess("127.0.0.1", partial(_application))
    # pytest-django blocks database access outside tests by patching the connection class; a forked
    # child keeps whatever state the parent had, so fork while unblocked or the server cannot query.
    with django_db_blocker.unblock():
        connections.close_all()  # the child must not share the parent's sockets
        process.start()
    while not process.ready.wait(timeout=1):
        if not process.is_alive():
            raise RuntimeError(f"daphne did not start: {process.errors.get_nowait() if not process.errors.empty() else ''}")
    yield f"http://127.0.0.1:{process.port.value}"
    process.terminate()
    process.join(timeout=10)


@pytest.fixture
def custodian(db):
    """The data controller's key, installed and pinned as `manage.py custodian_key_create` does (a new pin
    per test); the test keeps the private half so it can prove recovery works."""
    from messaging.custodian import custodian_key_install

    identity = crypto.custodian_identity(os.urandom(32))
    custodian_key_install(box_public=identity.box_public, sign_public=identity.sign_public, label="Test custodian",
                          new_pin=True)
    return identity
