"""Checks on the pinned, vendored front-end files (see frontend/vendor/README.md).

Offline: nothing here runs npm. Regenerate with `python frontend/vendor/refresh.py`.
"""

import hashlib
import importlib.util
import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDOR_DIR = REPO_ROOT / "frontend" / "vendor"
MANIFEST = json.loads((VENDOR_DIR / "MANIFEST.json").read_text(encoding="utf-8"))
GOVUK_CSS = REPO_ROOT / "frontend/static/vendor/govuk-frontend/govuk-frontend.min.css"
SODIUM_WRAPPERS = REPO_ROOT / "frontend/static/vendor/libsodium/libsodium-wrappers.mjs"
SODIUM_SUMO = REPO_ROOT / "frontend/static/vendor/libsodium/libsodium-sumo.mjs"


def _load_refresh():
    spec = importlib.util.spec_from_file_location("tac_vendor_refresh", VENDOR_DIR / "refresh.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_it_lists_every_expected_output_in_the_manifest():
    paths = {entry["path"] for entry in MANIFEST["files"]}
    assert {
        "frontend/static/vendor/libsodium/libsodium-wrappers.mjs",
        "frontend/static/vendor/libsodium/libsodium-sumo.mjs",
        "frontend/static/vendor/govuk-frontend/govuk-frontend.min.css",
        "frontend/static/vendor/govuk-frontend/govuk-frontend.min.js",
        "tests/browser/vendor/axe.min.js",
    } <= paths


def test_it_has_every_manifest_file_with_matching_sha256():
    for entry in MANIFEST["files"]:
        path = REPO_ROOT / entry["path"]
        assert path.is_file(), f"{entry['path']} is missing"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{entry['path']} does not match MANIFEST.json; rerun refresh.py"


def test_it_pins_the_same_versions_in_manifest_and_refresh_script():
    refresh = _load_refresh()
    assert MANIFEST["packages"] == refresh.PACKAGES
    assert MANIFEST["build_tools"]["sass"] == refresh.SASS_VERSION
    for entry in MANIFEST["files"]:
        assert entry["version"] == refresh.PACKAGES[entry["package"]], entry["path"]


def test_it_passes_the_refresh_scripts_offline_check():
    assert _load_refresh().check() == []


def test_it_builds_govuk_css_without_gds_transport_or_font_face():
    css = GOVUK_CSS.read_text(encoding="utf-8")
    assert not re.search(r"gds\s*transport", css, re.IGNORECASE)
    assert "@font-face" not in css.lower()
    assert "system-ui" in css


def test_it_builds_govuk_css_referencing_only_vendored_images():
    css = GOVUK_CSS.read_text(encoding="utf-8")
    assert "govuk-crest" not in css
    assert not re.search(r"\.woff2?\b", css)
    for url in re.findall(r"""url\(\s*["']?([^"')]+)""", css):
        if url.startswith("data:"):
            continue
        assert url.startswith("/static/vendor/govuk-frontend/assets/images/"), url
        assert (REPO_ROOT / "frontend" / url.removeprefix("/")).is_file(), url


def test_it_imports_libsodium_sumo_relatively_not_by_bare_specifier():
    wrappers = SODIUM_WRAPPERS.read_text(encoding="utf-8")
    assert not re.search(r"""from\s*["']libsodium-sumo["']""", wrappers)
    assert not re.search(r"""import\s*\(\s*["']libsodium-sumo["']""", wrappers)
    assert re.search(r"""from\s*["']\./libsodium-sumo\.mjs["']""", wrappers)


def test_it_ships_libsodium_with_embedded_wasm_and_sumo_pwhash():
    sumo = SODIUM_SUMO.read_text(encoding="utf-8")
    wrappers = SODIUM_WRAPPERS.read_text(encoding="utf-8")
    assert not re.search(r"""["'][^"']*\.wasm["']""", sumo)
    assert "export default" in sumo
    assert '"crypto_pwhash"' in wrappers
