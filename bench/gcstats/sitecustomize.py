"""Loaded by a server process `bench.run --gc-stats` starts (this folder is put first on its PYTHONPATH):
times every garbage collection in the process and, on SIGUSR1 (bench.run sends it around each
measurement) or at exit, appends one JSON line to $TAC_BENCH_GC_FILE (how many collections of each
generation since the last line, their total and the slowest) and starts counting afresh. Measurement only;
nothing here is imported by the application."""

import atexit
import gc
import json
import os
import signal
import time

_started: list[float] = []
_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}


def _timer(phase, info):
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        _pauses[info["generation"]].append((time.perf_counter() - _started.pop()) * 1000)


def _write():
    path = os.environ.get("TAC_BENCH_GC_FILE")
    if not path:
        return
    row = {"pid": os.getpid(), "at": round(time.time(), 1), "threshold": gc.get_threshold(),
           "frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}
    for gen, ms in _pauses.items():
        ms = sorted(ms)
        row[f"gen{gen}"] = {"n": len(ms), "total_ms": round(sum(ms), 1),
                            "max_ms": round(ms[-1], 1) if ms else 0, "slowest_ms": [round(x, 1) for x in ms[-5:]]}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


    for ms in _pauses.values():
        ms.clear()


if os.environ.get("TAC_BENCH_GC_THRESHOLD"):  # an experiment's thresholds, e.g. "50000,10,10"
    gc.set_threshold(*(int(x) for x in os.environ["TAC_BENCH_GC_THRESHOLD"].split(",")))
gc.callbacks.append(_timer)
atexit.register(_write)
signal.signal(signal.SIGUSR1, lambda signum, frame: _write())
