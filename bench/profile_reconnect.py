"""Where a reconnect's server time goes, without a network: `python -m bench.profile_reconnect [--n 300]
[--missed 50] [--profile]`.

W5's unit of work in this process: the whole ASGI application (teamaroundchild.asgi: Origin check,
session and auth cookies, the 2FA check of accounts/ws.py, the consumer) driven by Channels'
WebsocketCommunicator, with the Redis channel layer as deployed: connect, `hello`, subscribe to the
bench workspace "pair" after `--missed` posts, read the backlog and `subscribed`, disconnect. Prints the
mean wall and CPU time per reconnect, and with --profile the functions that took the most CPU. W5's
target is 3 ms of server CPU a reconnect (BENCHMARKS.md); this measures the same work without the
server's socket handling, so it is the quick way to see what a change to the handshake or the backlog
buys before a full run. Reads only (sessions aside: it makes one per reconnect, as a sign-in would)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time

from .common import apply_env, load_state
from .profile_post import cpu


async def reconnects(application, cookies: list[str], workspace_id: str, after: int, missed: int) -> None:
    from channels.testing import WebsocketCommunicator

    for cookie in cookies:
        communicator = WebsocketCommunicator(application, "/ws/", headers=[
            (b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000"), (b"cookie", cookie.encode())])
        connected, _ = await communicator.connect()
        if not connected:
            raise SystemExit("the socket was refused: is tac_bench seeded (bench.setup) and .env's SECRET_KEY the one "
                             "it was seeded with?")
        hello = await communicator.receive_json_from()
        assert hello["type"] == "hello", hello
        await communicator.send_json_to({"type": "subscribe", "id": "s", "workspace": workspace_id, "after_seq": after})
        got = 0
        while True:
            frame = await communicator.receive_json_from(timeout=10)
            if frame["type"] == "posts":
                got += len(frame["posts"])
            elif frame["type"] == "subscribed":
                break
            else:
                raise SystemExit(f"unexpected frame: {frame}")
        if got != missed:
            raise SystemExit(f"the backlog had {got} posts, not {missed}")
        await communicator.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--missed", type=int, default=50)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()

    apply_env("pubsub")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from messaging.models import Workspace
    from teamaroundchild.asgi import application

    from .run import make_sessions

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    state = load_state()
    pair = state["workspaces"]["pair"]
    reader = next(i for i in pair["members"] if i != pair["lead"])  # the member who is not the lead
    workspace = Workspace.objects.get(public_id=pair["id"])
    if workspace.last_seq < args.missed:
        raise SystemExit(f"the bench workspace has {workspace.last_seq} posts: run bench.profile_post first")
    after = workspace.last_seq - args.missed
    sessions = make_sessions(state, [reader])
    cookie = f"sessionid={sessions[reader]}"
    connection.close()  # the consumer's threads open their own
    warm = [cookie] * 20
    asyncio.run(reconnects(application, warm, pair["id"], after, args.missed))
    profiler = cProfile.Profile() if args.profile else None
    wall0, cpu0 = time.perf_counter(), cpu()
    if profiler:
        profiler.enable()
    asyncio.run(reconnects(application, [cookie] * args.n, pair["id"], after, args.missed))
    if profiler:
        profiler.disable()
    wall, used = time.perf_counter() - wall0, cpu() - cpu0
    print(f"{args.n} reconnects with {args.missed} missed posts each: {wall / args.n * 1000:.2f} ms wall, "
          f"{used / args.n * 1000:.2f} ms CPU per reconnect (this process: the application, the test "
          f"communicator and Redis's client)")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
