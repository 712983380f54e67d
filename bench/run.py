"""Run the live-path workloads against the ASGI app under daphne or uvicorn: `python -m bench.run w1 w4`.

One asyncio process drives every client socket (the `websockets` library directly, same frames as
tacclient.client.LiveSocket). Posts are sealed with tacprotocol.crypto just before each workload, with
client_time_ms = the intended send time; sending is open-loop (on a fixed schedule) and latency is
measured from the intended send time to the receipt of post.created."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid

from .common import ROOT, apply_env, b64d, django_setup, load_state, raise_nofile

GC_FILE = "/tmp/tac_bench/gc.jsonl"

RESULTS: list[dict] = []


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(x):
    return round(x * 1000, 2)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def services_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (name, CPU seconds so far) of PostgreSQL's and Redis's processes on this machine (nothing else
    may use them during a run). Beside the server's CPU, so work moved into the database shows."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            if name in ("postgres", "redis-server"):
                out[int(pid)] = (name, cpu_of(int(pid)))
        except OSError:
            pass  # gone meanwhile
    return out


def services_used(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU used since `before` by the processes alive now (one that exited in between is not counted: the
    server's database connections live throughout a workload)."""
    used = {"postgres": 0.0, "redis-server": 0.0}
    for pid, (name, cpu) in services_cpu().items():
        was = before.get(pid)
        used[name] += cpu - (was[1] if was and was[0] == name else 0.0)
    return {"db_cpu_s": round(used["postgres"], 2), "redis_cpu_s": round(used["redis-server"], 2)}


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (uvicorn --workers N runs its workers as children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


class Server:
    """The ASGI application under daphne (one process, as deploy/ runs it per systemd unit) or uvicorn
    (`--workers N` processes on one port): the app is the same teamaroundchild.asgi:application."""

    def __init__(self, layer: str, kind: str = "daphne", workers: int = 1, gc_stats: bool = False):
        self.layer, self.kind, self.workers, self.gc_stats = layer, kind, workers, gc_stats
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = apply_env(layer)
        env["CHANNEL_LAYER"] = layer
        subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=True, capture_output=True)
        if gc_stats:  # bench/gcstats/sitecustomize.py times the server's garbage collections
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench" / "gcstats"), env.get("PYTHONPATH", "")])
            env["TAC_BENCH_GC_FILE"] = GC_FILE
        app = "teamaroundchild.asgi:application"
        if kind == "floor":  # the durable floor (bench/floor.py) under daphne, as the application
            app, kind = "bench.floor:application", "daphne"
        if kind == "daphne":
            if workers != 1:
                raise SystemExit("daphne runs one process per port; use --server uvicorn for --workers")
            cmd = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(self.port), app]
        else:
            # No per-message deflate: daphne does not offer it either, and it is CPU for ciphertext that
            # hardly compresses. A longer receive queue than uvicorn's 32 messages, and a keepalive of
            # 120 s instead of 20 s: in W5's write phase each lead sends 50 posts at once, about 25 s of
            # work queued per worker, and uvicorn closed those sockets with "1011 keepalive ping timeout"
            # (daphne queues without limit and allows 30 s). W5 measures the reconnect after that phase.
            cmd = [str(ROOT / ".venv/bin/uvicorn"), app, "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), "--no-access-log", "--log-level", "warning",
                   "--ws", "websockets-sansio", "--ws-per-message-deflate", "false", "--ws-max-queue", "1024",
                   "--ws-ping-interval", "120", "--ws-ping-timeout", "120",
                   "--lifespan", "off"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=open("/tmp/tac_bench/server.log", "a"), stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the server exited; see /tmp/tac_bench/server.log") from None
                time.sleep(0.2)
        else:
            raise RuntimeError("the server did not listen within 60 s")
        time.sleep(1 if workers == 1 else 3)  # every worker up

    def cpu(self) -> float:
        return sum(cpu_of(p) for p in process_tree(self.proc.pid))

    def rss(self) -> int:
        return sum(rss_kib(p) for p in process_tree(self.proc.pid))

    def gc_since_last(self) -> dict | None:
        """The server processes' garbage collections since the last call (None without --gc-stats): each
        process appends a line to GC_FILE on SIGUSR1 and starts counting afresh."""
        if not self.gc_stats:
            return None
        start = os.path.getsize(GC_FILE) if os.path.exists(GC_FILE) else 0
        pids = process_tree(self.proc.pid)
        for pid in pids:
            os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with open(GC_FILE) as f:
                f.seek(start)
                rows = [json.loads(line) for line in f if line.strip()]
            if len(rows) >= len(pids):
                break
        out = {"processes": len(rows), "tracked": [r["tracked"] for r in rows]}
        for gen in ("gen0", "gen1", "gen2"):
            out[gen] = {"n": sum(r[gen]["n"] for r in rows), "total_ms": round(sum(r[gen]["total_ms"] for r in rows), 1),
                        "max_ms": max((r[gen]["max_ms"] for r in rows), default=0)}
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_sessions(state: dict, idxs) -> dict[int, str]:
    """Django sessions written straight to the DB, as a completed password + TOTP sign-in leaves them.
    This skips only the interactive sign-in; the socket still runs every check (Origin, session, auth
    hash, session generation, confirmed 2FA device, membership)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Professional
    from accounts.services import SESSION_GENERATION_KEY

    pks = [state["users"][i]["pk"] for i in idxs]
    users = {u.pk: u for u in Professional.objects.filter(pk__in=pks)}
    devices = {d.user_id: d for d in TOTPDevice.objects.filter(user_id__in=pks, confirmed=True)}
    out = {}
    for i in idxs:
        u = users[state["users"][i]["pk"]]
        s = SessionStore()
        s[SESSION_KEY] = str(u.pk)
        s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        s[HASH_SESSION_KEY] = u.get_session_auth_hash()
        s[DEVICE_ID_SESSION_KEY] = devices[u.pk].persistent_id
        s[SESSION_GENERATION_KEY] = u.session_generation
        s.create()
        out[i] = s.session_key
    return out


class Sock:
    """One member's socket. Records (workspace, seq, post_id, t_recv) of every post received (post.created or posts)."""

    def __init__(self, idx, conn, bench):
        self.idx, self.conn, self.bench = idx, conn, bench
        self.waiters: dict[str, asyncio.Future] = {}
        self.seqs: dict[str, list[int]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.errors: list[dict] = []
        self.closed: Exception | None = None

    async def _read(self):
        from websockets.exceptions import ConnectionClosed
        try:
            async for text in self.conn:
                t = time.perf_counter()
                f = json.loads(text)
                typ = f.get("type")
                if typ == "post.created":
                    p = f["post"]
                    self.seqs.setdefault(f["workspace"], []).append(p["seq"])
                    self.bench.on_post(self, f["workspace"], p, t)
                elif typ == "posts":
                    seqs = self.seqs.setdefault(f["workspace"], [])
                    for p in f["posts"]:
                        seqs.append(p["seq"])
                        self.bench.on_post(self, f["workspace"], p, t)
                elif typ in ("subscribed", "post.accepted", "error", "pong"):
                    if typ == "error":
                        self.errors.append(f)
                    fut = self.waiters.pop(str(f.get("id")), None)
                    if fut and not fut.done():
                        fut.set_result(f)
        except ConnectionClosed as exc:
            # Nothing waits forever on a socket the server closed: the workload reports the failure.
            self.closed = exc
            for fut in self.waiters.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(f"socket {self.idx} closed by the server: {exc}"))

    async def request(self, frame, timeout=60):
        fid = frame.setdefault("id", uuid.uuid4().hex)
        fut = asyncio.get_running_loop().create_future()
        self.waiters[fid] = fut
        await self.conn.send(json.dumps(frame))
        return await asyncio.wait_for(fut, timeout)

    async def subscribe(self, ws_id, after=0):
        return await self.request({"type": "subscribe", "workspace": ws_id, "after_seq": after}, timeout=120)

    async def close(self):
        await self.conn.close()
        self.reader.cancel()


class Bench:
    def __init__(self, state, server: Server, sessions):
        self.state, self.server, self.sessions = state, server, sessions
        self.intended: dict[str, float] = {}   # post_id -> intended send time (perf_counter)
        self.lat: list[float] = []
        self.last_recv: dict[str, float] = {}
        self.recv_count = 0

    def on_post(self, sock, ws, post, t):
        t0 = self.intended.get(post["post_id"])
        if t0 is not None:
            self.lat.append(t - t0)
            self.recv_count += 1
            if t > self.last_recv.get(post["post_id"], 0):
                self.last_recv[post["post_id"]] = t

    def reset(self):
        self.intended.clear()
        self.lat = []
        self.last_recv = {}
        self.recv_count = 0

    async def connect(self, idx) -> Sock:
        from websockets.asyncio.client import connect
        conn = await connect(f"ws://127.0.0.1:{self.server.port}/ws/", origin=f"http://127.0.0.1:{self.server.port}",
                             additional_headers={"Cookie": f"sessionid={self.sessions[idx]}"},
                             open_timeout=120, max_size=8 * 1024 * 1024, ping_interval=None, max_queue=None)
        hello = json.loads(await asyncio.wait_for(conn.recv(), 120))
        assert hello["type"] == "hello", hello
        return Sock(idx, conn, self)

    async def connect_many(self, idxs, concurrency=50) -> dict[int, Sock]:
        sem = asyncio.Semaphore(concurrency)

        async def one(i):
            async with sem:
                return i, await self.connect(i)
        return dict(await asyncio.gather(*(one(i) for i in idxs)))

    def seal(self, ws_name: str, author: int, n: int, t_first_wall: float, interval: float) -> list[dict]:
        """n post.create frames for ws_name by user `author`, client_time_ms = intended send times."""
        from tacprotocol import crypto
        from tacprotocol.workspace import seal_post
        ws = self.state["workspaces"][ws_name]
        u = self.state["users"][author]
        ident = crypto.Identity(sign_seed=b64d(u["sign_seed"]), box_secret=b64d(u["box_secret"]))
        key = b64d(ws["epoch_key"])
        frames = []
        for k in range(n):
            p = seal_post(identity=ident, author_id=uuid.UUID(u["id"]), workspace_id=uuid.UUID(ws["id"]),
                          epoch=ws["epoch"], epoch_key=key, kind="update",
                          body={"text": f"bench post {k} " + "x" * 200},
                          client_time_ms=int((t_first_wall + k * interval) * 1000))
            post_id = p.pop("post_id")
            frames.append({"type": "post.create", "id": post_id, "workspace": ws["id"], "post": p})
        return frames

    async def send_schedule(self, plan: list[tuple[float, Sock, dict]], deadline_s: float):
        """Open loop: each frame goes at its intended time (perf_counter), however the server is doing.
        Returns the post.accepted frames (in send order)."""
        accepted = []

        async def send(t0, sock, frame):
            self.intended[frame["id"]] = t0
            accepted.append(await sock.request(frame, timeout=deadline_s))

        tasks = []
        for t0, sock, frame in plan:
            delay = t0 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(t0, sock, frame)))
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), deadline_s)
        return [a for a in accepted if isinstance(a, dict)]

    async def wait_received(self, expected: int, timeout: float):
        end = time.perf_counter() + timeout
        while self.recv_count < expected and time.perf_counter() < end:
            await asyncio.sleep(0.05)


