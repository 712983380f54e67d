"""The one websocket a browser (or the Python client) opens. Frames are JSON objects with a "type";
docs/protocol.md lists every one.

Checks, and what they cost (BENCHMARKS.md): the session (active account, session generation, auth
hash, 2FA device, and the stored session still in date) at connect, before a frame once
TAC_SOCKET_RECHECK_SECONDS have passed, and on a timer every TAC_SOCKET_RECHECK_SECONDS for every socket
of the process together (SocketWatch: one database call of at most five statements a slice of 100
sockets, which also catches up on posts whose events Redis lost); every way a session ends also sends
`session.revoked`, which closes the socket at once.
Membership when a workspace is subscribed, inside every service a frame calls, and before every
workspace event is forwarded: a post's event carries the workspace's roster version, and the socket
asks the database again whenever that differs from the version it last checked."""

from __future__ import annotations

import asyncio
import logging
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404

from accounts.access import session_still_verified, session_touch, sessions_still_verified
from accounts.services import session_fingerprint
from teamaroundchild.validation import require_dict

from . import access, events, selectors, services
from .events import user_group, workspace_group
from .models import Workspace
from .schemas import PostEnvelope, frame_id_field, int_field, uuid_field

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's): the browser shows the reason and does not reconnect.
CLOSE_NOT_ENTITLED = 4403
# A frame over settings.TAC_SOCKET_MAX_FRAME_BYTES (the browser may reconnect: it was its own frame).
CLOSE_FRAME_TOO_LARGE = 4413
BACKLOG_PAGE = 500
# A `posts` frame holds a page's posts until their ciphertext passes this size (one post always fits:
# MAX_CIPHERTEXT_BYTES is 256 KiB), so a catch-up is a few frames, not one per post.
POSTS_FRAME_BYTES = 512 * 1024
SESSION_TOUCH_SECONDS = 60
WATCH_MIN_SECONDS = 0.25
# How many sockets one periodic database call checks (SocketWatch).
WATCH_SLICE = 100


def _sockets_check(sockets: list[tuple[str | None, object, list[int]]],
                   seen: dict[str, tuple[str, dict]]) -> tuple[list[bool], dict[int, int]]:
    """On the database thread, once for every open socket of the process ((session key, user, subscribed
    workspace pks) each): is each session still good, and the subscribed workspaces' newest sequences."""
    entitled = sessions_still_verified([(key, user) for key, user, _ in sockets], seen)
    pks = {pk for (_, _, subscribed), ok in zip(sockets, entitled, strict=True) if ok for pk in subscribed}
    newest = dict(Workspace.objects.filter(pk__in=pks).values_list("pk", "last_seq")) if pks else {}
    return entitled, newest


