"""The Python client of the TAC API (docs/protocol.md), with the same end-to-end guarantees as the browser:
keys are derived and opened here, posts are sealed and signed here, and everything the server answers
about keys and membership is checked against the signed record before it is trusted.

    client = TacClient("http://127.0.0.1:8000")
    client.sign_in("sam.lead@demo.tac", password, totp_code)
    ws = client.create_workspace({"name": "Leo Example", "nhs_number": "9434765919"})
    client.invite(ws["id"], client.directory("priya.gp@demo.tac")[0])
    ...                                   # the GP's client calls accept(ws["id"])
    client.rotate(ws["id"], admit=[gp_id])  # after comparing safety numbers: admits the GP in a new epoch
    client.concern(ws["id"], "neglect", "red", "Missed two appointments")
    for post in client.read(ws["id"]):
        print(post.seq, post.kind, post.body)

HTTP is synchronous (httpx). `LiveSocket` is the asyncio websocket for live threads and benchmarks.
Server refusals raise `TacError(status, code, reason)` with the server's reason; answers that contradict
the signed record raise `TrustError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tacprotocol import actions, crypto
from tacprotocol.record import Entry, Record
from tacprotocol.wire import MAX_TEXT_CHARS, MAX_TITLE_CHARS, RAGS
from tacprotocol.workspace import (
    CustodianPin,
    MemberKey,
    TrustError,
    Workspace,
    b64d,
    b64e,
    epoch_bundle,
    history_epochs,
    invite_signature,
    key_confirmation,
    now_ms,
    open_post,
    plan_epoch_members,
    remember,
    seal_post,
    workspace_from_detail,
)

from .memory import Memory

__all__ = [
    "LiveSocket", "PostReceipt", "RotateResult", "TacClient", "TacError", "TacNetworkError", "ThreadPost",
    "TrustError", "Workspace", "nhs_number_valid",
]

# The weakest Argon2id cost this client will derive a password at: PRODUCT.md's 3 passes and 64 MiB. A
# server that answers prelogin with less is asking for an auth key it could brute-force cheaply, which
# would give it the password and so the wrapping key: refuse. Tests lower it for their light accounts.
DEFAULT_KDF_FLOOR = (3, 64 * 1024 * 1024)
POST_PAGE = 1000
# Websocket error codes as HTTP statuses, so callers handle one kind of TacError.
WS_ERROR_STATUS = {"invalid": 400, "forbidden": 403, "conflict": 409, "unavailable": 503}
# The custodian pin: a static file served with the scripts (messaging/custodian.py), never an API answer.
PIN_PATH = "/static/tac/pins/custodian.json"
# Changes of an action's status that must say something (docs/protocol.md, "Limits"): what was done, or why.
NOTE_REQUIRED = {"done": "a completion note is required: say what was done",
                 "reopened": "a reason is required: say why the action is reopened",
                 "cancelled": "a reason is required: say why the action is cancelled"}
RATING_REASON_REQUIRED = "a reason is required: say why the rating changed"


class TacError(Exception):
    """The server refused: `status` (HTTP status, or the equivalent for a websocket error frame), `code`
    (the `error` of the JSON body, or the `code` of the frame) and the server's `reason`."""

    def __init__(self, status: int | None, code: str, reason: str):
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"TacError({self.status!r}, {self.code!r}, {self.reason!r})"


class TacNetworkError(TacError):
    """The server could not be reached, or its answer was lost. Only posts are retried (idempotently)."""

    def __init__(self, reason: str):
        super().__init__(None, "network", reason)


def nhs_number_valid(value: str) -> bool:
    """NHS numbers: ten digits whose last is a modulus 11 check digit (10 is never valid)."""
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


# --- what the client hands back ------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadPost:
    """One post as read: verified and opened, or (read(strict=False) only) refused with `error` set and
    no body. `key_trust` says why the author's signing key is believed: "manifest" (the epoch's signed
    manifest lists it), "confirmed" (a member confirmed it after comparing safety numbers) or "mine".
    `notes` are what the reader found wrong around it (gaps, reordering, a server time off the signed
    one): show them."""

    seq: int
    post_id: uuid.UUID
    kind: str
    author: uuid.UUID
    epoch: int
    created_at: str
    header: crypto.PostHeader | None
    body: dict | None
    post_hash: bytes | None
    key_trust: str = "manifest"
    error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key_matches_manifest(self) -> bool:
        return self.key_trust == "manifest"

    @property
    def signed_time(self) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(self.header.client_time_ms / 1000, tz=dt.UTC) if self.header else None

    def _header_id(self, name: str) -> uuid.UUID | None:
        value = getattr(self.header, name) if self.header else crypto.ZERO_ID
        return None if value == crypto.ZERO_ID else value

    @property
    def rag(self) -> str:
        return self.header.rag if self.header else ""

    @property
    def status(self) -> str:
        return self.header.status if self.header else ""

    @property
    def owner(self) -> uuid.UUID | None:
        return self._header_id("owner_id")

    @property
    def target(self) -> uuid.UUID | None:
        return self._header_id("target_id")

    @property
    def parent(self) -> uuid.UUID | None:
        return self._header_id("parent_id")

    @property
    def due(self) -> dt.date | None:
        if not self.header or not self.header.due_day:
            return None
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.header.due_day)


@dataclass(frozen=True)
class PostReceipt:
    seq: int
    post_id: uuid.UUID
    created: bool  # False when the server already had these exact bytes (a retry)


@dataclass(frozen=True)
class RotateResult:
    epoch: int
    members: list[uuid.UUID]
    admitted: list[uuid.UUID]
    details_reposted: PostReceipt | None
    warnings: list[str]


# --- pure client-side logic (no network): the seed and the tests use these too -------------------------


def thread_post(entry: Entry) -> ThreadPost:
    """A record entry as the client hands it back."""
    if entry.opened is None:
        return refused_post(entry.payload, entry.refused or "refused", tuple(entry.notes))
    h, opened = entry.opened.header, entry.opened
    return ThreadPost(seq=entry.seq, post_id=h.post_id, kind=h.kind, author=h.author_id, epoch=h.epoch,
                      created_at=opened.server_time, header=h, body=opened.body, post_hash=opened.post_hash,
                      key_trust=opened.key_trust, notes=tuple(entry.notes))