def check_seqs(socks, ws_ids_of, start_of, expected_n) -> dict:
    """Each (socket, workspace) got exactly seqs start+1..start+n, in order: lost / duplicated / reordered."""
    lost = dup = reord = 0
    for s in socks:
        for ws in ws_ids_of(s):
            got = [q for q in s.seqs.get(ws, []) if q > start_of(ws)]
            want = list(range(start_of(ws) + 1, start_of(ws) + 1 + expected_n(ws)))
            dup += len(got) - len(set(got))
            lost += len(set(want) - set(got))
            reord += sum(1 for a, b in zip(got, got[1:], strict=False) if b <= a)
    return {"lost": lost, "duplicated": dup, "reordered": reord}


async def w1(b: Bench, layer: str, n: int, interval: float):
    ws = b.state["workspaces"]["pair"]
    socks = await b.connect_many([0, 1])
    subs = [await socks[i].subscribe(ws["id"]) for i in (0, 1)]
    start = subs[0]["last_seq"]
    for s in socks.values():
        s.seqs.clear()
    b.reset()
    t_wall = time.time() + 1.0
    frames = b.seal("pair", 0, n, t_wall, interval)  # sealed before the clock starts
    t_perf = time.perf_counter() + max(0.2, t_wall - time.time())
    cpu0, scpu0 = cpu_self(), b.server.cpu()
    plan = [(t_perf + k * interval, socks[0], f) for k, f in enumerate(frames)]
    acc = await b.send_schedule(plan, deadline_s=n * interval + 60)
    await b.wait_received(2 * n, 30)
    wall = time.perf_counter() - t_perf
    cpu1, scpu1 = cpu_self(), b.server.cpu()
    # latency = receipt by the *other* member (u1), from w1_lat below
    chk = check_seqs([socks[1], socks[0]], lambda s: [ws["id"]], lambda w: start, lambda w: n)
    res = {"workload": "W1", "layer": layer, "posts": n, "interval_ms": interval * 1000,
           "accepted": sum(1 for a in acc if a.get("type") == "post.accepted"),
           "errors": sum(1 for a in acc if a.get("type") == "error"),
           "received_by_other": sum(1 for q in socks[1].seqs.get(ws["id"], []) if q > start),
           **chk, "loadgen_cpu_s": round(cpu1 - cpu0, 2), "server_cpu_s": round(scpu1 - scpu0, 2),
           "wall_s": round(wall, 1), "server_rss_kib": b.server.rss()}
    res.update(b.w1_lat(socks[1]))
    for s in socks.values():
        await s.close()
    return res


