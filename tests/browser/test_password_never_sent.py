"""The password never leaves the browser, nor does the wrapping key derived from it: every request the
browser makes while signing in, changing the password, resetting it and accepting an invitation is
recorded and searched for them in every form an accident could give them (plain, URL-encoded, base64,
hex)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import BrowserContext, Request, expect

from accounts import services
from accounts.models import Professional
from tacprotocol import crypto
from tests.browser.journeys import (
    allow_totp_reuse,
    choose_password,
    enrolment_code,
    enter_code,
    expect_keys_unlocked,
    forgive_failed_codes,
    sign_in,
    sign_out,
)

pytestmark = pytest.mark.browser

PASSWORD = "Quokka-marmalade-TRELLIS-4417"
NEW_PASSWORD = "Heron orchard violin 2093 §"
INVITEE_PASSWORD = "Lantern+Fjord/Pebble=Saffron"


def encodings(secret: str | bytes) -> set[str]:
    """Every spelling of a secret worth searching for in traffic."""
    raw = secret.encode() if isinstance(secret, str) else secret
    spellings = {
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    if isinstance(secret, str):
        spellings |= {
            secret,
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
            json.dumps(secret)[1:-1],
        }
    # A base64 spelling inside a longer base64 string depends on where it starts: these are the other
    # two alignments, without the characters that mix in neighbouring bytes.
    for pad in (1, 2):
        spellings.add(base64.b64encode(bytes(pad) + raw).decode()[4:-4])
    return {s for s in spellings if len(s) >= 8}


@dataclass
class Traffic:
    requests: list[Request] = field(default_factory=list)

    def record(self, context: BrowserContext) -> Traffic:
        context.on("request", lambda request: self.requests.append(request))
        return self

    def dump(self) -> list[tuple[str, str]]:
        """(description, text) for each part of each request: URL, each header, body."""
        parts = []
        for r in self.requests:
            parts.append((f"{r.method} {r.url}: URL", urllib.parse.unquote_plus(r.url)))
            parts.append((f"{r.method} {r.url}: URL (raw)", r.url))
            for name, value in r.all_headers().items():
                parts.append((f"{r.method} {r.url}: header {name}", value))
            body = r.post_data_buffer
            if body:
                text = body.decode("utf-8", "replace")
                parts.append((f"{r.method} {r.url}: body", text))
                parts.append((f"{r.method} {r.url}: body (URL-decoded)", urllib.parse.unquote_plus(text)))
        return parts

    def assert_never_sent(self, label: str, secret: str | bytes) -> None:
        parts = self.dump()
        assert parts, "no requests were recorded"
        leaks = [
            f"{where} contains {label} as {spelling!r}"
            for where, text in parts
            for spelling in encodings(secret)
            if spelling in text
        ]
        assert not leaks, "\n".join(leaks)

    def posts_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and urllib.parse.urlsplit(r.url).path == path]


def keys_of(user: Professional, password: str) -> crypto.DerivedKeys:
    user.refresh_from_db()
    return crypto.derive_keys(password, bytes(user.kdf_salt), user.kdf_opslimit, user.kdf_memlimit)


def test_it_never_sends_the_password_or_wrapping_key_when_signing_in(page, make_persona):
    persona = make_persona("hv@csc.example", full_name="Hana Visitor", password=PASSWORD)
    traffic = Traffic().record(page.context)

    sign_in(page, persona)
    expect_keys_unlocked(page, persona.user)

    keys = keys_of(persona.user, PASSWORD)
    assert keys.auth_key != keys.wrap_key
    traffic.assert_never_sent("the password", PASSWORD)
    traffic.assert_never_sent("the wrapping key", keys.wrap_key)

    # What was sent instead is the auth key, and the server stores a hash of it, not of the password.
    [login] = traffic.posts_to("/accounts/sign-in/")
    assert urllib.parse.parse_qs(login.post_data)["auth_key"] == [keys.auth_key.hex()]
    assert persona.user.check_password(keys.auth_key.hex())
    assert not persona.user.check_password(PASSWORD)
    # The tab keeps the wrapping key (never the auth key) for unlocking.
    assert page.evaluate("() => sessionStorage.getItem('tac.wrapKey')") == base64.b64encode(keys.wrap_key).decode()


def test_it_never_sends_either_password_when_changing_it(page, make_persona):
    persona = make_persona("hv@csc.example", full_name="Hana Visitor", password=PASSWORD)
    sign_in(page, persona)
    old = keys_of(persona.user, PASSWORD)
    traffic = Traffic().record(page.context)

    page.goto("/accounts/account/password/")
    page.get_by_label("Current password", exact=True).fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.get_by_text("Your password has been changed.")).to_be_visible()
    expect_keys_unlocked(page, persona.user)

    new = keys_of(persona.user, NEW_PASSWORD)
    for label, secret in [
        ("the current password", PASSWORD),
        ("the new password", NEW_PASSWORD),
        ("the old wrapping key", old.wrap_key),
        ("the new wrapping key", new.wrap_key),
    ]:
        traffic.assert_never_sent(label, secret)
    [change] = traffic.posts_to("/accounts/account/password/")
    sent = change.post_data_json
    assert sent["current_auth_key"] == old.auth_key.hex()
    assert sent["auth_key"] == new.auth_key.hex()

    # And the new password works for the next sign-in, still without being sent.
    sign_out(page)
    persona.password = NEW_PASSWORD
    sign_in(page, persona)
    expect_keys_unlocked(page, persona.user)
    traffic.assert_never_sent("the new password", NEW_PASSWORD)
    traffic.assert_never_sent("the new wrapping key", new.wrap_key)


def test_it_never_sends_the_password_when_accepting_an_invitation(page, lead):
    _invitation, token = services.invitation_create(
        admin=lead.user,
        email="new.midwife@csc.example",
        full_name="Mina Midwife",
        job_title="Midwife",
        role=Professional.Role.PRACTITIONER,
        is_agency_admin=False,
        accept_url_for=lambda t: f"/accounts/invitations/{t}/",
    )
    traffic = Traffic().record(page.context)

    page.goto(f"/accounts/invitations/{token}/")
    choose_password(page, INVITEE_PASSWORD, "Create account")
    expect(page.get_by_role("heading", name="Set up two-factor authentication")).to_be_visible()
    enter_code(page, enrolment_code(page))
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    page.get_by_role("link", name="I have saved my backup codes").click()
    user = Professional.objects.get(email="new.midwife@csc.example")
    expect_keys_unlocked(page, user)

    keys = keys_of(user, INVITEE_PASSWORD)
    traffic.assert_never_sent("the password", INVITEE_PASSWORD)
    traffic.assert_never_sent("the wrapping key", keys.wrap_key)
    [accept] = traffic.posts_to(f"/accounts/invitations/{token}/")
    assert accept.post_data_json["auth_key"] == keys.auth_key.hex()
    assert user.check_password(keys.auth_key.hex())


def reset_path(user: Professional) -> str:
    """The link the reset email carries."""
    return f"/accounts/password-reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"


def test_it_resets_the_password_with_the_security_code_typed_into_the_page(page, make_persona):
    """The emailed link alone is not enough: the page asks for the code from the authenticator app."""
    persona = make_persona("hv@csc.example", full_name="Hana Visitor", password=PASSWORD)
    old = keys_of(persona.user, PASSWORD)
    path = reset_path(persona.user)
    traffic = Traffic().record(page.context)

    page.goto(path)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    wrong = f"{(int(persona.totp()) + 1) % 1_000_000:06d}"
    page.get_by_label("Security code from your authenticator app, or a backup code").fill(wrong)
    choose_password(page, NEW_PASSWORD, "Reset password")
    summary = page.locator("[data-tac-error-summary]")
    expect(summary).to_contain_text("The security code is not correct, or has been used")
    expect(summary.get_by_role("link")).to_have_attribute("href", "#otp-token")
    assert persona.user.identity_keys.count() == 1  # nothing changed
    assert keys_of(persona.user, PASSWORD) == old

    forgive_failed_codes(persona.user)
    code = persona.totp()
    page.get_by_label("Security code").fill(code)
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Your password has been reset.")).to_be_visible()
    assert [r.post_data_json["otp_token"] for r in traffic.posts_to(path)] == [wrong, code]

    # The new password works, with the authenticator, and opens the new keys.
    allow_totp_reuse(persona)  # the reset used this window's code
    persona.password = NEW_PASSWORD
    sign_in(page, persona)
    assert persona.user.current_identity_key().version == 2
    expect_keys_unlocked(page, persona.user)
    new = keys_of(persona.user, NEW_PASSWORD)
    for label, secret in [("the new password", NEW_PASSWORD), ("the new wrapping key", new.wrap_key)]:
        traffic.assert_never_sent(label, secret)


def test_it_would_notice_a_password_in_the_traffic(page):
    """The detector itself: a request that carries the password, base64'd in a header, is caught."""
    traffic = Traffic().record(page.context)
    page.goto("/accounts/sign-in/")
    page.evaluate(
        "([b64]) => fetch('/healthz', {headers: {'X-Test': 'x' + b64}})",
        [base64.b64encode(PASSWORD.encode()).decode()],
    )
    with pytest.raises(AssertionError, match="header x-test contains the password"):
        traffic.assert_never_sent("the password", PASSWORD)
