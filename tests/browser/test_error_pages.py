"""Pages that are not there (404), not allowed (403, and a form whose CSRF token went stale) and a
server error (500) are GOV.UK-styled pages with the header and a way home, and pass axe at desktop width
and 320 px. Under /api/ the same errors stay in the API's JSON shape."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.views.defaults import permission_denied, server_error
from playwright.sync_api import expect

from tests.browser.journeys import sign_in
from tests.browser.test_accessibility import Auditor

pytestmark = pytest.mark.browser


@pytest.fixture
def audit(new_page):
    return Auditor(new_page(bypass_csp=True))


def expect_service_page(page, heading: str):
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page).to_have_title(f"{heading} – Team Around the Child")
    expect(page.get_by_role("banner").get_by_role("link", name="Team Around the Child")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("link", name="Go to the home page")).to_have_attribute("href", "/")


def test_it_shows_styled_not_found_and_forbidden_pages(audit, lead):
    page = audit.page

    response = page.goto("/no-such-page/")
    assert response.status == 404
    expect_service_page(page, "Page not found")
    audit("404 signed out")

    sign_in(page, lead)
    response = page.goto(f"/workspaces/{uuid.uuid4()}/")
    assert response.status == 404
    expect_service_page(page, "Page not found")
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    audit("404 signed in")

    # A form whose CSRF token no longer matches (a page left open across a sign-in elsewhere).
    page.goto("/")
    page.evaluate("""() => { for (const input of document.querySelectorAll('form[data-tac-sign-out] input[name=csrfmiddlewaretoken]'))
        input.value = 'x'.repeat(64); }""")
    with page.expect_response("**/accounts/sign-out/") as answer:
        page.get_by_role("button", name="Sign out", exact=True).click()
    assert answer.value.status == 403
    expect_service_page(page, "This page has expired")
    audit("403 stale form")

    # The API keeps its JSON, with the same session.
    missing = page.request.get("/api/v1/no-such-endpoint")
    assert missing.status == 404 and missing.json()["error"] == "not_found"
    refused = page.request.post("/api/v1/workspaces", data="{}", headers={"Content-Type": "application/json"})
    assert refused.status == 403 and refused.json()["error"] == "csrf_failed"

    audit.assert_clean(3)


def test_it_styles_the_forbidden_and_server_error_pages(audit):
    """No page raises PermissionDenied today and a 500 cannot be caused on purpose: Django's own handlers
    render the templates here and the browser shows what they answer."""
    page = audit.page
    request = RequestFactory().get("/")
    pages = {
        "/tac-test-403": (403, permission_denied(request, PermissionDenied()).content),
        "/tac-test-500": (500, server_error(request).content),
    }
    for path, (status, body) in pages.items():
        page.route(f"**{path}", lambda route, *, status=status, body=body: route.fulfill(
            status=status, content_type="text/html; charset=utf-8", body=body))

    page.goto("/tac-test-403")
    expect_service_page(page, "You cannot see this page")
    audit("403")

    page.goto("/tac-test-500")
    expect_service_page(page, "Sorry, there is a problem with the service")
    audit("500")

    audit.assert_clean(2)