def _install_w1_latency(b: Bench):
    per_sock: dict[int, list[float]] = {}
    orig = b.on_post

    def on_post(sock, ws, post, t):
        t0 = b.intended.get(post["post_id"])
        if t0 is not None:
            per_sock.setdefault(sock.idx, []).append(t - t0)
        orig(sock, ws, post, t)
    b.on_post = on_post

    def w1_lat(sock):
        v = per_sock.get(sock.idx, [])
        per_sock.clear()
        return {"p50_ms": ms(pct(v, 50)), "p95_ms": ms(pct(v, 95)), "p99_ms": ms(pct(v, 99)), "max_ms": ms(max(v) if v else 0)}
    b.w1_lat = w1_lat


async def w4(b: Bench, n: int):
    await asyncio.sleep(1)
    rss0 = b.server.rss()
    cpu0 = cpu_self()
    t0 = time.perf_counter()
    socks = await b.connect_many(range(n))
    t_conn = time.perf_counter() - t0
    await asyncio.sleep(3)
    rss1 = b.server.rss()
    res = {"workload": "W4", "layer": b.server.layer, "sockets": len(socks), "rss_before_kib": rss0,
           "rss_after_kib": rss1, "kib_per_socket": round((rss1 - rss0) / n, 1), "connect_all_s": round(t_conn, 1),
           "loadgen_cpu_s": round(cpu_self() - cpu0, 2)}
    return res, socks


