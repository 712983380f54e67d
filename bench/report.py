"""Print the raw rows of /tmp/tac_bench/results.jsonl and the machine / versions lines for BENCHMARKS.md
(`python -m bench.report`)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

from .common import ROOT

RESULTS = Path(os.environ.get("TAC_BENCH_RESULTS", "/tmp/tac_bench/results.jsonl"))


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"? ({exc})"


def machine() -> list[str]:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    py = ROOT / ".venv/bin/python"
    PG = sh("psql -h 127.0.0.1 -U postgres -tA -c 'select version()'").split(" on ")[0]
    vers = sh(f"{py} -c \"import django,channels,channels_redis,daphne,websockets,nacl;"
              f"from importlib.metadata import version;"
              f"print(django.__version__,channels.__version__,channels_redis.__version__,daphne.__version__,"
              f"websockets.__version__,nacl.__version__,version('uvicorn'),version('redis'),version('psycopg'))\"").split()
    return [
        f"- Machine: {sh('nproc')} CPUs ({cpu.group(1) if cpu else '?'}), {int(mem.group(1)) // 1024} MiB RAM, "
        f"{platform.system()} {platform.release()}; server and load generator share the CPUs.",
        f"- Versions: Python {sh(f'{py} -V').split()[-1]}, Django {vers[0]}, Channels {vers[1]}, "
        f"channels-redis {vers[2]} (redis-py {vers[7]}), daphne {vers[3]}, uvicorn {vers[6]}, websockets {vers[4]}, "
        f"psycopg {vers[8]}, PyNaCl {vers[5]}, "
        f"{sh('redis-server --version').split(' sha=')[0]}, "
        f"{PG}.",
        f"- Tree: {sh(f'git -C {ROOT} rev-parse --short HEAD')}"
        f"{' (with uncommitted changes)' if sh(f'git -C {ROOT} status --short') else ''}.",
    ]


def main():
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    # BENCHMARKS.md is written by hand from these rows (it explains saturation and failures); this
    # prints the raw rows and the machine/version lines to paste.
    for r in rows:
        print(json.dumps(r))
    print("\n".join(machine()))


if __name__ == "__main__":
    main()
