"""The durable floor (issue 11, item 5): the least a durable live post can cost on this stack, served to
the same harness as the application (`python -m bench.run w1 --server floor`).

A Channels consumer under daphne, on the same settings, database connection handling
(database_sync_to_async, CONN_MAX_AGE) and Redis channel layer as teamaroundchild.asgi, that does what a
post must do and nothing else: one INSERT of the post's bytes into PostgreSQL, committed (synchronous
commit, as the application), then a group_send to the workspace's group, whose members' sockets forward
it. No session, 2FA or membership check, no signature, no sequence per workspace, no summaries, no
audit: the application's W1 over this floor's W1, measured in the same window, is what all of that costs.

It speaks just enough of the protocol (docs/protocol.md) for W1 and W5: `hello` on connect; `subscribe`
joins the group, sends the workspace's posts stored after `after_seq` (one SELECT, one `posts` frame)
and answers `subscribed` with the table's last id as `last_seq`; `post.create` answers `post.accepted`
and everyone subscribed receives `post.created` carrying the frame's own post (its ciphertext included,
so the frames are the same size) with the row id as its `seq`. Ids are one sequence across workspaces,
so a run's posts are numbered without gaps only while one workspace posts (W1); W5's floor checks that
each reconnecting socket got its workspace's posts once, in order (bench.run --floor-w5). The table is
emptied (and its ids restarted) when the floor starts."""

from __future__ import annotations

import json

import django

from .common import apply_env

apply_env()
django.setup()

from channels.db import database_sync_to_async  # noqa: E402  (after django.setup(), as an ASGI module must)
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.urls import path  # noqa: E402

TABLE = "bench_floor_post"


def _table_make() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, workspace uuid NOT NULL, "
                       f"post_id uuid NOT NULL, body bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_workspace ON {TABLE} (workspace, id)")
        cursor.execute(f"TRUNCATE {TABLE} RESTART IDENTITY")
    connection.close()


_table_make()


@database_sync_to_async
def _insert(workspace: str, post_id: str, body: bytes) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (workspace, post_id, body) VALUES (%s, %s, %s) RETURNING id",
                       [workspace, post_id, body])
        return cursor.fetchone()[0]


@database_sync_to_async
def _since(workspace: str, after: int) -> list[tuple[int, str, bytes]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, post_id::text, body FROM {TABLE} WHERE workspace = %s AND id > %s ORDER BY id "
                       f"LIMIT 500", [workspace, after])
        return cursor.fetchall()


@database_sync_to_async
def _last_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {TABLE}")
        return cursor.fetchone()[0]


class FloorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.accept()
        await self.send_json({"type": "hello"})

    async def receive_json(self, content, **kwargs):
        kind, frame_id, workspace = content.get("type"), content.get("id"), str(content.get("workspace"))
        if kind == "subscribe":
            await self.channel_layer.group_add(f"floor.{workspace}", self.channel_name)
            rows = await _since(workspace, int(content.get("after_seq") or 0))
            if rows:  # each stored post's JSON with its seq and post id put first, joined as they are
                posts = ", ".join(f'{{"seq": {seq}, "post_id": "{post_id}", {bytes(body)[1:].decode()}'
                                  for seq, post_id, body in rows)
                await self.send(text_data=f'{{"type": "posts", "workspace": "{workspace}", "posts": [{posts}]}}')
            await self.send_json({"type": "subscribed", "id": frame_id, "workspace": workspace,
                                  "last_seq": await _last_id()})
        elif kind == "post.create":
            post = content["post"]
            seq = await _insert(workspace, frame_id, json.dumps(post).encode())
            await self.send_json({"type": "post.accepted", "id": frame_id, "seq": seq})
            await self.channel_layer.group_send(f"floor.{workspace}", {
                "type": "post.created", "workspace": workspace, "post": {**post, "post_id": frame_id, "seq": seq}})
        else:
            await self.send_json({"type": "error", "id": frame_id, "code": "invalid",
                                  "message": "the floor server knows only subscribe and post.create"})

    async def post_created(self, event):
        await self.send_json({"type": "post.created", "workspace": event["workspace"], "post": event["post"]})


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/", FloorConsumer.as_asgi())])})
