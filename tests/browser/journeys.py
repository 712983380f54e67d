"""Steps that several browser tests walk through, written the way a professional would do them: by
label and role, never by posting to the server directly. Each step waits with Playwright's `expect`
for the page that should follow, so a test fails where the journey went wrong."""

from __future__ import annotations

import base64

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts.models import Professional
from tacprotocol import crypto
from tests.conftest import Persona

KEY_STATUS = "[data-tac-key-status]"
WRAP_KEY_ITEM = "tac.wrapKey"


def allow_totp_reuse(persona: Persona) -> None:
    """django-otp accepts each code once (last_t); a second sign-in within 30 s may need "now" again."""
    TOTPDevice.objects.filter(pk=persona.device.pk).update(last_t=-1)


def forgive_failed_codes(user: Professional) -> None:
    """django-otp throttles a device for a second or more after a wrong code (OTP_TOTP_THROTTLE_FACTOR),
    so the right code typed straight after a wrong one is refused; a test that shows an error page
    first clears that, rather than sleeping."""
    TOTPDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)


def submit_password(page: Page, email: str, password: str) -> None:
    page.goto("/accounts/sign-in/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def enter_code(page: Page, code: str, button: str = "Continue") -> None:
    page.get_by_label("Security code").fill(code)
    page.get_by_role("button", name=button).click()


def sign_in_password_only(page: Page, persona: Persona) -> None:
    """The first factor: lands on the security code challenge."""
    submit_password(page, persona.user.email, persona.password)
    expect(page.get_by_role("heading", name="Enter your security code")).to_be_visible()


def sign_in(page: Page, persona: Persona) -> None:
    """Both factors, ending on the home page; the device's code counter is reset for the next sign-in."""
    sign_in_password_only(page, persona)
    enter_code(page, persona.totp())
    expect(page.get_by_role("heading", name=f"Welcome, {persona.user.full_name}")).to_be_visible()
    allow_totp_reuse(persona)


def expected_safety_number(user: Professional) -> str:
    key = user.current_identity_key()
    return crypto.safety_number(crypto.fingerprint(bytes(key.sign_public), bytes(key.box_public)))


def expect_keys_unlocked(page: Page, user: Professional) -> None:
    status = page.locator(KEY_STATUS)
    expect(status).to_have_attribute("data-state", "unlocked")
    expect(status.locator("[data-tac-safety-number]")).to_have_text(expected_safety_number(user))


def wrap_key_in_tab(page: Page) -> str | None:
    return page.evaluate(f"() => sessionStorage.getItem({WRAP_KEY_ITEM!r})")


def enrolment_code(page: Page) -> str:
    """The current code for the secret shown on the enrolment page, as an authenticator app makes it."""
    secret = page.locator("[data-tac-totp-secret]").inner_text()
    secret = "".join(secret.split())
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key):06d}"


def choose_password(page: Page, password: str, button: str) -> None:
    page.get_by_label("Create a password").fill(password)
    page.get_by_label("Confirm password").fill(password)
    page.get_by_role("button", name=button).click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
