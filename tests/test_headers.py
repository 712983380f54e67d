"""Response headers and what the shipped logs keep: nothing a signed-in person sees is stored by a cache,
no page may use the camera, microphone or the like, static files are not offered to other origins, and
no shipped log records a query string (the directory is searched by email address)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import sign_in

BASE_DIR = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def assert_no_store(response, what: str) -> None:
    assert "no-store" in response.get("Cache-Control", ""), f"{what}: {response.get('Cache-Control')!r}"


# --- Cache-Control ----------------------------------------------------------------------------------------


def test_it_forbids_caching_every_answer_to_a_signed_in_professional(client, lead):
    sign_in(client, lead)
    for url in [reverse("frontend:home"), reverse("accounts:account"), reverse("accounts:api_my_keys"),
                "/api/v1/directory?q=manager", reverse("accounts:agency"), "/admin/"]:
        response = client.get(url)
        assert response.status_code in (200, 302), url
        assert_no_store(response, url)


def test_it_forbids_caching_a_password_only_session_and_its_redirects(client, lead):
    sign_in(client, lead, verify=False)
    assert_no_store(client.get(reverse("accounts:two_factor")), "the 2FA challenge")
    assert_no_store(client.get(reverse("frontend:home")), "a redirect to the challenge")


def test_it_forbids_caching_every_accounts_and_api_answer_even_anonymous(client, lead):
    assert_no_store(client.get(reverse("accounts:login")), "sign-in page")
    response = client.post(reverse("accounts:api_prelogin"), {"email": lead.user.email}, content_type="application/json")
    assert response.status_code == 200
    assert_no_store(response, "prelogin")
    response = client.get(reverse("accounts:api_my_keys"))
    assert response.status_code == 401
    assert_no_store(response, "an anonymous API call")
    assert_no_store(client.get("/api/v1/directory?q=ab"), "an anonymous directory search")


def test_it_leaves_static_files_cacheable_and_closed_to_other_origins(client, lead):
    sign_in(client, lead)
    response = client.get("/static/tac/signin.js", HTTP_ORIGIN="https://elsewhere.example")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "Access-Control-Allow-Origin" not in response
    assert "Permissions-Policy" not in response  # scripts are not documents


# --- Permissions-Policy -----------------------------------------------------------------------------------

DENIED = ["camera", "microphone", "geolocation", "payment", "usb", "serial", "hid", "midi", "display-capture",
          "accelerometer", "gyroscope", "magnetometer", "publickey-credentials-get", "xr-spatial-tracking"]


def permissions_policy(response) -> dict[str, str]:
    header = response["Permissions-Policy"]
    return dict(part.strip().split("=", 1) for part in header.split(","))


def test_it_denies_powerful_features_on_every_page(client, lead):
    pages = [client.get(reverse("accounts:login")), client.get(reverse("accounts:password_reset"))]
    sign_in(client, lead)
    pages += [client.get(reverse("frontend:home")), client.get(reverse("accounts:account")),
              client.get(reverse("accounts:api_my_keys")), client.get("/no-such-page/")]
    for response in pages:
        policy = permissions_policy(response)
        for feature in DENIED:
            assert policy.get(feature) == "()", (response.request["PATH_INFO"], feature)


# --- logs -------------------------------------------------------------------------------------------------


def nginx_blocks(text: str) -> list[tuple[str, list[str], list]]:
    """The shipped nginx file as nested (name, args, children) statements; enough of nginx's grammar here."""
    tokens = re.findall(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};'\"]+", re.sub(r"#[^\n]*", "", text))
    stack: list[list] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            block = (words[0], words[1:], [])
            stack[-1].append(block)
            stack.append(block[2])
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token.strip("'\""))
    assert len(stack) == 1 and not words
    return stack[0]


def test_it_has_nginx_log_paths_without_query_strings_for_every_server():
    top = nginx_blocks((BASE_DIR / "deploy/nginx/tac.conf").read_text())
    # The file is included in nginx's http block: log_format is allowed there and only there.
    formats = {args[0]: " ".join(args[1:]) for name, args, _ in top if name == "log_format"}
    assert set(formats) == {"tac"}
    for variable in ["$request", "$request_uri", "$args", "$query_string", "$arg_", "$http_referer"]:
        assert not re.search(re.escape(variable) + r"\b", formats["tac"]), variable
    assert "$uri" in formats["tac"]

    def statements(block):
        for name, args, children in block:
            yield name, args
            yield from statements(children)

    servers = [children for name, _, children in top if name == "server"]
    assert len(servers) == 2  # the redirect from port 80 logs too, and nginx's default format has the query
    for server in servers:
        logs = [args for name, args in statements(server) if name == "access_log"]
        assert logs, "a server without access_log uses nginx's default log, query strings included"
        assert all(args == ["off"] or args[1:] == ["tac"] for args in logs), logs
    assert all(name != "log_format" for server in servers for name, _ in statements(server))


def test_it_ships_daphne_without_an_access_log():
    """daphne's access log has the query string; with no --access-log it still writes one at verbosity 1."""
    unit = (BASE_DIR / "deploy/systemd/tac-daphne@.service").read_text()
    [exec_start] = re.findall(r"^ExecStart=(.*)$", unit, flags=re.M)
    assert "--access-log" not in exec_start
    assert re.search(r"(?:--verbosity|-v) 0\b", exec_start)
