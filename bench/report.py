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


def _server(r: dict) -> str:
    workers = f" ×{r.get('workers', 1)}" if r.get("server") == "uvicorn" else ""
    return f"{r.get('server', 'daphne')}{workers}, {r['layer']}"


def _integrity(r: dict, got: str, want: str) -> str:
    return f"{r['lost']}/{r['duplicated']}/{r['reordered']} ({r[got]:,}/{r[want]:,})"


def _w6_row(r: dict) -> str:
    """W6 (bench/w6.py) in the same columns: no server and no integrity column; the client is the Django
    process running the page's queries, the server the PostgreSQL backend answering them."""
    if r["workload"] == "W6 floor":
        return (f"| W6 floor | in-process, PostgreSQL | `{r['what']}`, {r['phase']} the dashboard runs | "
                f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']}, p99 {r['p99_ms']} ({r['runs']:,} runs) | – | – | – |")
    who = (f"{r['viewers']} managers ({', '.join(r['agencies'])})" if r["viewer"] == "manager"
           else "a partnership lead (every workspace)")
    return (f"| W6 | in-process, PostgreSQL | dashboard page's queries for {who}, filters: {r['filters']}; "
            f"{r['workspaces']:,} workspaces, {r['posts']:,} posts, {r['actions']:,} actions | p50 {r['p50_ms']} ms, "
            f"p95 **{r['p95_ms']}**, p99 {r['p99_ms']}, max {r['max_ms']} ({r['runs']:,} runs); "
            f"{r['queries_per_page']} queries, {r['statements_reading_posts']} reading posts | – | "
            f"{r['client_cpu_s']} s | {r['postgres_cpu_s']} s |")


def markdown_row(r: dict) -> str:
    """One row of BENCHMARKS.md's results table."""
    if r["workload"].startswith("W6"):
        return _w6_row(r)
    w, cpu = r["workload"], f"{r['loadgen_cpu_s']} s"
    if w in ("W1", "W1 floor"):
        per = r["server_cpu_s"] / r["posts"] * 1000
        label, what = ("W1", "") if w == "W1" else (f"W1 floor ({r['phase']})",
                                                      "bench/floor.py: one durable INSERT and a group_send per post; ")
        return (f"| {label} | {_server(r)} | {what}{r['posts']:,} sequential posts, 1 every {r['interval_ms']:g} ms, "
                f"u0 → u1 | p50 **{r['p50_ms']} ms**, p95 {r['p95_ms']}, p99 **{r['p99_ms']}**, max {r['max_ms']} | "
                f"{_integrity(r, 'received_by_other', 'accepted')} | {cpu} | {r['server_cpu_s']} s ({per:.1f} ms/post) / "
                f"{r['server_rss_kib'] // 1024} MiB |")
    if w == "W2":
        return (f"| W2 | {_server(r)} | {r['members_connected']:,} members connected, {r['posts']} posts @ "
                f"{1000 / r['interval_ms']:g}/s | last member p50 **{r['last_member_p50_ms']} ms**, p99 "
                f"{r['last_member_p99_ms']} | {_integrity(r, 'deliveries', 'expected_deliveries')} | {cpu} | "
                f"{r['server_cpu_s']} s |")
    if w == "W3":
        ok = " ✓" if r["p99_ms"] < 50 else ""
        return (f"| W3 | {_server(r)} | {r['target_rate']} posts/s for {r['step_s']:g} s (achieved "
                f"{r['achieved_rate']}) | p50 {r['p50_ms']} ms, p99 **{r['p99_ms']}**{ok} | "
                f"{_integrity(r, 'deliveries', 'expected_deliveries')} | {cpu} | {r['server_cpu_s']} s |")
    if w == "W4":
        return (f"| W4 | {_server(r)} | {r['sockets']:,} idle authenticated sockets | **{r['kib_per_socket']} "
                f"KiB/socket** ({r['rss_before_kib'] // 1024} → {r['rss_after_kib'] // 1024} MiB; all connected in "
                f"{r['connect_all_s']} s) | – | {cpu} | – |")
    if w == "W5":
        return (f"| W5 | {_server(r)} | {r['clients']:,} members reconnect (100 at a time) after {r['missed_each']} "
                f"missed posts each | all caught up in **{r['all_caught_up_s']} s** (p50 client {r['p50_client_s']} s, "
                f"p99 {r['p99_client_s']} s); {r['reconnect_failures']} failures | "
                f"{_integrity(r, 'received', 'expected')} | {cpu} | {r['server_cpu_s']} s / "
                f"{r['server_rss_kib'] // 1024} MiB |")
    return json.dumps(r)


def main():
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    # BENCHMARKS.md's prose is written by hand from these rows (it explains saturation and failures);
    # this prints the table rows, in workload order, and the machine/version lines to paste.
    for r in sorted(rows, key=lambda r: r["workload"]):
        print(markdown_row(r))
    print("\n".join(machine()))


if __name__ == "__main__":
    main()
