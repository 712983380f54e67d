"""Where a post's server time goes, without sockets: `python -m bench.profile_post [--n 500] [--profile]`.

Calls messaging.services.post_create in this process, as the consumer does (the bench workspace
"pair", member u0, sealed posts), against the bench database (tac_bench, seeded by bench.setup). With
the channel layer set to in-memory, so it measures the service and its queries, not the fan-out.
Prints the mean wall and CPU time per post, the statements per post, and with --profile the functions
that took the most time. `--general` sends every post the general way (two statements and a commit)
instead of the one statement a plain post takes. Adds posts to the bench database (as W1 does)."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import time
import uuid

from .common import apply_env, b64d, load_state


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--general", action="store_true",
                    help="every post the general way (two statements and a commit), not the one statement")
    args = ap.parse_args()

    apply_env()
    os.environ["REDIS_URL"] = ""  # the in-memory channel layer: the service, not the fan-out
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Professional
    from messaging import services
    from messaging.models import Workspace
    from messaging.schemas import PostEnvelope
    from messaging.services import posts

    posts.ONE_STATEMENT = not args.general
    from tacprotocol import crypto
    from tacprotocol.workspace import seal_post

    state = load_state()
    ws_state, user = state["workspaces"]["pair"], state["users"][0]
    ident = crypto.Identity(sign_seed=b64d(user["sign_seed"]), box_secret=b64d(user["box_secret"]))
    author = Professional.objects.get(public_id=user["id"])
    workspace = Workspace.objects.get(public_id=ws_state["id"])
    key = b64d(ws_state["epoch_key"])
    now_ms = int(time.time() * 1000)
    envelopes = [
        PostEnvelope.parse(seal_post(identity=ident, author_id=uuid.UUID(user["id"]),
                                     workspace_id=uuid.UUID(ws_state["id"]), epoch=ws_state["epoch"],
                                     epoch_key=key, kind="update", body={"text": f"profile {k} " + "x" * 200},
                                     client_time_ms=now_ms))
        for k in range(args.n + 21)
    ]
    for envelope in envelopes[:20]:  # warm: connection, caches, the roster check
        services.post_create(author=author, workspace=workspace, envelope=envelope)

    with CaptureQueriesContext(connection) as queries:  # one post, to list its statements
        services.post_create(author=author, workspace=workspace, envelope=envelopes[-1])
    profiler = cProfile.Profile() if args.profile else None
    wall0, cpu0 = time.perf_counter(), cpu()
    if profiler:
        profiler.enable()
    for envelope in envelopes[20:-1]:
        services.post_create(author=author, workspace=workspace, envelope=envelope)
    if profiler:
        profiler.disable()
    wall, used = time.perf_counter() - wall0, cpu() - cpu0
    n = len(envelopes) - 21
    print(f"{n} posts: {wall / n * 1000:.2f} ms wall, {used / n * 1000:.2f} ms CPU per post; "
          f"{len(queries)} statements per post:")
    for q in queries.captured_queries:
        print("  ", q["sql"][:160])
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