async def w2(b: Bench, socks: dict[int, Sock], sizes, posts: int, interval: float):
    ws = b.state["workspaces"]["big"]
    out = []
    subscribed: set[int] = set()
    for size in sizes:
        idxs = list(range(size))
        new = [i for i in idxs if i not in subscribed]
        sem = asyncio.Semaphore(50)

        async def sub(i):
            async with sem:
                return await socks[i].subscribe(ws["id"], after=now)  # no backlog, live only
        now = (await last_seqs([ws["pk"]]))[ws["pk"]]
        await asyncio.gather(*(sub(i) for i in new))
        subscribed.update(new)
        b.reset()
        for i in idxs:
            socks[i].seqs.clear()
        t_wall = time.time() + 0.5
        frames = b.seal("big", 0, posts, t_wall, interval)
        t_perf = time.perf_counter() + max(0.2, t_wall - time.time())
        cpu0, scpu0 = cpu_self(), b.server.cpu()
        acc = await b.send_schedule([(t_perf + k * interval, socks[0], f) for k, f in enumerate(frames)],
                                    deadline_s=posts * interval + 120)
        await b.wait_received(size * posts, 120)
        seqs = sorted(a["seq"] for a in acc if a.get("type") == "post.accepted")
        start = seqs[0] - 1 if seqs else 0
        last_lat = [b.last_recv[f["id"]] - b.intended[f["id"]] for f in frames if f["id"] in b.last_recv]
        chk = check_seqs([socks[i] for i in idxs], lambda s: [ws["id"]], lambda w: start, lambda w: posts)
        out.append({"workload": "W2", "layer": b.server.layer, "members_connected": size, "posts": posts,
                    "interval_ms": interval * 1000, "accepted": len(seqs), "deliveries": b.recv_count,
                    "expected_deliveries": size * posts, **chk,
                    "last_member_p50_ms": ms(pct(last_lat, 50)), "last_member_p99_ms": ms(pct(last_lat, 99)),
                    "all_delivery_p50_ms": ms(pct(b.lat, 50)), "all_delivery_p99_ms": ms(pct(b.lat, 99)),
                    "loadgen_cpu_s": round(cpu_self() - cpu0, 2),
                    "server_cpu_s": round(b.server.cpu() - scpu0, 2),
                    "server_rss_kib": b.server.rss()})
        print(json.dumps(out[-1]), flush=True)
    # leave "big"
    for i in subscribed:
        await socks[i].conn.send(json.dumps({"type": "unsubscribe", "workspace": ws["id"]}))
    await asyncio.sleep(2)
    return out


