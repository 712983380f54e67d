"""Which code may depend on which (messaging/README.md, "Code"; issue 11, item 2), checked on the source:
accounts imports no app built on it (offboarding and sign-outs are signals messaging answers), a selector
never imports a service, and every hand-written statement lives in its app's storage module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "audit", "messaging", "notifications", "oversight", "frontend", "demo", "teamaroundchild")
# The helpers that run a hand-written statement (teamaroundchild/sql.py) and the DB-API call under them.
STATEMENT_CALLS = {"fetch_one", "fetch_all", "insert", "update", "execute", "executemany", "raw"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved (`from . import x` counts as package.x)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def test_accounts_imports_no_app_built_on_it():
    later = ("messaging", "notifications", "oversight", "frontend", "demo")
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] in later)
                 for p in sources("accounts")}
    assert {path: mods for path, mods in offenders.items() if mods} == {}


@pytest.mark.parametrize("reader", ["messaging/selectors.py", "messaging/payloads.py", "messaging/storage.py",
                                    "messaging/access.py"])
def test_reads_do_not_import_writes(reader):
    assert not {m for m in imported_modules(ROOT / reader) if m == "messaging.services" or
                m.startswith("messaging.services.")}


def test_every_hand_written_statement_is_in_a_storage_module():
    allowed = {"teamaroundchild/sql.py"} | {str(p.relative_to(ROOT)) for p in ROOT.glob("*/storage.py")}
    found = []
    for path in sources(*APPS):
        if str(path.relative_to(ROOT)) in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in STATEMENT_CALLS and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("sql", "cursor", "connection")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.value.id}.{node.func.attr}")
    assert found == []


def test_the_checks_can_fail():
    """The scanner sees a relative import and a statement call (so the tests above are not vacuous)."""
    tree = imported_modules(ROOT / "messaging/services/posts.py")
    assert "messaging.storage" in tree and "messaging.payloads.post_payload_from_row" in tree
    assert "messaging.events" in imported_modules(ROOT / "messaging/handlers.py")
