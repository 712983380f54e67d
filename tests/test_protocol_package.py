"""One protocol package (tacprotocol/README.md): the server and the Python client import the same formats
and rules, the server imports nothing of the client (nor httpx, which only the client needs), the
protocol imports neither, and the browser's copies of the wire constants equal the package's."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tacprotocol import wire

ROOT = Path(__file__).resolve().parent.parent
SERVER = ("accounts", "audit", "messaging", "notifications", "oversight", "teamaroundchild", "frontend")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def modules_of(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules_of(*SERVER), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_server_module_imports_the_client(path):
    assert not imported_roots(path) & {"tacclient", "httpx", "websockets"}


@pytest.mark.parametrize("path", modules_of("tacprotocol"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_protocol_imports_neither_side(path):
    assert not imported_roots(path) & {"tacclient", "httpx", "websockets", "django", *SERVER}


def test_a_running_server_has_not_loaded_the_client():
    """Every server module imported, as daphne and manage.py would: neither tacclient nor httpx is loaded
    (an indirect import would show here, where the source scan above sees only direct ones)."""
    code = f"""
import importlib, pkgutil, sys
import django
django.setup()
for app in {SERVER!r}:
    package = importlib.import_module(app)
    for info in pkgutil.walk_packages(package.__path__, app + "."):
        if ".settings." in info.name and not info.name.endswith((".base", ".test")):
            continue
        importlib.import_module(info.name)
import teamaroundchild.asgi
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tacclient", "httpx")))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def js_constants(path: Path) -> dict[str, int]:
    """`export const NAME = <integer arithmetic>;` lines of a browser module, evaluated."""
    found = {}
    for name, expr in re.findall(r"^export const ([A-Z_]+) = ([0-9 *+]+);$", path.read_text(), re.MULTILINE):
        found[name] = eval(expr, {"__builtins__": {}})  # digits, spaces, * and + only (the pattern above)
    return found


def test_the_browser_holds_the_same_wire_constants():
    browser = js_constants(ROOT / "frontend/static/tac/workspace.js")
    names = ("EPOCH_MAX_POSTS", "EPOCH_MAX_AGE_MS", "CLOCK_SKEW_MS", "MAX_TEXT_CHARS", "MAX_TITLE_CHARS", "MAX_DUE_YEARS")
    assert {n: browser.get(n) for n in names} == {n: getattr(wire, n) for n in names}


def test_the_server_and_the_client_share_the_rules_not_copies():
    """The constants are the protocol's objects on both sides, not equal copies that could drift."""
    from messaging import schemas
    from messaging.services import checks, posts
    from oversight import selectors
    from tacclient import cli, client

    assert posts.CONTENT_KINDS is wire.CONTENT_KINDS and posts.EVENT_KINDS is wire.EVENT_KINDS
    assert checks.MAX_DUE_YEARS is wire.MAX_DUE_YEARS
    assert schemas.MAX_CIPHERTEXT_BYTES is wire.MAX_CIPHERTEXT_BYTES and schemas.MAX_MEMBERS is wire.MAX_MEMBERS
    assert selectors.RAGS is wire.RAGS and client.RAGS is wire.RAGS and cli.CONCERN_CATEGORIES is wire.CONCERN_CATEGORIES