async def last_seqs(pks) -> dict[int, int]:
    """Current last_seq of workspaces (to subscribe live-only: after_seq = now)."""
    def q():
        from django.db import connection

        from messaging.models import Workspace
        try:
            return dict(Workspace.objects.filter(pk__in=list(pks)).values_list("pk", "last_seq"))
        finally:
            connection.close()
    return await asyncio.to_thread(q)


def group_names(state):
    return sorted((k for k in state["workspaces"] if k.startswith("g")), key=lambda k: int(k[1:]))


async def subscribe_groups(b: Bench, socks, after_of=None) -> dict[str, int]:
    """Every member subscribes to its group workspace; returns last_seq per workspace id."""
    last = {}
    sem = asyncio.Semaphore(50)
    names = group_names(b.state)
    now = await last_seqs([b.state["workspaces"][nm]["pk"] for nm in names])

    async def sub(i, ws):
        async with sem:
            r = await socks[i].subscribe(ws["id"], after=(after_of(ws["id"]) if after_of else now[ws["pk"]]))
            last[ws["id"]] = max(last.get(ws["id"], 0), r["last_seq"])
    tasks = []
    for name in group_names(b.state):
        ws = b.state["workspaces"][name]
        tasks += [sub(i, ws) for i in ws["members"] if i in socks]
    await asyncio.gather(*tasks)
    return last


async def w3(b: Bench, socks, rates, step_s: float):
    names = group_names(b.state)
    await subscribe_groups(b, socks)
    out = []
    for rate in rates:
        n = int(rate * step_s)
        interval = 1.0 / rate
        b.reset()
        for s in socks.values():
            s.seqs.clear()
        b.server.gc_since_last()  # counting from here (with --gc-stats)
        t_wall, t_perf = time.time() + 1.0, time.perf_counter() + 1.0
        # post k goes to workspace k % W, written by its lead
        per_ws = {nm: [] for nm in names}
        for k in range(n):
            per_ws[names[k % len(names)]].append(k)
        plan = []
        for nm, ks in per_ws.items():
            ws = b.state["workspaces"][nm]
            fr = b.seal(nm, ws["lead"], len(ks), t_wall, 0)
            for k, f in zip(ks, fr, strict=True):
                f["post"]  # client_time within the step; server checks only +-10 min
                plan.append((t_perf + k * interval, socks[ws["lead"]], f))
        plan.sort(key=lambda x: x[0])
        shift = time.perf_counter() + 0.2 - t_perf  # sealing took this long: start the schedule after it
        if shift > 0:
            plan = [(t + shift, so, f) for t, so, f in plan]
        cpu0, scpu0, services0 = cpu_self(), b.server.cpu(), services_cpu()
        acc = await b.send_schedule(plan, deadline_s=step_s + 120)
        members = len(b.state["workspaces"][names[0]]["members"])
        await b.wait_received(n * members, 60)
        wall = time.perf_counter() - t_perf
        accepted = [a for a in acc if a.get("type") == "post.accepted"]
        first = {}
        for a in accepted:
            first[a["workspace"]] = min(first.get(a["workspace"], 10**12), a["seq"])
        counts = {}
        for a in accepted:
            counts[a["workspace"]] = counts.get(a["workspace"], 0) + 1
        chk = check_seqs(list(socks.values()), lambda s: [w for w in s.seqs], lambda w: first.get(w, 1) - 1,
                         lambda w: counts.get(w, 0))
        row = {"workload": "W3", "layer": b.server.layer, "target_rate": rate, "posts": n, "step_s": step_s,
               "accepted": len(accepted), "errors": len(acc) - len(accepted), "deliveries": b.recv_count,
               "expected_deliveries": n * members, **chk,
               "achieved_rate": round(len(accepted) / wall, 1),
               "p50_ms": ms(pct(b.lat, 50)), "p99_ms": ms(pct(b.lat, 99)), "max_ms": ms(max(b.lat) if b.lat else 0),
               "loadgen_cpu_s": round(cpu_self() - cpu0, 2), "server_cpu_s": round(b.server.cpu() - scpu0, 2),
               **services_used(services0), "wall_s": round(wall, 1), "server_rss_kib": b.server.rss()}
        if b.server.gc_stats:
            row["gc"] = b.server.gc_since_last()
        out.append(row)
        print(json.dumps(row), flush=True)
        if row["p99_ms"] > 5000 or row["deliveries"] < 0.9 * row["expected_deliveries"]:
            break  # saturated: higher steps would only queue
    return out


