"""Deployment settings: `check --deploy` is clean with production settings, cookies are Secure, HTTPS is
enforced, and every page runs under a CSP with no inline script or style ('wasm-unsafe-eval' for
libsodium is the only loosening)."""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.conftest import sign_in

BASE_DIR = Path(__file__).resolve().parent.parent


def production_env(**extra: str) -> dict[str, str]:
    """Only what the production settings need: nothing from the test run (DEBUG, test settings) leaks in."""
    alphabet = string.ascii_letters + string.digits + "-_!@#%^&*"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.production",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "ALLOWED_HOSTS": "tac.example.org",
    }
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def run_python(code: str, env: dict[str, str]) -> dict:
    result = run(["-c", "import django, json; django.setup()\n" + code], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- check --deploy ---------------------------------------------------------------------------------------


def test_it_passes_the_deploy_checks_with_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_it_fails_the_deploy_checks_with_a_weak_secret_key():
    """The check above can fail: a weak key is reported (security.W009) and fails the run."""
    env = production_env(SECRET_KEY="django-insecure-" + "a" * 50)
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 1
    assert "security.W009" in result.stderr + result.stdout


# --- production settings values ---------------------------------------------------------------------------


def test_it_uses_secure_cookies_and_https_in_production():
    values = run_python(
        "from django.conf import settings as s\n"
        "print(json.dumps({k: getattr(s, k) for k in ["
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
        "'SESSION_COOKIE_NAME', 'CSRF_COOKIE_NAME', 'SESSION_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER', "
        "'SESSION_COOKIE_AGE', 'SESSION_SAVE_EVERY_REQUEST', 'SESSION_EXPIRE_AT_BROWSER_CLOSE', "
        "'ALLOWED_HOSTS', 'X_FRAME_OPTIONS']}))",
        production_env(),
    )
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    # __Host- cookies: Secure, no Domain, Path=/ enforced by the browser itself.
    assert values["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert values["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_AGE"] == 1800
    assert values["SESSION_SAVE_EVERY_REQUEST"] is True
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert values["ALLOWED_HOSTS"] == ["tac.example.org"]
    assert values["X_FRAME_OPTIONS"] == "DENY"


@pytest.mark.parametrize(("setting", "threshold"), [(None, 5), ("False", None)])
def test_it_prepares_postgresql_statements_unless_told_not_to(setting, threshold):
    """Prepared statements (planning once per connection) are on by default; a pooler in transaction mode
    needs them off (deploy/README.md)."""
    extra = {"DB_PREPARED_STATEMENTS": setting} if setting else {}
    values = run_python(
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "print(json.dumps({'options': connection.settings_dict['OPTIONS'],"
        " 'threshold': connection.connection.prepare_threshold,"
        " 'cursor': type(connection.connection.cursor()).__name__}))",
        production_env(**extra),
    )
    assert values["options"]["server_side_binding"] is True
    assert values["threshold"] == threshold
    assert values["cursor"] == "ServerBindingCursor"


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory) -> Path:
    """collectstatic with the production storage (hashed names, a manifest), as deploy/ does."""
    root = tmp_path_factory.mktemp("static")
    result = run(["manage.py", "collectstatic", "--noinput"], production_env(STATIC_ROOT=str(root)))
    assert result.returncode == 0, result.stderr
    return root


def test_it_serves_the_sign_in_page_over_https_only_in_production(collected_static):
    """The real page with production settings: HTTPS redirect, HSTS, a Secure __Host- CSRF cookie, the
    strict CSP, and static files that exist in the manifest (a missing one would be a 500 here)."""
    answer = run_python(
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='tac.example.org')\n"
        "plain = c.get('/accounts/sign-in/')\n"
        "page = c.get('/accounts/sign-in/', secure=True)\n"
        "cookie = page.cookies.get('__Host-csrftoken')\n"
        "print(json.dumps({'plain': [plain.status_code, plain.get('Location')],"
        " 'status': page.status_code, 'hsts': page.get('Strict-Transport-Security'),"
        " 'csp': page.get('Content-Security-Policy'),"
        " 'cookie': cookie and {'secure': cookie['secure'], 'samesite': cookie['samesite'], 'path': cookie['path'],"
        " 'domain': cookie['domain']}, 'html': page.content.decode()}))",
        production_env(STATIC_ROOT=str(collected_static)),
    )
    assert answer["plain"] == [301, "https://tac.example.org/accounts/sign-in/"]
    assert answer["status"] == 200
    assert "max-age=63072000" in answer["hsts"] and "includeSubDomains" in answer["hsts"]
    assert answer["cookie"] == {"secure": True, "samesite": "Lax", "path": "/", "domain": ""}
    assert_strict_csp(answer["csp"])
    # Hashed static names from the manifest, served from our own origin.
    assert re.search(r'src="/static/tac/signin\.[0-9a-f]{12}\.js"', answer["html"])
    assert_no_inline_code(answer["html"])


# --- the CSP, in the test settings (the same base settings) ------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_strict_csp(header: str) -> None:
    assert header
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header
    assert "*" not in header
    directives = csp_directives(header)
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]


def assert_no_inline_code(html: str) -> None:
    """What the CSP would block: inline scripts, inline styles, event handler attributes."""
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.django_db
def test_it_sends_a_strict_csp_on_the_sign_in_page(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert_strict_csp(response["Content-Security-Policy"])
    assert_no_inline_code(response.content.decode())
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_it_has_no_inline_code_on_any_page(client, lead, make_persona):
    pages = [reverse("accounts:password_reset")]
    for url in pages:
        response = client.get(url)
        assert_strict_csp(response["Content-Security-Policy"])
        assert_no_inline_code(response.content.decode())
    newcomer = make_persona("newcomer@csc.example", with_totp=False)
    sign_in(client, newcomer, verify=False)
    response = client.get(reverse("accounts:two_factor_enrol"))
    assert response.status_code == 200
    assert_no_inline_code(response.content.decode())
    client.post(reverse("accounts:logout"))
    sign_in(client, lead)
    for name in ["frontend:home", "accounts:account", "accounts:password_change", "accounts:agency",
                 "accounts:agency_invite", "accounts:reverify"]:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert_strict_csp(response["Content-Security-Policy"])
        assert_no_inline_code(response.content.decode())