class SocketWatch:
    """Every TAC_SOCKET_RECHECK_SECONDS, whether or not their clients send anything, every open socket of
    this process (of this event loop) is checked at once: a socket whose session has ended (signed out,
    offboarded, expired while idle) is closed, and a socket that missed posts (Redis was down when their
    events were published) is sent them from the database. One database call and at most five
    statements for up to WATCH_SLICE sockets: a call of four statements a socket every five seconds
    was, with a thousand sockets open, most of what the database thread did (BENCHMARKS.md, W3)."""

    _by_loop: dict[asyncio.AbstractEventLoop, SocketWatch] = {}

    def __init__(self):
        self.sockets: dict[LiveConsumer, None] = {}  # an ordered set
        self.seen: dict[str, tuple[str, dict]] = {}  # accounts.access.sessions_still_verified's
        self.task: asyncio.Task | None = None

    @classmethod
    def of_this_loop(cls) -> SocketWatch:
        loop = asyncio.get_running_loop()
        watch = cls._by_loop.get(loop)
        if watch is None:
            watch = cls._by_loop[loop] = cls()
        return watch

    def add(self, consumer: LiveConsumer) -> None:
        self.sockets[consumer] = None
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    @classmethod
    def forget(cls, consumer: LiveConsumer) -> None:
        loop = asyncio.get_running_loop()
        watch = cls._by_loop.get(loop)
        if watch is None:
            return
        watch.sockets.pop(consumer, None)
        if not watch.sockets:
            if watch.task is not None:
                watch.task.cancel()
            del cls._by_loop[loop]

    async def _run(self) -> None:
        """Rounds of TAC_SOCKET_RECHECK_SECONDS: the sockets in slices of WATCH_SLICE, one database call a
        slice, spread over the round, so no call holds the database thread (which posts share) for long."""
        interval = max(settings.TAC_SOCKET_RECHECK_SECONDS, WATCH_MIN_SECONDS)
        while True:
            consumers = list(self.sockets)
            slices = [consumers[i:i + WATCH_SLICE] for i in range(0, len(consumers), WATCH_SLICE)] or [[]]
            for some in slices:
                await asyncio.sleep(interval / len(slices))
                try:
                    await self._check([c for c in some if c in self.sockets], interval)
                except Exception:  # the watch must outlive any one round: it is every idle socket's check
                    logger.exception("the sockets' periodic check failed; it runs again next round")
            keys = {c.scope["session"].session_key for c in self.sockets}
            self.seen = {key: known for key, known in self.seen.items() if key in keys}

    async def _check(self, consumers: list[LiveConsumer], interval: float) -> None:
        if not consumers:
            return
        checked_at = time.monotonic()
        try:
            entitled, newest = await database_sync_to_async(_sockets_check)(
                [(c.scope["session"].session_key, c.user, list(c.subscriptions)) for c in consumers], self.seen)
        except (OperationalError, InterfaceError):
            logger.warning("database unavailable for the sockets' periodic check", exc_info=True)
            return
        behind = []
        for consumer, ok in zip(consumers, entitled, strict=True):
            if consumer not in self.sockets:
                continue  # closed meanwhile
            if not ok:
                behind.append(consumer._session_ended())
                continue
            consumer.entitled_until = checked_at + interval
            if any(newest.get(pk, 0) > sub["seq"] for pk, sub in consumer.subscriptions.items()):
                behind.append(consumer._catch_up(newest))
        for failed in await asyncio.gather(*behind, return_exceptions=True):
            if isinstance(failed, Exception):
                logger.warning("a socket's periodic check failed", exc_info=failed)


# Public id -> pk of the workspaces sockets of this process have subscribed to (a pk never changes): see
# LiveConsumer.frame_subscribe. At most one entry a workspace.
WORKSPACE_PKS: dict[str, int] = {}


