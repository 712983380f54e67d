"""`make test`: PostgreSQL and the Redis channel layer, as deployed. No fallback to SQLite or memory:
tests/conftest.py refuses to run if either service is missing."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from .base import *  # noqa: E402,F403

# Django hashes the 256-bit auth key the browser derives; a fast hasher keeps the suite quick and loses
# nothing here, since the Argon2id work happens before the key is sent.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tests create accounts through the same Python KDF as the browser; a light cost keeps them fast. The
# browser tests' accounts use whatever the account row says, so the browser runs the same cost.
TAC_KDF_OPSLIMIT = 1
TAC_KDF_MEMLIMIT = 8 * 1024 * 1024
TAC_EVENTS_ROUNDTRIP_JSON = True
# Each run writes its custodian pins in a directory of its own, served from disk as it changes (each test
# installs a fresh custodian key).
TAC_PIN_DIR = Path(tempfile.mkdtemp(prefix="tac-test-pins-"))
STATICFILES_DIRS = [("tac/pins", TAC_PIN_DIR)]
WHITENOISE_AUTOREFRESH = True

# Each test run talks on its own channel names, so two runs on one Redis (a developer's and CI's, or
# parallel suites) never hear each other's events. Forked test servers inherit the prefix.
if "CONFIG" in CHANNEL_LAYERS["default"]:  # noqa: F405
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"tac-test-{os.getpid()}"  # noqa: F405