async def w5(b: Bench, socks, missed: int, floor: bool = False):
    """The non-lead members disconnect; each group's lead posts `missed` posts over its own socket; the
    others reconnect and subscribe with after_seq = the last sequence they had seen. On the floor
    (bench/floor.py), whose ids are one sequence across workspaces, each socket must get `missed` posts
    once and in order, whatever their numbers."""
    names = group_names(b.state)
    last = await subscribe_groups(b, socks)
    leads = {b.state["workspaces"][nm]["lead"] for nm in names}
    # all but the leads go away
    for i, s in list(socks.items()):
        if i not in leads:
            await s.close()
            del socks[i]
    b.reset()
    frames = []
    for nm in names:
        ws = b.state["workspaces"][nm]
        for f in b.seal(nm, ws["lead"], missed, time.time(), 0):
            frames.append((socks[ws["lead"]], f))
    t_perf = time.perf_counter()
    acc = await b.send_schedule([(t_perf, s, f) for s, f in frames], deadline_s=600)
    ok = [a for a in acc if a.get("type") == "post.accepted"]
    post_s = time.perf_counter() - t_perf
    closed = sorted({str(s.closed) for s in socks.values() if s.closed})
    await asyncio.sleep(1)
    for s in socks.values():
        s.seqs.clear()
    # reconnect + resubscribe the others
    others = [i for nm in names for i in b.state["workspaces"][nm]["members"] if i not in leads]
    ws_of = {i: b.state["workspaces"][nm]["id"] for nm in names for i in b.state["workspaces"][nm]["members"]}
    cpu0, scpu0, services0 = cpu_self(), b.server.cpu(), services_cpu()
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(100)
    done_t = []

    async def catch_up(i):
        async with sem:
            s = await b.connect(i)
            socks[i] = s
            await s.subscribe(ws_of[i], after=last[ws_of[i]])
            done_t.append(time.perf_counter() - t0)
    res = await asyncio.gather(*(catch_up(i) for i in others), return_exceptions=True)
    total = time.perf_counter() - t0
    fails = [r for r in res if isinstance(r, Exception)]
    if floor:
        got = [socks[i].seqs.get(ws_of[i], []) for i in others if i in socks]
        chk = {"lost": sum(max(0, missed - len(set(g))) for g in got) + len(others) - len(got),
               "duplicated": sum(len(g) - len(set(g)) for g in got),
               "reordered": sum(1 for g in got for a, c in zip(g, g[1:], strict=False) if c <= a)}
    else:
        chk = check_seqs([socks[i] for i in others], lambda s: [ws_of[s.idx]], lambda w: last[w], lambda w: missed)
    row = {"workload": "W5 floor" if floor else "W5", "layer": b.server.layer, "clients": len(others), "missed_each": missed,
           "posts_written": len(ok), "write_s": round(post_s, 1), "writers_closed": closed,
           "reconnect_failures": len(fails),
           "all_caught_up_s": round(total, 2), "p50_client_s": round(pct(done_t, 50), 2),
           "p99_client_s": round(pct(done_t, 99), 2), **chk,
           "received": sum(len(socks[i].seqs.get(ws_of[i], [])) for i in others),
           "expected": len(others) * missed,
           "loadgen_cpu_s": round(cpu_self() - cpu0, 2), "server_cpu_s": round(b.server.cpu() - scpu0, 2),
           **services_used(services0), "server_rss_kib": b.server.rss()}
    print(json.dumps(row), flush=True)
    return row