def _subscription_start(user, public_id: str, after: int, first_page: bool) -> tuple[Workspace | None, list | None]:
    """On the database thread: the workspace if `user` is an active member of it, and with `first_page`
    the first backlog page after `after` (the group already joined)."""
    workspace = access.workspace_if_member(user.pk, public_id)
    if workspace is None or not first_page:
        return workspace, None
    return workspace, selectors.post_list(professional=user, workspace=workspace, after_seq=after, limit=BACKLOG_PAGE)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        """As channels' own dispatch, without the close_old_connections() it runs in a worker thread
        before every message: every database call here goes through database_sync_to_async, which does
        that itself, and a thread hop for each delivered post was most of a delivery's cost."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        self.user = self.scope["user"]
        # workspace pk -> {"id": public id str, "workspace": the Workspace as subscribed, "seq": highest
        # sequence delivered on this socket, "roster": the roster version membership was last checked at}
        self.subscriptions: dict[int, dict] = {}
        # The handshake's own check (accounts.ws.Require2FAWebsocketMiddleware) counts as the first.
        checked_at = self.scope.get("tac_session_checked_at")
        self.entitled_until = checked_at + settings.TAC_SOCKET_RECHECK_SECONDS if checked_at else 0.0
        if not await self._still_entitled():
            await self.close(code=CLOSE_NOT_ENTITLED)
            return
        self.own_group = user_group(self.user.pk)
        await self._group("add", self.own_group)
        await self.accept()
        await self.send_json({"type": "hello", "user": str(self.user.public_id)})
        self.touched_at = time.monotonic()
        SocketWatch.of_this_loop().add(self)

    async def _catch_up(self, newest: dict[int, int]) -> None:
        """Send the posts a subscribed workspace has beyond what this socket has had (SocketWatch)."""
        for pk, last in newest.items():
            sub = self.subscriptions.get(pk)
            if sub is not None and last > sub["seq"]:
                try:
                    await self._send_from_database(sub)
                except Http404:
                    await self._drop(pk)

    async def disconnect(self, code):
        SocketWatch.forget(self)
        if hasattr(self, "own_group"):
            await self._group("discard", self.own_group)
        for pk in list(getattr(self, "subscriptions", {})):
            await self._group("discard", workspace_group(pk))

    async def _session_ended(self):
        await self.send_json({"type": "session.revoked", "reason": "your session has ended"})
        await self.close(code=CLOSE_NOT_ENTITLED)

    async def _group(self, action: str, group: str) -> None:
        """Join or leave a group. With the channel layer down (Redis restarting) the socket carries on:
        the periodic check sends what events would have, from the database, and pub/sub subscriptions
        are restored by the layer when Redis returns."""
        try:
            await getattr(self.channel_layer, f"group_{action}")(group, self.channel_name)
        except Exception:  # redis-py's errors, OSError, timeouts: not one class
            logger.warning("could not %s group %s on the channel layer", action, group, exc_info=True)

    async def _still_entitled(self) -> bool:
        """The session as stored now (not the copy read at the handshake): it may have ended or expired
        while idle since."""
        if time.monotonic() < self.entitled_until:
            return True
        if not await database_sync_to_async(session_still_verified)(self.scope["session"], self.user):
            return False
        self.entitled_until = time.monotonic() + settings.TAC_SOCKET_RECHECK_SECONDS
        return True

    async def _active(self):
        """A frame the person sent (a post, a read) is activity: the session's idle clock restarts, as
        an HTTP request restarts it, at most once a minute."""
        if time.monotonic() - self.touched_at >= SESSION_TOUCH_SECONDS:
            self.touched_at = time.monotonic()
            await database_sync_to_async(session_touch)(self.scope["session"])

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        limit = settings.TAC_SOCKET_MAX_FRAME_BYTES
        if text_data is not None and _utf8_length(text_data) > limit:
            # Refused unread, and the socket closes: nothing a client sends needs more (the largest post is
            # about 350 KB of JSON). Daphne closes frames over its own 1 MiB limit before they get here.
            await self.send_error(f"frame is larger than the limit of {limit} bytes (TAC_SOCKET_MAX_FRAME_BYTES); "
                                  f"it was not read", code="too_large")
            await self.close(code=CLOSE_FRAME_TOO_LARGE)
            return
        if text_data is None:
            await self.send_error("binary frames are not accepted; send JSON text")
            return
        try:
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." deeper than the parser's stack
            await self.send_error("frame is not valid JSON")
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        # The session may have ended since connect (offboarding, sign out everywhere): check every frame.
        if not await self._still_entitled():
            await self._session_ended()
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("frame must be a JSON object with a string 'type'")
            return
        try:
            frame_id = frame_id_field(content)  # the handlers echo content["id"] from here on
        except ValidationError as exc:
            await self.send_error(exc.messages[0])
            return
        handler = {
            "ping": self.frame_ping,
            "subscribe": self.frame_subscribe,
            "unsubscribe": self.frame_unsubscribe,
            "post.create": self.frame_post_create,
            "read": self.frame_read,
        }.get(content["type"])
        if handler is None:
            await self.send_error(f"unknown frame type {content['type'][:40]!r}", frame_id=frame_id)
            return
        try:
            await handler(content)
        except services.Conflict as exc:
            await self.send_error("; ".join(exc.messages), frame_id=frame_id, code="conflict")
        except ValidationError as exc:
            await self.send_error("; ".join(exc.messages), frame_id=frame_id, code="invalid")
        except (PermissionDenied, Http404) as exc:
            await self.send_error(str(exc) or "not a member of that workspace", frame_id=frame_id, code="forbidden")
        except (OperationalError, InterfaceError):
            # PostgreSQL restarted or the connection broke: nothing was stored (the transaction rolled
            # back). Django closes the broken connection after this call; the next frame gets a new one.
            logger.warning("database unavailable during a %s frame", content["type"], exc_info=True)
            await self.send_error("the server could not reach its database; nothing was changed, send it again",
                                  frame_id=frame_id, code="unavailable")

    async def send_error(self, reason: str, frame_id=None, code: str = "invalid"):
        await self.send_json({"type": "error", "code": code, "reason": reason, "id": frame_id})

    # --- frames from the client ---

    async def frame_ping(self, content):
        await self.send_json({"type": "pong", "id": content.get("id")})

    async def _workspace(self, content) -> Workspace:
        """The workspace a frame names, if this professional is an active member of it (one query)."""
        public_id = uuid_field(content, "workspace")
        workspace = await database_sync_to_async(access.workspace_if_member)(self.user.pk, public_id)
        if workspace is None:
            raise Http404("no such workspace, or you are not a member")
        return workspace

    async def _subscribed_workspace(self, content) -> Workspace:
        """For frames whose service checks membership itself, inside its own transaction: a subscribed
        workspace needs no query here."""
        public_id = str(uuid_field(content, "workspace"))
        for sub in self.subscriptions.values():
            if sub["id"] == public_id:
                return sub["workspace"]
        return await self._workspace(content)

    async def frame_subscribe(self, content):
        """Join the workspace's group, then send what the client missed after `after_seq`, in order, once.
        Group events queue while this runs; those at or below the last sequence sent are dropped.

        The group is named by the workspace's pk. When this process has seen the workspace before
        (WORKSPACE_PKS), the group is joined first and the membership check and the first backlog page
        are one database call; otherwise the check comes first, as it must to learn the pk, then the
        group, then the page."""
        public_id = str(uuid_field(content, "workspace"))
        after = int_field(content, "after_seq", default=0)
        pk = WORKSPACE_PKS.get(public_id)
        joined = pk is not None and pk not in self.subscriptions
        if joined:
            await self._group("add", workspace_group(pk))
        try:
            workspace, page = await database_sync_to_async(_subscription_start)(self.user, public_id, after, joined)
            if workspace is None:
                raise Http404("no such workspace, or you are not a member")
        except BaseException:  # refused, or the database failed: not left in a group it was not let into
            if joined:
                await self._group("discard", workspace_group(pk))
            raise
        WORKSPACE_PKS[public_id] = workspace.pk
        if workspace.pk not in self.subscriptions and not joined:
            await self._group("add", workspace_group(workspace.pk))
        sub = self.subscriptions.setdefault(workspace.pk, {"id": public_id})
        sub.update(workspace=workspace, seq=after, roster=workspace.roster_version)
        if page is None or not await self._send_page(sub, page, BACKLOG_PAGE):
            await self._send_from_database(sub)
        await self.send_json({"type": "subscribed", "id": content.get("id"), "workspace": sub["id"],
                              "last_seq": sub["seq"]})

    async def _send_from_database(self, sub: dict, up_to: int | None = None) -> None:
        """Send the posts after sub["seq"] (up to `up_to`, or all), in order, from the database."""
        while up_to is None or sub["seq"] < up_to:
            limit = BACKLOG_PAGE if up_to is None else min(BACKLOG_PAGE, up_to - sub["seq"])
            page = await database_sync_to_async(selectors.post_list)(
                professional=self.user, workspace=sub["workspace"], after_seq=sub["seq"], limit=limit)
            if up_to is not None:
                page = [post for post in page if post["seq"] <= up_to]
            if await self._send_page(sub, page, limit):
                return

    async def _send_page(self, sub: dict, page: list[dict], limit: int) -> bool:
        """Send a page of posts in frames of about POSTS_FRAME_BYTES of ciphertext; whether it was the last
        page (fewer posts than `limit`)."""
        batch, size = [], 0
        for post in page:
            batch.append(post)
            size += len(post["ciphertext"])
            if size >= POSTS_FRAME_BYTES:
                await self._send_posts(sub, batch)
                batch, size = [], 0
        if batch:
            await self._send_posts(sub, batch)
        return len(page) < limit

    async def _send_posts(self, sub: dict, posts: list[dict]) -> None:
        # The periodic check and an event's gap fill may both have read these: send each post once, in
        # order (the sequence moves before the await, so the other sees it).
        posts = [post for post in posts if post["seq"] > sub["seq"]]
        if not posts:
            return
        sub["seq"] = posts[-1]["seq"]
        await self.send_json({"type": "posts", "workspace": sub["id"], "posts": posts})

    async def frame_unsubscribe(self, content):
        public_id = str(uuid_field(content, "workspace"))
        for pk, sub in list(self.subscriptions.items()):
            if sub["id"] == public_id:
                del self.subscriptions[pk]
                await self._group("discard", workspace_group(pk))
        await self.send_json({"type": "unsubscribed", "id": content.get("id"), "workspace": public_id})

    async def frame_post_create(self, content):
        await self._active()
        workspace = await self._subscribed_workspace(content)
        envelope = PostEnvelope.parse(content.get("post"))
        # On the one thread database calls share (channels' default). Measured twice: the thread pool
        # instead (thread_sensitive=False) lowered W3's saturation (113 -> 95 posts/s on uvicorn x2), GIL
        # contention costing more than the overlapped PostgreSQL waits gave (BENCHMARKS.md).
        result = await self._write(services.post_create, author=self.user, workspace=workspace, envelope=envelope)
        await self.send_json({"type": "post.accepted", "id": content.get("id"), "workspace": str(workspace.public_id),
                              "seq": result.post.seq, "post_id": str(result.post.post_id),
                              "created": result.created})

    async def frame_read(self, content):
        workspace = await self._subscribed_workspace(content)
        seq = int_field(require_dict(content), "seq")
        await self._write(services.read_position_update, professional=self.user, workspace=workspace, seq=seq)

    async def _write(self, service, **kwargs):
        """Run a service on the database thread; send the events it committed from here (a failed send is
        logged: the change has committed, and sockets catch up from the database)."""
        result, committed = await database_sync_to_async(events.call_collecting_events)(service, **kwargs)
        for group, message in committed:
            await events.publish(self.channel_layer, group, message)
        return result

    # --- events from the channel layer ---

    async def session_revoked(self, event):
        mine = session_fingerprint(self.scope["session"].session_key)
        if event.get("keep_session") == mine:
            return  # the session that asked (a password change) stays open
        if event.get("only_session") not in (None, mine):
            return  # another session of the same account signed out
        await self.send_json({"type": "session.revoked", "reason": event["reason"]})
        await self.close(code=CLOSE_NOT_ENTITLED)

    async def post_created(self, event):
        pk = event["workspace_pk"]
        sub = self.subscriptions.get(pk)
        post = event["post"]
        if sub is None or post["seq"] <= sub["seq"]:
            return
        # Re-checked at delivery whenever the roster has changed since the last check: a member removed
        # a moment ago receives nothing more. post_create read the version under the workspace's lock.
        if event["roster"] != sub["roster"]:
            if not await database_sync_to_async(access.is_active_member)(self.user.pk, pk):
                await self._drop(pk)
                return
            sub["roster"] = event["roster"]
        if post["seq"] > sub["seq"] + 1:
            # An earlier post's event has not arrived: events committed by other workers (or threads)
            # can overtake each other on the way through Redis. Send the missing posts from the database
            # first; their own events, when they come, are at or below sub["seq"] and are dropped.
            try:
                await self._send_from_database(sub, up_to=post["seq"] - 1)
            except Http404:
                await self._drop(pk)
                return
        if post["seq"] <= sub["seq"]:
            return  # the periodic check sent it meanwhile
        sub["seq"] = post["seq"]
        await self.send_json({"type": "post.created", "workspace": sub["id"], "post": post})

    async def _drop(self, pk: int):
        sub = self.subscriptions.pop(pk, None)
        await self._group("discard", workspace_group(pk))
        if sub is not None:
            await self.send_json({"type": "membership.ended", "workspace": sub["id"], "reason": "not a member"})

    async def _forward_workspace_event(self, event):
        workspace_pk = await database_sync_to_async(
            lambda: Workspace.objects.filter(public_id=event["workspace"]).values_list("pk", flat=True).first())()
        if workspace_pk is None or workspace_pk not in self.subscriptions:
            return
        if not await database_sync_to_async(access.is_active_member)(self.user.pk, workspace_pk):
            await self._drop(workspace_pk)
            return
        await self.send_json({k: v for k, v in event.items() if k != "workspace_pk"})

    epoch_created = _forward_workspace_event
    membership_changed = _forward_workspace_event
    key_confirmed = _forward_workspace_event
    workspace_changed = _forward_workspace_event

    async def _forward_personal_event(self, event):
        await self.send_json(event)

    membership_invited = _forward_personal_event
    membership_accepted = _forward_personal_event
    keys_added = _forward_personal_event

    async def notification_created(self, event):
        # The recipient's own group only (notifications/services.py), and only the badge's number: what a
        # notification is about is read from the list, never pushed.
        await self.send_json({"type": event["type"], "unread": event["unread"]})

    async def notifications_read(self, event):
        await self.send_json({"type": event["type"], "unread": event["unread"]})

    async def membership_ended(self, event):
        for pk, sub in list(self.subscriptions.items()):
            if sub["id"] == event["workspace"]:
                del self.subscriptions[pk]
                await self._group("discard", workspace_group(pk))
        await self.send_json(event)
