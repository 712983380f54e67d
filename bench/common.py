"""Environment shared by bench/setup.py and bench/run.py: a separate database and Redis index, light KDF."""

from __future__ import annotations

import base64
import json
import os
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("TAC_BENCH_STATE", "/tmp/tac_bench/state.json"))
DB_NAME = os.environ.get("TAC_BENCH_DB", "tac_bench")

BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "teamaroundchild.settings.dev",
    "DEBUG": "False",
    "ALLOWED_HOSTS": "127.0.0.1",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "REDIS_URL": os.environ.get("TAC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"),
    # Benchmark accounts only: the lowest Argon2id cost libsodium accepts (1 pass, 8 MiB), so 1,000
    # accounts seed in seconds. Sign-in is not measured, so this changes no measured figure.
    "TAC_KDF_OPSLIMIT": "1",
    "TAC_KDF_MEMLIMIT": "8388608",
    "LOG_LEVEL": "WARNING",
    # As production runs (settings/production.py): connections kept 60 s, checked before reuse.
    "CONN_MAX_AGE": "60",
    "CONN_HEALTH_CHECKS": "True",
    "SESSION_IDLE_SECONDS": "86400",
    # setup.py pins its custodian key here, never over the quick start's var/pins.
    "TAC_PIN_DIR": str(STATE.parent / "pins"),
}


def apply_env(channel_layer: str | None = None) -> dict:
    for k, v in BENCH_ENV.items():
        os.environ[k] = v  # override: these must never point at the dev or test database
    if channel_layer:
        os.environ["CHANNEL_LAYER"] = channel_layer
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return dict(os.environ)


def django_setup(channel_layer: str | None = None):
    apply_env(channel_layer)
    import django

    django.setup()


def raise_nofile(want: int = 20000) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def b64e(b: bytes) -> str:
    return base64.b64encode(bytes(b)).decode()


def b64d(s: str) -> bytes:
    return base64.b64decode(s)


def load_state() -> dict:
    return json.loads(STATE.read_text())


def save_state(state: dict) -> None:
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state))
    os.chmod(STATE, 0o600)