async def floor_w1(args, state, sessions, phase: str) -> dict:
    """W1 against the durable floor (bench/floor.py), in the same run as the application's workloads:
    before them and again after, to bound the machine's drift between the two."""
    server = Server(args.layer, "floor")
    try:
        b = Bench(state, server, sessions)
        _install_w1_latency(b)
        row = await w1(b, args.layer, args.w1_posts, args.w1_interval_ms / 1000)
    finally:
        server.stop()
    row.update(workload="W1 floor", phase=phase)
    print(json.dumps(row), flush=True)
    _save(args, [row], server="floor")
    return row


async def floor_w5(args, state, sessions) -> dict:
    """W5 against the durable floor: the same reconnects, each sent its workspace's missed posts by one
    SELECT and one frame, with no session, 2FA or membership check."""
    server = Server(args.layer, "floor")
    try:
        b = Bench(state, server, sessions)
        _, socks = await w4(b, len(state["users"]))
        row = await w5(b, socks, args.missed, floor=True)
        await asyncio.gather(*(s.close() for s in socks.values()), return_exceptions=True)
    finally:
        server.stop()
    _save(args, [row], server="floor")
    return row


async def main_async(args, state, sessions):
    n_users = len(state["users"])
    rows = []
    if args.floor_w5:
        rows.append(await floor_w5(args, state, sessions))
    if args.floor:
        rows.append(await floor_w1(args, state, sessions, "before"))
    rows += await workloads(args, state, sessions, n_users)
    if args.floor:
        rows.append(await floor_w1(args, state, sessions, "after"))
    return rows


async def workloads(args, state, sessions, n_users):
    server = Server(args.layer, args.server, args.workers, gc_stats=args.gc_stats)
    b = Bench(state, server, sessions)
    _install_w1_latency(b)
    rows = []
    try:
        if "w1" in args.workloads:
            rows.append(await w1(b, args.layer, args.w1_posts, args.w1_interval_ms / 1000))
            print(json.dumps(rows[-1]), flush=True)
            _save(args, rows[-1:])
        socks = None
        if any(w in args.workloads for w in ("w4", "w2", "w3", "w5")):
            r, socks = await w4(b, n_users)
            rows.append(r)
            print(json.dumps(r), flush=True)
            _save(args, rows[-1:])
        if "w2" in args.workloads:
            rows += await w2(b, socks, [s for s in (10, 100, 1000) if s <= n_users], args.w2_posts,
                             args.w2_interval_ms / 1000)
            _save(args, [r for r in rows if r["workload"] == "W2"])
        if "w3" in args.workloads:
            rows += await w3(b, socks, args.rates, args.step_s)
            _save(args, [r for r in rows if r["workload"] == "W3"])
        if "w5" in args.workloads:
            rows.append(await w5(b, socks, args.missed))
            _save(args, rows[-1:])
        if socks:
            await asyncio.gather(*(s.close() for s in socks.values()), return_exceptions=True)
    finally:
        server.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="+", choices=["w1", "w2", "w3", "w4", "w5"])
    ap.add_argument("--layer", choices=["pubsub", "core"], default="pubsub")
    ap.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    ap.add_argument("--workers", type=int, default=1, help="server processes (uvicorn only)")
    ap.add_argument("--w1-posts", type=int, default=1000)
    ap.add_argument("--w1-interval-ms", type=float, default=50)
    ap.add_argument("--w2-posts", type=int, default=20)
    ap.add_argument("--w2-interval-ms", type=float, default=500)
    ap.add_argument("--rates", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--step-s", type=float, default=10)
    ap.add_argument("--missed", type=int, default=50)
    ap.add_argument("--out", default="/tmp/tac_bench/results.jsonl")
    ap.add_argument("--floor", action="store_true",
                    help="run W1 against the durable floor (bench/floor.py) before and after the workloads")
    ap.add_argument("--floor-w5", action="store_true",
                    help="run W5 against the durable floor (bench/floor.py) before the workloads")
    ap.add_argument("--gc-stats", action="store_true",
                    help="time the server's garbage collections (bench/gcstats) and report them with W3's rows")
    args = ap.parse_args()
    raise_nofile()
    django_setup(args.layer)
    state = load_state()
    sessions = make_sessions(state, range(len(state["users"])))
    asyncio.run(main_async(args, state, sessions))


def _save(args, rows, server: str | None = None):
    with open(args.out, "a") as f:
        for r in rows:
            f.write(json.dumps({**r, "server": server or args.server, "workers": 1 if server else args.workers, "cmd": " ".join(sys.argv), "conn_max_age": os.environ.get("CONN_MAX_AGE", "0"),
                                "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


if __name__ == "__main__":
    main()