def open_payload(payload: dict, ws: Workspace) -> ThreadPost:
    """Verify the author's signature and decrypt one post (an item of GET .../posts or the `post` of a
    post.created frame), against the verified record."""
    if ws.keys is None:
        raise TrustError("not an active member: no keys to open posts with")
    opened = open_post(payload, ws.keys, details_reference=ws.reference)
    h = opened.header
    notes = (opened.time_note,) if opened.time_note else ()
    return ThreadPost(seq=opened.seq, post_id=h.post_id, kind=h.kind, author=h.author_id, epoch=h.epoch,
                      created_at=opened.server_time, header=h, body=opened.body, post_hash=opened.post_hash,
                      key_trust=opened.key_trust, notes=notes)


def refused_post(payload: dict, reason: str, notes: tuple[str, ...] = ()) -> ThreadPost:
    def as_uuid(value) -> uuid.UUID:
        try:
            return uuid.UUID(str(value))
        except ValueError:
            return crypto.ZERO_ID

    seq = payload.get("seq", 0)
    return ThreadPost(seq=seq if isinstance(seq, int) else 0, post_id=as_uuid(payload.get("post_id")),
                      kind=str(payload.get("kind", "")), author=as_uuid(payload.get("author")),
                      epoch=payload.get("epoch", 0) if isinstance(payload.get("epoch"), int) else 0,
                      created_at=str(payload.get("created_at", "")), header=None, body=None, post_hash=None,
                      error=reason, notes=notes)


def latest_details(thread: Iterable[ThreadPost]) -> ThreadPost | None:
    """The newest verified "details" post: what the lead's client re-posts in every new epoch, so that
    members who join later can see who the child is."""
    found = None
    for post in thread:
        if post.ok and post.kind == "details" and (found is None or post.seq > found.seq):
            found = post
    return found


# --- the HTTP client -----------------------------------------------------------------------------------


