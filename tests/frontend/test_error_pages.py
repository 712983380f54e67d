"""The error pages (frontend/templates/404.html, 403.html, 403_csrf.html, 500.html) outside the API, and
the JSON error shape under /api/ and /accounts/api/ (messaging/views.py). tests/browser/test_error_pages.py
checks how the pages look and that they pass axe."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import get_resolver

from messaging import views
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def html(response, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    return response.content.decode()


def json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["error"] == code and body["reason"]
    return body


def test_it_uses_the_json_aware_handlers():
    resolver = get_resolver()
    assert {code: resolver.resolve_error_handler(code) for code in (400, 403, 404, 500)} == {
        400: views.bad_request, 403: views.forbidden, 404: views.not_found, 500: views.server_error,
    }


def test_it_shows_the_not_found_page_outside_the_api(client):
    page = html(client.get("/no-such-page/"), 404)
    assert "<title>Page not found – Team Around the Child</title>" in page
    assert '<a class="govuk-link" href="/">Go to the home page</a>' in page


def test_it_answers_an_unknown_accounts_api_path_in_json(client):
    json_error(client.get("/accounts/api/v1/no-such-endpoint"), 404, "not_found")


def test_it_shows_the_expired_page_for_a_stale_form_with_the_navigation(lead):
    session = HttpClient(enforce_csrf_checks=True)
    session.cookies = sign_in(HttpClient(), lead).cookies
    session.get("/")  # sets the csrftoken cookie
    page = html(session.post("/accounts/sign-out/", {"csrfmiddlewaretoken": "x" * 64}), 403)
    assert "<title>This page has expired – Team Around the Child</title>" in page
    # Still signed in, and the page's own sign-out form carries a token that works.
    assert "Sign out</button>" in page
    token = session.cookies["csrftoken"].value
    assert session.post("/accounts/sign-out/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_it_answers_a_csrf_failure_under_the_accounts_api_in_json():
    session = HttpClient(enforce_csrf_checks=True)
    body = json_error(session.post("/accounts/api/v1/prelogin", "{}", content_type="application/json"),
                      403, "csrf_failed")
    assert "X-CSRFToken" in body["reason"]


@pytest.mark.parametrize("path", ["/api/v1/workspaces", "/accounts/api/v1/me/keys"])
def test_it_answers_forbidden_and_server_errors_in_json_under_the_api(path):
    request = RequestFactory().get(path)
    json_error(views.forbidden(request, PermissionDenied()), 403, "forbidden")
    json_error(views.server_error(request), 500, "server_error")


def test_it_shows_the_forbidden_page_outside_the_api():
    page = html(views.forbidden(RequestFactory().get("/accounts/agency/"), PermissionDenied()), 403)
    assert "<title>You cannot see this page – Team Around the Child</title>" in page


def test_it_renders_the_server_error_page_without_a_request_context():
    """Django's server_error renders 500.html with no context processors: no user, no CSRF token."""
    page = html(views.server_error(RequestFactory().get("/")), 500)
    assert "<title>Sorry, there is a problem with the service – Team Around the Child</title>" in page
    assert '<a class="govuk-link" href="/">Go to the home page</a>' in page
    assert "Sign out" not in page