class TacClient:
    """One professional's client: an HTTP session that passed 2FA and their identity keys, in memory."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, kdf_floor: tuple[int, int] | None = None,
                 custodian_key_id: str | None = None, transport: httpx.BaseTransport | None = None,
                 post_retries: int = 3, state_file: str | Path | None = None):
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.kdf_floor = kdf_floor or DEFAULT_KDF_FLOOR
        # Pin the data controller's key (its id, hex, as `manage.py custodian_key_create` prints it) so a
        # server cannot hand out a custodian key of its own and read every epoch through it.
        self.custodian_key_id = custodian_key_id.lower() if custodian_key_id else None
        self.post_retries = post_retries
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, follow_redirects=False,
                                 transport=transport, headers={"Accept": "application/json"})
        self.identity: crypto.Identity | None = None
        self.me: uuid.UUID | None = None
        self.card: dict | None = None
        self._workspaces: dict[uuid.UUID, Workspace] = {}
        self._references: dict[str, uuid.UUID] = {}
        self._cards: dict[uuid.UUID, dict] = {}
        # The newest verified post per workspace, (seq, hash): what this client's next post follows.
        self._last: dict[uuid.UUID, tuple[int, bytes]] = {}
        # What this professional's clients remember (tacclient/memory.py), merged from the server's copy
        # and `state_file` (a local copy, for the CLI) at sign-in and saved as it grows.
        self.state_file = Path(state_file) if state_file else None
        self.memory = Memory()
        self._memory_version = 0
        # What the client found wrong that is not about one workspace (a saved state that was altered).
        self.warnings: list[str] = []
        self._pin: CustodianPin | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TacClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transport ---

    def _csrf_token(self) -> str:
        for cookie in self.http.cookies.jar:
            if cookie.name == "csrftoken":
                return cookie.value
        return ""

    def cookie_header(self) -> str:
        """The session's cookies, for the websocket handshake."""
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if method != "GET":
            # Django's CSRF check: the token (header, and the form field for forms) and a same-origin
            # Origin / Referer, as a browser sends them.
            headers.update({"X-CSRFToken": self._csrf_token(), "Origin": self.origin, "Referer": self.origin + "/"})
        try:
            return self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise TacNetworkError(f"cannot reach {self.base_url}: {exc.__class__.__name__}: {exc}") from exc

    def _api(self, method: str, path: str, **kwargs) -> dict:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 300:
            raise self._error(response)
        try:
            return response.json()
        except ValueError as exc:
            raise TacError(response.status_code, "bad_answer", "the server's answer is not JSON") from exc

    @staticmethod
    def _error(response: httpx.Response) -> TacError:
        status = response.status_code
        if 300 <= status < 400:
            return TacError(status, "redirect", f"the server redirected to {response.headers.get('location')}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "reason" in body:
            return TacError(status, str(body.get("error", "error")), str(body["reason"]))
        return TacError(status, "http_error", _page_reason(response.text) or f"HTTP {status}")

    # --- sign-in ---

    def sign_in(self, email: str, password: str, totp_code: str) -> uuid.UUID:
        """The browser's sign-in, in Python: salt and cost from prelogin, Argon2id and the two subkeys
        here, the auth key (never the password) to the sign-in form, a TOTP code to the 2FA form, then the
        sealed identity keys opened with the wrapping key. Returns the caller's public id."""
        self.http.cookies.clear()
        self.identity = self.me = self.card = None
        page = self._send("GET", "/accounts/sign-in/")
        if page.status_code != 200:
            raise self._error(page)
        pre = self._api("POST", "/accounts/api/v1/prelogin", json={"email": email})
        salt, ops, mem = b64d(pre["salt"]), int(pre["opslimit"]), int(pre["memlimit"])
        if pre.get("alg") != "argon2id13":
            raise TrustError(f"the server asks for an unknown key derivation {pre.get('alg')!r}")
        if ops < self.kdf_floor[0] or mem < self.kdf_floor[1]:
            raise TrustError(f"the server asks for a weaker password derivation ({ops} passes, {mem >> 20} MiB) than "
                             f"this client accepts ({self.kdf_floor[0]} passes, {self.kdf_floor[1] >> 20} MiB)")
        keys = crypto.derive_keys(password, salt, ops, mem)
        self._form("/accounts/sign-in/", {"email": email, "auth_key": keys.auth_password},
                   "the email address or password is not correct")
        location = self._form("/accounts/two-factor/", {"token": totp_code.strip()},
                              "the authenticator code is not correct")
        if "/two-factor/set-up/" in location:
            raise TacError(403, "2fa_enrolment_required",
                           "this account has no authenticator yet: sign in once in a browser to set one up")
        mine = self._api("GET", "/accounts/api/v1/me/keys")
        me = uuid.UUID(mine["public_id"])
        if (b64d(mine["salt"]), mine["opslimit"], mine["memlimit"]) != (salt, ops, mem):
            raise TrustError("the server's key derivation parameters changed during sign-in")
        try:
            identity = crypto.identity_unwrap(b64d(mine["wrapped_secret"]), keys.wrap_key,
                                              crypto.identity_wrap_ad(me, salt, ops, mem))
        except crypto.DecryptionError as exc:
            raise TrustError(str(exc)) from exc
        if identity.sign_public != b64d(mine["sign_public"]) or identity.box_public != b64d(mine["box_public"]):
            raise TrustError("the server's public keys for you are not the ones your private keys make")
        card = self._api("GET", "/api/v1/me")
        if card.get("id") != str(me) or b64d(card.get("sign_public") or "") != identity.sign_public:
            raise TrustError("the server's card for you does not carry your keys")
        self.identity, self.me, self.card = identity, me, card
        self._workspaces.clear()
        self._last.clear()
        self.memory = Memory()
        self._memory_load()
        return me

    def _form(self, path: str, fields: dict, default_reason: str) -> str:
        """POST a sign-in form as a browser does; a 302 means it passed. Returns where it redirects."""
        response = self._send("POST", path, data={**fields, "csrfmiddlewaretoken": self._csrf_token()},
                              headers={"Accept": "text/html"})
        if response.status_code == 302:
            return response.headers.get("location", "")
        reason = _page_reason(response.text) if response.status_code in (400, 403, 429) else None
        code = {400: "invalid", 403: "forbidden", 429: "locked_out"}.get(response.status_code, "http_error")
        raise TacError(response.status_code, code, reason or default_reason)

    def _identity(self) -> crypto.Identity:
        if self.identity is None or self.me is None:
            raise TacError(401, "not_signed_in", "sign in first")
        return self.identity

    # --- what this professional's clients remember (tacclient/memory.py) ---

    def _memory_load(self) -> None:
        """Merge the server's copy of the saved state (and the local file's) into this client's."""
        identity = self._identity()
        saved = self._api("GET", "/api/v1/me/state")
        self._memory_version = int(saved.get("version") or 0)
        if self._memory_version:
            try:
                self.warnings.extend(self.memory.merge(Memory.open(identity, self.me, saved)))
            except (crypto.DecryptionError, ValueError, KeyError, TrustError):
                self.warnings.append("your saved state on the server was altered or is not yours: it was ignored")
        if self.state_file is not None and self.state_file.exists():
            try:
                local = json.loads(self.state_file.read_text())
                self.warnings.extend(self.memory.merge(Memory.open(identity, self.me, local)))
            except (crypto.DecryptionError, ValueError, KeyError, TrustError):
                self.warnings.append(f"the saved state in {self.state_file} is not yours: it was ignored")

    def _memory_save(self) -> None:
        """Save the merged state as the next version; on a race, merge the newer copy and try again."""
        identity = self._identity()
        for _ in range(5):
            sealed = self.memory.seal(identity, self.me, self._memory_version + 1)
            try:
                self._api("POST", "/api/v1/me/state", json=sealed)
            except TacError as exc:
                if exc.status != 409:
                    raise
                self._memory_load()
                continue
            self._memory_version += 1
            if self.state_file is not None:
                self.state_file.parent.mkdir(parents=True, exist_ok=True)
                self.state_file.write_text(json.dumps(sealed))
                self.state_file.chmod(0o600)
            return
        raise TacError(409, "conflict", "the saved state kept changing while saving it: try again")

    def _remember(self, ws: Workspace, last: tuple[int, bytes] | None = None) -> None:
        if ws.keys is None:
            return
        before = self.memory.workspace(ws.id)
        after = remember(ws.keys, before, last)
        if after != before:
            self.memory.remember(ws.id, after)
            self._memory_save()

    # --- reads ---

    def workspaces(self) -> list[dict]:
        items = self._api("GET", "/api/v1/workspaces")["workspaces"]
        for item in items:
            self._references[item["reference"].upper()] = uuid.UUID(item["id"])
        return items

    def workspace_id(self, workspace: Workspace | uuid.UUID | str) -> uuid.UUID:
        """A workspace by object, id or reference (TAC-2026-0001)."""
        if isinstance(workspace, Workspace):
            return workspace.id
        if isinstance(workspace, uuid.UUID):
            return workspace
        text = str(workspace).strip()
        try:
            return uuid.UUID(text)
        except ValueError:
            pass
        if text.upper() not in self._references:
            self.workspaces()
        found = self._references.get(text.upper())
        if found is None:
            raise TacError(404, "not_found", f"no workspace {text} among yours")
        return found

    def workspace(self, workspace: Workspace | uuid.UUID | str) -> Workspace:
        """The workspace's detail, verified against signed state and this professional's saved state:
        manifest chain, epoch keys opened and checked, member keys trusted only as the record allows.
        Raises TrustError when the record contradicts what was signed or remembered."""
        self._identity()
        ws_id = self.workspace_id(workspace)
        detail = self._api("GET", f"/api/v1/workspaces/{ws_id}")
        if detail.get("id") != str(ws_id):
            raise TrustError(f"the server answered with another workspace than {ws_id}")
        ws = workspace_from_detail(detail, self.identity, my_id=self.me, memory=self.memory.workspace(ws_id),
                                   verified=self.memory.verified_fingerprints(),
                                   pin=self.custodian() if detail.get("my_state") == "active" else None)
        if ws.keys is not None and ws.keys.problems:
            raise TrustError("; ".join(ws.keys.problems))
        for pid, card in ws.cards.items():
            self._cards[pid] = card
        self._references[ws.reference.upper()] = ws.id
        self._workspaces[ws.id] = ws
        self._remember(ws)
        return ws

    def _cached(self, workspace) -> Workspace:
        ws_id = self.workspace_id(workspace)
        ws = self._workspaces.get(ws_id)
        return ws if ws is not None and ws.keys is not None else self.workspace(ws_id)

    def directory(self, q: str) -> list[dict]:
        """Professionals by name, agency or exact email address, with their public keys (bindings checked)."""
        people = self._api("GET", "/api/v1/directory", params={"q": q})["professionals"]
        for card in people:
            MemberKey.from_card(card)
            self._cards[uuid.UUID(card["id"])] = card
        return people

    def custodian(self) -> CustodianPin:
        """The data controller's keys as the deployment pinned them (a static file served with the
        scripts, never an API answer), each successor signed by the key before it; with
        `custodian_key_id` set, its newest key must also be that one."""
        if self._pin is not None:
            return self._pin
        response = self._send("GET", PIN_PATH)
        if response.status_code != 200:
            raise TrustError(f"the custodian pin {PIN_PATH} is missing (HTTP {response.status_code}): a site "
                             f"administrator runs `manage.py custodian_key_create`")
        try:
            pin = CustodianPin.parse(response.json())
        except (ValueError, KeyError, TypeError) as exc:
            raise TrustError(f"the custodian pin is not valid: {exc}") from exc
        if self.custodian_key_id and pin.current[0].hex() != self.custodian_key_id:
            raise TrustError(f"the deployment's custodian key {pin.current[0].hex()[:16]} is not the pinned one "
                             f"{self.custodian_key_id[:16]}")
        self._pin = pin
        return pin

    def professional(self, who: uuid.UUID | str | dict) -> dict:
        """A professional's card (with keys): a card as is, an email address through the directory, or a
        public id this client has already seen (in the directory or a workspace's members)."""
        if isinstance(who, dict):
            MemberKey.from_card(who)
            return who
        text = str(who).strip()
        if "@" in text:
            matches = [c for c in self.directory(text) if c.get("sign_public")]
            if len(matches) != 1:
                raise TacError(404, "not_found", f"{'no' if not matches else 'more than one'} professional "
                                                 f"found for {text}")
            return matches[0]
        try:
            pid = uuid.UUID(text)
        except ValueError as exc:
            raise TacError(400, "invalid", f"{text!r} is neither an email address nor a public id") from exc
        card = self._cards.get(pid)
        if card is None:
            # The API has no look-up by id (docs/protocol.md): find them in the directory first.
            raise TacError(404, "not_found", f"professional {pid} is unknown here: look them up with directory() first")
        return card

    # --- membership ---

    def create_workspace(self, details: dict) -> dict:
        """Open a workspace: epoch 1 wrapped for the caller (as lead) and the pinned custodian key, then the
        child's details as its first, encrypted post, bound to the workspace's id and reference. Returns
        {"id", "reference"}."""
        identity = self._identity()
        if not isinstance(details, dict):
            raise ValueError("details must be a dict")
        if details.get("nhs_number") and not nhs_number_valid(str(details["nhs_number"])):
            raise ValueError("the NHS number is not valid (ten digits with a modulus 11 check digit)")
        pin = self.custodian()
        ws_id = uuid.uuid4()
        me = MemberKey(self.me, identity.sign_public, identity.box_public, "lead")
        bundle, _key = epoch_bundle(lead=identity, workspace_id=ws_id, epoch=1, prev_manifest_hash=crypto.ZERO_HASH,
                                    members=[me], custodian=pin.current)
        answer = self._api("POST", "/api/v1/workspaces", json={"id": str(ws_id), "epoch": bundle})
        self._references[answer["reference"].upper()] = ws_id
        self.post(ws_id, "details", {**details, "workspace": str(ws_id), "reference": answer["reference"]})
        return answer

    def invite(self, workspace, member: uuid.UUID | str | dict, role: str = "member", *,
               safety_number: str | None = None) -> dict:
        """Invite a professional, signing the invitation for their current key, the role, the current
        epoch and a fresh nonce, so the lead's client can later admit exactly who it invited, once.
        `safety_number`: the digits they read out to you (by phone or in person); it must be their key's,
        and it is remembered, so rotate() admits them once they accept. Without it, admit them later with
        rotate(admit=[...]) after comparing."""
        identity = self._identity()
        ws = self.workspace(workspace)
        card = self.professional(member)
        key = MemberKey.from_card(card, role)
        if safety_number is not None:
            self._remember_compared(key, safety_number, card.get("name", card["id"]))
        nonce = os.urandom(crypto.INVITE_NONCE_BYTES)
        return self._api("POST", f"/api/v1/workspaces/{ws.id}/members",
                         json={"member": card["id"], "role": role, "invite_nonce": b64e(nonce),
                               "invite_signature": invite_signature(identity, ws.id, key, role,
                                                                    ws.keys.current_epoch, nonce)})

    def accept(self, workspace) -> dict:
        return self._membership(workspace, "accept")

    def decline(self, workspace) -> dict:
        return self._membership(workspace, "decline")

    def leave(self, workspace) -> dict:
        return self._membership(workspace, "leave")

    def _membership(self, workspace, action: str) -> dict:
        ws_id = self.workspace_id(workspace)
        self._workspaces.pop(ws_id, None)
        return self._api("POST", f"/api/v1/workspaces/{ws_id}/membership/{action}", json={})

    def rotate(self, workspace, *, remove: uuid.UUID | str | None = None, new_lead: uuid.UUID | str | None = None,
               admit: Iterable[uuid.UUID | str] | None = None, deputies: Iterable[uuid.UUID | str | dict] | None = None,
               repost_details: bool = True) -> RotateResult:
        """Start a new key epoch (the lead, or a deputy). Everyone in the signed membership stays, with the
        newest key the team has confirmed for them; `remove` goes at once; `new_lead` takes the lead role;
        `deputies` (the lead only) names every deputy from now. Accepted invitees with a valid invitation
        join: those in `admit` (naming them says you compared their safety numbers with them), or, when it
        is None, those whose safety number you gave invite(). A lead the custodians appointed takes the
        lead in this epoch; a deputy takes it only when asked (`new_lead` = themselves), since only the
        server says the lead has left (take_over_due). Then the child's
        latest details are re-posted in the new epoch, so members who join now can see them."""
        identity = self._identity()
        ws = self.workspace(workspace)
        remove_id, new_lead_id = self._person_id(remove), self._person_id(new_lead)
        signer = ws.keys.signer_role(self.me)
        if signer is None:
            raise TacError(403, "forbidden", "only the lead professional or a deputy can start a new key epoch")
        if new_lead_id is None and signer == "appointed" and ws.detail.get("lead") == str(self.me):
            new_lead_id = self.me  # the custodians appointed me (checked on the pin): I take the lead now
        deputy_ids = None if deputies is None else {self._person_id(d) for d in deputies}
        warnings_first: list[str] = []
        if admit is None:
            # Only invitees whose safety number this professional compared (invite(safety_number=...)).
            admit_ids = set()
            for pid, card in ws.cards.items():
                if card.get("state") != "accepted" or not card.get("sign_public"):
                    continue
                if self.memory.has_verified(pid, MemberKey.from_card(card).fingerprint):
                    admit_ids.add(pid)
                else:
                    warnings_first.append(f"{card.get('name', pid)} accepted: compare their safety number with them, "
                                          f"then admit them (rotate(admit=[...]))")
        else:
            admit_ids = {self._person_id(a) for a in admit}
        plan = plan_epoch_members(ws.keys, ws.cards, my_id=self.me, my_fingerprint=identity.fingerprint(),
                                  remove=remove_id, new_lead=new_lead_id, admit=admit_ids, deputies=deputy_ids)
        pin = self.custodian()
        if pin.current[0] != ws.keys.current.custodian_id:
            plan.warnings.append("the data controller's custodian key has changed since the last epoch (the pin "
                                 "vouches for the new one)")
        record = self.record(ws.id) if repost_details else None
        number = ws.keys.current_epoch + 1
        bundle, _key = epoch_bundle(lead=identity, workspace_id=ws.id, epoch=number,
                                    prev_manifest_hash=ws.keys.manifest_hashes[ws.keys.current_epoch],
                                    members=plan.members, custodian=pin.current)
        body: dict[str, Any] = {"epoch": bundle}
        if remove_id:
            body["remove"] = str(remove_id)
        if new_lead_id:
            body["new_lead"] = str(new_lead_id)
        if deputy_ids is not None:
            body["deputies"] = sorted(str(d) for d in deputy_ids)
        answer = self._api("POST", f"/api/v1/workspaces/{ws.id}/epochs", json=body)
        self.workspace(ws.id)
        reposted = None
        details = record.latest_details() if record is not None else None
        if details is not None:
            reposted = self.post(ws.id, "details", details.body)
        return RotateResult(epoch=answer["epoch"], members=[m.public_id for m in plan.members],
                            admitted=plan.admitted, details_reposted=reposted, warnings=warnings_first + plan.warnings)

    def take_over_due(self, workspace) -> str | None:
        """Why this deputy should take the lead, in the server's words, or None: the server names them
        lead while the signed record still names a lead it says has left. Nothing signed proves that the
        lead left, so a client takes over only when its professional says so (rotate(new_lead=me))."""
        ws = self.workspace(workspace)
        lead = ws.keys.lead()
        card = ws.cards.get(lead, {})
        if (ws.keys.signer_role(self.me) != "deputy" or ws.detail.get("lead") != str(self.me)
                or card.get("state") == "active" and card.get("is_active", True)):
            return None
        left = f" on {str(card['left_at'])[:10]}" if card.get("left_at") else ""
        return f"Team Around the Child says {card.get('name', lead)} left{left}"

    def _remember_compared(self, key: MemberKey, safety_number: str, name: str) -> None:
        if " ".join(safety_number.split()) != crypto.safety_number(key.fingerprint):
            raise TrustError(f"that safety number is not the one {name}'s key makes: do not admit it")
        if self.memory.verify(key.public_id, key.fingerprint, now_ms()):
            self._memory_save()

    def confirm_key(self, workspace, member: uuid.UUID | str | dict, safety_number: str | None = None) -> int:
        """After comparing a colleague's safety number with them in person or by phone: remember it, sign a
        confirmation the team's clients can check, and give them the epoch keys they are entitled to. If
        `safety_number` is given it must be the one their current key makes. Returns the wraps stored."""
        identity = self._identity()
        ws = self.workspace(workspace)
        pid = self._person_id(member)
        card = ws.cards.get(pid)
        if card is None or not card.get("sign_public"):
            raise TacError(404, "not_found", f"{pid} is not a member of {ws.reference} with keys")
        key = MemberKey.from_card(card)
        if safety_number is not None:
            self._remember_compared(key, safety_number, card.get("name", pid))
        confirmation = key_confirmation(identity, self.me, key)
        if self.memory.verify(pid, key.fingerprint, confirmation["confirmed_ms"]):
            self._memory_save()
        self._api("POST", f"/api/v1/workspaces/{ws.id}/key-confirmations", json=confirmation)
        return sum(self.rekey_pending(ws.id).values())

    def rekey_pending(self, workspace) -> dict[uuid.UUID, int]:
        """Re-wrap the epoch keys this client holds for members with new keys (after a password reset), as
        the workspace detail's `needs_rekey` lists them, but only for keys this client trusts (a member
        confirmed them). Returns {member: wraps stored}."""
        ws = self.workspace(workspace)
        done: dict[uuid.UUID, int] = {}
        for item in ws.detail.get("needs_rekey", []):
            pid = uuid.UUID(item["member"])
            card = ws.cards.get(pid)
            if card is None or card.get("state") != "active" or not card.get("sign_public"):
                continue
            key = MemberKey.from_card(card)
            if ws.keys.trust(pid, key.fingerprint) is None:
                continue  # nobody has confirmed this key: never wrap for it
            wraps = [{"epoch": n, "sealed": b64e(crypto.epoch_key_wrap(ws.id, n, ws.keys.epoch_keys[n], key.box_public))}
                     for n in item["epochs"] if n in ws.keys.epoch_keys]
            if wraps:
                done[pid] = self._api("POST", f"/api/v1/workspaces/{ws.id}/rekey",
                                      json={"member": str(pid), "wraps": wraps})["wrapped"]
        return done

    def share_history(self, workspace, member: uuid.UUID | str | dict, reason: str,
                      since: dt.date | None = None) -> int:
        """The lead shares the earlier record with a member admitted later: the epochs before they joined
        (those that were current on or after `since`, if given), wrapped for the key the signed manifest
        lists for them, and a signed post saying so, with the reason. Returns the wraps stored."""
        ws = self.workspace(workspace)
        pid = self._person_id(member)
        if ws.lead_id != self.me:
            raise TacError(403, "forbidden", "only the lead professional shares the earlier record")
        listed = ws.keys.members().get(pid)
        if listed is None:
            raise TacError(400, "invalid", f"{ws.name_of(pid)} is not in the signed membership")
        first = min(n for n, m in ws.keys.manifests.items() if pid in {x.public_id for x in m.members})
        epochs = history_epochs(ws.keys, first, since)
        if not epochs:
            return 0
        wraps = [{"epoch": n, "sealed": b64e(crypto.epoch_key_wrap(ws.id, n, ws.keys.epoch_keys[n], listed.box_public))}
                 for n in epochs]
        count = self._api("POST", f"/api/v1/workspaces/{ws.id}/history", json={"member": str(pid), "wraps": wraps})
        self.post(ws.id, "history_shared", {"member": str(pid), "epochs": epochs, "reason": reason,
                                             "since": since.isoformat() if since else None})
        return count["wrapped"]

    # --- posts ---

    def seal(self, workspace, kind: str, body: dict, *, post_id: uuid.UUID | None = None, **fields) -> dict:
        """Encrypt and sign a post for the current epoch: the envelope {header, nonce, ciphertext,
        signature, post_id} to send over HTTP or in a post.create frame. `fields`: parent, target, rag,
        owner (public id), due (date), status. It names the newest post this client has verified (read()
        or its own last post), reading the newest post first if it has seen none."""
        identity = self._identity()
        ws = self._cached(workspace)
        epoch = ws.keys.current_epoch
        key = ws.keys.epoch_keys.get(epoch)
        if key is None:
            raise TacError(409, "conflict", f"this client holds no key for the current epoch ({epoch}): ask a member "
                                            f"to compare your safety number and admit your key, or the lead to admit you")
        if isinstance(fields.get("due"), str):
            fields["due"] = dt.date.fromisoformat(fields["due"])
        for name in ("parent", "target", "owner"):
            if isinstance(fields.get(name), str):
                fields[name] = uuid.UUID(fields[name])
        if ws.id not in self._last and ws.detail.get("last_seq"):
            # Never seen this thread in this session: assemble it first, so that a record rolled back
            # below what this professional's devices saw stops the post (record() raises nothing; it says).
            record = self.record(ws.id)
            if record.problems:
                raise TrustError("; ".join(record.problems))
            ws = self._cached(ws.id)
        return seal_post(identity=identity, author_id=self.me, workspace_id=ws.id, epoch=epoch, epoch_key=key,
                         kind=kind, body=body, prev=self._last.get(ws.id), post_id=post_id, **fields)

    def post(self, workspace, kind: str, body: dict, **fields) -> PostReceipt:
        """Seal and send a post. A network error (the answer may have been lost) is retried with the same
        sealed bytes, which the server stores once; a new epoch since the keys were cached is re-sealed."""
        too_long = [k for k, v in body.items() if isinstance(v, str) and len(v) > MAX_TEXT_CHARS]
        if too_long:  # only clients can see inside a body (docs/protocol.md, "Limits")
            raise ValueError(f"{', '.join(too_long)} must be {MAX_TEXT_CHARS:,} characters or fewer")
        ws_id = self.workspace_id(workspace)
        envelope = self.seal(ws_id, kind, body, **fields)
        resealed = False
        attempt = 0
        while True:
            try:
                answer = self._api("POST", f"/api/v1/workspaces/{ws_id}/posts", json=envelope)
                break
            except TacNetworkError:
                attempt += 1
                if attempt > self.post_retries:
                    raise
                time.sleep(min(0.25 * 2 ** (attempt - 1), 2.0))
            except TacError as exc:
                # A new epoch started since this client cached the keys: seal again (same post id; the
                # refused bytes were not stored) for the current one, once.
                if exc.status != 409 or resealed or "epoch" not in exc.reason:
                    raise
                cached = self._workspaces.get(ws_id)
                if cached is None or self.workspace(ws_id).keys.current_epoch == cached.keys.current_epoch:
                    raise
                resealed = True
                envelope = self.seal(ws_id, kind, body, post_id=uuid.UUID(envelope["post_id"]), **fields)
        post_hash = crypto.post_hash(b64d(envelope["header"]), b64d(envelope["nonce"]), b64d(envelope["ciphertext"]))
        self._last[ws_id] = (answer["seq"], post_hash)
        ws = self._workspaces.get(ws_id)
        if ws is not None:
            self._remember(ws, self._last[ws_id])
        return PostReceipt(seq=answer["seq"], post_id=uuid.UUID(answer["post_id"]), created=answer["created"])

    def concern(self, workspace, category: str, rag: str, detail: str) -> PostReceipt:
        if rag not in RAGS:
            raise ValueError(f"rag must be one of {', '.join(RAGS)}")
        return self.post(workspace, "concern", {"category": category, "detail": detail}, rag=rag)

    def action(self, workspace, title: str, detail: str = "", owner: uuid.UUID | str | dict | None = None,
               due: dt.date | str | None = None) -> PostReceipt:
        if owner is None:
            raise ValueError("an action needs an owner")
        if len(title) > MAX_TITLE_CHARS:
            raise ValueError(f"the title must be {MAX_TITLE_CHARS} characters or fewer")
        owner_id = self.member_id(workspace, owner)
        return self.post(workspace, "action", {"title": title, "detail": detail}, owner=owner_id, due=due,
                         status="open")

    def update(self, workspace, text: str) -> PostReceipt:
        return self.post(workspace, "update", {"text": text})

    def decision(self, workspace, text: str) -> PostReceipt:
        return self.post(workspace, "decision", {"text": text})

    def acknowledge(self, workspace, post_id: uuid.UUID | str) -> PostReceipt:
        return self.post(workspace, "acknowledgement", {}, target=uuid.UUID(str(post_id)))

    def complete(self, workspace, action_id: uuid.UUID | str, note: str = "") -> PostReceipt:
        return self.post(workspace, "action_status", {"note": note}, target=uuid.UUID(str(action_id)), status="done")

    # An action's life (tacprotocol/actions.py): who may make which change, and when, is the server's to
    # refuse (403 the wrong person, 409 the wrong moment) and every reader's to ignore. What only a client
    # can see is its to require: a note for done, a reason for reopening or cancelling.

    def action_status(self, workspace, action_id: uuid.UUID | str, status: str, note: str = "", *,
                      owner: uuid.UUID | str | dict | None = None) -> PostReceipt:
        """Post a change of an action's status (one of actions.CHANGES); `owner` only for "reassigned"."""
        if status not in actions.CHANGES:
            raise ValueError(f"an action status is one of {', '.join(actions.CHANGES)}")
        if status in NOTE_REQUIRED and not note.strip():
            raise ValueError(NOTE_REQUIRED[status])
        if (owner is None) == (status == "reassigned"):
            raise ValueError("a reassignment, and only a reassignment, names the new owner")
        fields = {"owner": self.member_id(workspace, owner)} if owner is not None else {}
        return self.post(workspace, "action_status", {"note": note}, target=uuid.UUID(str(action_id)), status=status,
                         **fields)

    def accept_action(self, workspace, action_id: uuid.UUID | str, note: str = "") -> PostReceipt:
        """The owner takes the action on."""
        return self.action_status(workspace, action_id, "accepted", note)

    def complete_action(self, workspace, action_id: uuid.UUID | str, note: str) -> PostReceipt:
        """The owner (or the lead) says it is done, and what was done."""
        return self.action_status(workspace, action_id, "done", note)

    def confirm_action(self, workspace, action_id: uuid.UUID | str, note: str = "") -> PostReceipt:
        """The lead confirms a done action: it is finished."""
        return self.action_status(workspace, action_id, "confirmed", note)

    def reopen_action(self, workspace, action_id: uuid.UUID | str, reason: str) -> PostReceipt:
        """The owner or the lead reopens a done or cancelled action, saying why."""
        return self.action_status(workspace, action_id, "reopened", reason)

    def reassign_action(self, workspace, action_id: uuid.UUID | str, new_owner: uuid.UUID | str | dict,
                        note: str = "") -> PostReceipt:
        """The lead gives the action to another member (card, email address or public id), who accepts it."""
        return self.action_status(workspace, action_id, "reassigned", note, owner=new_owner)

    def cancel_action(self, workspace, action_id: uuid.UUID | str, reason: str) -> PostReceipt:
        """The owner or the lead cancels an action, saying why."""
        return self.action_status(workspace, action_id, "cancelled", reason)

    def change_rating(self, workspace, concern_post_id: uuid.UUID | str, rag: str, reason: str) -> PostReceipt:
        """The concern's author or the lead changes its RAG rating to `rag`, saying why (the reason is
        encrypted; the new rating is in the signed header). Who may, and that the rating is another than
        the concern has, is the server's to refuse and every reader's to ignore (tacprotocol/record.py); the
        reason, which only a client can see, is this client's to require."""
        if rag not in RAGS:
            raise ValueError(f"rag must be one of {', '.join(RAGS)}")
        if not reason.strip():
            raise ValueError(RATING_REASON_REQUIRED)
        return self.post(workspace, "rating_change", {"reason": reason}, target=uuid.UUID(str(concern_post_id)),
                         rag=rag)

    def _person_id(self, who: uuid.UUID | str | dict | None) -> uuid.UUID | None:
        """A professional's public id from a card, an email address (through the directory) or an id."""
        if who is None or who == "":
            return None
        if isinstance(who, uuid.UUID):
            return who
        text = str(who.get("id") if isinstance(who, dict) else who).strip()
        if "@" in text:
            text = self.professional(text)["id"]
        try:
            return uuid.UUID(text)
        except ValueError as exc:
            raise TacError(400, "invalid", f"{text!r} is neither an email address nor a public id") from exc

    def member_id(self, workspace, who: uuid.UUID | str | dict) -> uuid.UUID:
        """A member of the workspace's signed membership, by card, email address or public id."""
        ws = self._cached(workspace)
        pid = self._person_id(who)
        if pid not in ws.keys.members():
            ws = self.workspace(ws.id)
        if pid not in ws.keys.members():
            name = (self._cards.get(pid) or {}).get("name", str(pid))
            raise TacError(400, "invalid", f"{name} is not an active member of {ws.reference}")
        return pid

    def record(self, workspace) -> Record:
        """The whole thread as this reader assembles it (tacprotocol.record): every post verified and opened
        or refused, gaps, reordering and replays found, state applied in signed causal order, and checked
        against what this professional's devices saw before (`problems`, which stop posting)."""
        ws = self.workspace(workspace)
        if not ws.active:
            raise TacError(403, "forbidden", f"you are not an active member of {ws.reference} yet")
        record = Record(ws.keys, reference=ws.reference, name_of=ws.name_of)
        cursor = 0
        while True:
            page = self._api("GET", f"/api/v1/workspaces/{ws.id}/posts",
                             params={"after": cursor, "limit": POST_PAGE})["posts"]
            for payload in page:
                record.add(payload)
                if isinstance(payload.get("seq"), int):
                    cursor = max(cursor, payload["seq"])
            if len(page) < POST_PAGE:
                break
        record.check_memory(self.memory.workspace(ws.id))
        if record.last is not None and not record.problems:
            self._last[ws.id] = record.last
            self._remember(ws, record.last)
        return record

    def read(self, workspace, after: int = 0, *, strict: bool = True) -> list[ThreadPost]:
        """Posts after `after`, in order, each verified (signed membership, a trusted key, the signature)
        and decrypted, from the whole thread's record (so gaps and reordering are found). With strict, a
        refused post or a rolled-back record raises TrustError; otherwise refused posts come back with
        `error` set, and every post carries its `notes`."""
        record = self.record(workspace)
        if strict and record.problems:
            raise TrustError("; ".join(record.problems))
        out = []
        for entry in record.entries:
            if entry.seq <= after:
                continue
            if strict and not entry.ok:
                raise TrustError(f"post {entry.seq}: {entry.refused}")
            out.append(thread_post(entry))
        return out

    def mark_read(self, workspace, seq: int) -> None:
        """Move this member's read position (unread counts) up to `seq`."""
        self._api("POST", f"/api/v1/workspaces/{self.workspace_id(workspace)}/read", json={"seq": seq})

    def open_post(self, workspace, payload: dict) -> ThreadPost:
        """Verify and decrypt one post payload (e.g. from a post.created frame), refreshing the workspace's
        keys once if the post is from an epoch this client has not seen yet."""
        ws = self._cached(workspace)
        if payload.get("epoch") not in ws.keys.epoch_keys:
            ws = self.workspace(ws.id)
        return open_payload(payload, ws)

    def live(self, **connect_options) -> contextlib.AbstractAsyncContextManager[LiveSocket]:
        """`async with client.live() as sock:` — a LiveSocket on this client's session."""

        @contextlib.asynccontextmanager
        async def manager():
            sock = await LiveSocket.connect(self, **connect_options)
            try:
                yield sock
            finally:
                await sock.close()

        return manager()


def _page_reason(text: str) -> str | None:
    """The first message of a GOV.UK error summary (or a page's heading) in an HTML answer."""
    match = re.search(r'govuk-error-summary__list">\s*<li>(?:<a [^>]*>)?(.*?)(?:</a>)?</li>', text, re.S)
    if match is None:
        match = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
    if match is None:
        return None
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() or None


# --- the websocket --------------------------------------------------------------------------------------


class LiveSocket:
    """The live thread over /ws/ (docs/protocol.md), for scripts and benchmarks. Lean on purpose: frames
    are JSON dicts, nothing is verified or decrypted unless `open()` is asked to.

        async with client.live() as sock:
            await sock.subscribe(workspace_id, after_seq=0)
            accepted = await sock.send_post({"workspace": str(workspace_id), "post": client.seal(...)})
            async for frame in sock:          # post.created, epoch.created, membership.*, keys.added ...
                if frame["type"] == "post.created":
                    post = await sock.open(frame)

    Answers to this socket's own frames (subscribed, post.accepted, pong, and error frames with an id)
    resolve the call that sent them; every other frame goes to the iterator, in arrival order."""

    _ANSWERS = frozenset({"subscribed", "unsubscribed", "post.accepted", "pong", "error"})

    def __init__(self, client: TacClient | None, connection, hello: dict):
        self.client = client
        self.connection = connection
        self.user = hello.get("user")
        self.close_code: int | None = None
        self._frames: asyncio.Queue = asyncio.Queue()
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, client: TacClient, *, timeout: float = 10.0, **options) -> LiveSocket:
        """Open /ws/ with the client's session cookie and its Origin; waits for `hello`."""
        return await cls.connect_session(client.base_url, client.cookie_header(), client=client, timeout=timeout,
                                         **options)

    @classmethod
    async def connect_session(cls, base_url: str, cookie: str, *, client: TacClient | None = None,
                              timeout: float = 10.0, **options) -> LiveSocket:
        """Open /ws/ with a Cookie header of a session that passed 2FA (e.g. `sessionid=...`), for
        benchmarks that hold many sessions but no TacClient. Without a client, `open()` and `post()`
        are unavailable; frames are sent and received as they are. `options` go to websockets' connect."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        parts = urlsplit(base_url)
        uri = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/ws/"
        options.setdefault("open_timeout", timeout)
        options.setdefault("max_size", 4 * 1024 * 1024)
        try:
            connection = await connect(uri, origin=f"{parts.scheme}://{parts.netloc}",
                                       additional_headers={"Cookie": cookie}, **options)
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise TacError(status, "forbidden", f"the server refused the websocket (HTTP {status}): the session has "
                                                f"not passed 2FA, has ended, or the Origin is not allowed") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise TacNetworkError(f"cannot open {uri}: {exc}") from exc
        try:
            hello = json.loads(await asyncio.wait_for(connection.recv(), timeout))
        except Exception as exc:
            await connection.close()
            raise TacNetworkError(f"no hello from {uri}: {exc!r}") from exc
        if hello.get("type") != "hello":
            await connection.close()
            raise TacError(None, "bad_answer", f"expected hello, got {hello.get('type')!r}")
        return cls(client, connection, hello)

    def _workspace_id(self, workspace) -> str:
        if self.client is not None:
            return str(self.client.workspace_id(workspace))
        return str(workspace.id if isinstance(workspace, Workspace) else uuid.UUID(str(workspace)))

    def _need_client(self) -> TacClient:
        if self.client is None:
            raise TacError(None, "no_client", "this socket has no TacClient: it cannot seal or open posts")
        return self.client

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        reason = "the socket closed"
        try:
            async for text in self.connection:
                try:
                    frame = json.loads(text)
                except ValueError:
                    continue
                frame_id = frame.get("id")
                if frame.get("type") in self._ANSWERS and frame_id is not None and frame_id in self._pending:
                    future = self._pending.pop(frame_id)
                    if future.done():
                        continue
                    if frame["type"] == "error":
                        code = frame.get("code", "invalid")
                        future.set_exception(TacError(WS_ERROR_STATUS.get(code, 400), code, frame.get("reason", "")))
                    else:
                        future.set_result(frame)
                    continue
                if frame.get("type") == "posts":
                    # A page of what was missed: handed on as one post.created frame per post, in order.
                    for post in frame.get("posts", []):
                        self._frames.put_nowait({"type": "post.created", "workspace": frame.get("workspace"),
                                                 "post": post})
                    continue
                self._frames.put_nowait(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            if self.close_code == 4403:
                reason = "the server closed the socket: this session is no longer entitled (code 4403)"
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(TacError(None, "closed", reason))
            self._pending.clear()
            self._frames.put_nowait(None)

    async def request(self, frame: dict, *, timeout: float = 10.0) -> dict:
        """Send a frame and wait for the answer with its id (`id` is set if missing). Error frames raise
        TacError(400/403/409, code, reason)."""
        if self._reader.done():
            raise TacError(None, "closed", "the socket is closed")
        frame_id = frame.setdefault("id", f"c{next(self._ids)}")
        future = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        try:
            await self.connection.send(json.dumps(frame))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(frame_id, None)

    async def send(self, frame: dict) -> None:
        """Send a frame without waiting for an answer (e.g. `read`)."""
        await self.connection.send(json.dumps(frame))

    async def subscribe(self, workspace, after_seq: int = 0, *, timeout: float = 30.0) -> dict:
        """Join a workspace's live thread. The posts after `after_seq` arrive first (the server sends them
        in `posts` frames; the iterator yields one post.created frame per post), then this returns the
        `subscribed` answer with `last_seq`."""
        return await self.request({"type": "subscribe", "workspace": self._workspace_id(workspace),
                                   "after_seq": after_seq},
                                  timeout=timeout)

    async def unsubscribe(self, workspace) -> dict:
        return await self.request({"type": "unsubscribe", "workspace": self._workspace_id(workspace)})

    async def send_post(self, frame: dict, *, timeout: float = 10.0) -> dict:
        """Send a post.create frame ({"workspace", "post": envelope}; `type` and `id` are filled in, the id
        being the post id) and return the `post.accepted` answer."""
        frame = {**frame, "type": "post.create"}
        frame.setdefault("id", frame["post"].get("post_id") or f"c{next(self._ids)}")
        frame["workspace"] = str(frame["workspace"])
        return await self.request(frame, timeout=timeout)

    async def post(self, workspace, kind: str, body: dict, **fields) -> dict:
        """Seal (with the client's cached keys) and send a post over the socket."""
        envelope = self._need_client().seal(workspace, kind, body, **fields)
        return await self.send_post({"workspace": self._workspace_id(workspace), "post": envelope})

    async def mark_read(self, workspace, seq: int) -> None:
        await self.send({"type": "read", "workspace": self._workspace_id(workspace), "seq": seq})

    async def ping(self, *, timeout: float = 10.0) -> dict:
        return await self.request({"type": "ping"}, timeout=timeout)

    async def next(self, timeout: float | None = None) -> dict:
        """The next incoming frame; TacError("closed") once the socket has closed."""
        frame = await asyncio.wait_for(self._frames.get(), timeout)
        if frame is None:
            self._frames.put_nowait(None)
            raise TacError(None, "closed", "the socket is closed")
        return frame

    def __aiter__(self) -> AsyncIterator[dict]:
        return self

    async def __anext__(self) -> dict:
        frame = await self._frames.get()
        if frame is None:
            self._frames.put_nowait(None)
            raise StopAsyncIteration
        return frame

    async def open(self, frame: dict) -> ThreadPost:
        """Verify and decrypt a post.created frame's post. Runs the HTTP refresh (if the epoch is new to
        this client) in a thread, so the event loop keeps going."""
        client = self._need_client()
        ws = client._workspaces.get(uuid.UUID(frame["workspace"]))
        post = frame["post"]
        if ws is not None and ws.keys is not None and post.get("epoch") in ws.keys.epoch_keys:
            return open_payload(post, ws)
        return await asyncio.to_thread(client.open_post, frame["workspace"], post)

    async def close(self) -> None:
        await self.connection.close()
        with contextlib.suppress(Exception):
            await self._reader

    async def __aenter__(self) -> LiveSocket:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
