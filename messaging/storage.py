"""Every hand-written statement of the messaging app: the live path's (storing a post, checking membership
when a socket subscribes or forwards, reading a backlog page). Everything else uses the ORM.
teamaroundchild/sql.py says why these are hand-written and how values are prepared.

Table and column names come from the models (sql.table / sql.column), never from input and never typed
out, so a renamed field or table changes the SQL with it. Each function is one statement."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.http import Http404

from accounts.models import IdentityKey, Professional
from audit import storage as audit_storage
from audit.models import AuditChain, AuditEvent, workspace_chain
from teamaroundchild import sql

from .models import Epoch, EpochWrap, Membership, Post, Workspace


def _t(model) -> str:
    return sql.table(model)


def _c(model, name: str, alias: str = "") -> str:
    return f"{alias}.{sql.column(model, name)}" if alias else sql.column(model, name)


# --- the active-member rule ---------------------------------------------------------------------------


@functools.cache
def active_member_sql(workspace_column: str) -> str:
    """access.py's one rule (an active membership of an account that is not offboarded) as an SQL
    condition on `workspace_column`. One parameter: the professional's id. tests/messaging/test_access.py
    checks it agrees with the ORM form (access.active_member_terms) over every membership state."""
    m, p = "rule_m", "rule_p"
    return (f"EXISTS (SELECT 1 FROM {_t(Membership)} {m} JOIN {_t(Professional)} {p} "
            f"ON {_c(Professional, 'id', p)} = {_c(Membership, 'professional', m)} "
            f"WHERE {_c(Membership, 'workspace', m)} = {workspace_column} "
            f"AND {_c(Membership, 'professional', m)} = %s "
            f"AND {_c(Membership, 'state', m)} = '{Membership.State.ACTIVE.value}' "
            f"AND {_c(Professional, 'is_active', p)} = TRUE)")


def is_active_member(professional_id: int, workspace_id: int) -> bool:
    return bool(sql.fetch_one(f"SELECT {active_member_sql('%s')}", [workspace_id, professional_id])[0])


_SOCKET_FIELDS = ("id", "public_id", "roster_version")


def workspace_if_member(professional_id: int, public_id: uuid.UUID | str) -> Workspace | None:
    """The workspace with this public id if the professional is an active member of it; one snapshot.
    Only the fields a socket uses are loaded (others load on access, as with QuerySet.only())."""
    row = sql.fetch_one(
        f"SELECT {', '.join(_c(Workspace, f, 'w') for f in _SOCKET_FIELDS)} FROM {_t(Workspace)} w "
        f"WHERE {_c(Workspace, 'public_id', 'w')} = %s AND {active_member_sql(_c(Workspace, 'id', 'w'))}",
        [sql.param(Workspace, "public_id", public_id), professional_id])
    return sql.instance(Workspace, _SOCKET_FIELDS, row) if row is not None else None


# --- storing a post -----------------------------------------------------------------------------------

_LOCKED_FIELDS = ("id", "public_id", "lead_id", "status", "current_rag", "current_epoch", "rotation_required", "last_seq",
                  "roster_version", "roster_keys_checked")
_KEY_FIELDS = ("id", "version", "sign_public", "box_public")


def _current_key_sql(*columns: str) -> str:
    """A subquery: the columns of a professional's current identity key (the newest not replaced). One
    parameter: the professional's id."""
    return (f"SELECT {', '.join(_c(IdentityKey, c) for c in columns)} FROM {_t(IdentityKey)} "
            f"WHERE {_c(IdentityKey, 'professional')} = %s AND {_c(IdentityKey, 'replaced_at')} IS NULL "
            f"ORDER BY {_c(IdentityKey, 'version')} DESC LIMIT 1")


def _current_epoch_sql(workspace: str) -> str:
    """A subquery: the id of the current epoch of the workspace row aliased `workspace`."""
    return (f"SELECT {_c(Epoch, 'id')} FROM {_t(Epoch)} WHERE {_c(Epoch, 'workspace')} = {_c(Workspace, 'id', workspace)} "
            f"AND {_c(Epoch, 'number')} = {_c(Workspace, 'current_epoch', workspace)}")


@functools.cache
def _lock_for_post_sql() -> str:
    """The workspace's row locked first, then its audit chain's (every service's lock order: audit/README.md):
    the chain's CTE joins the locked workspace, so PostgreSQL cannot take the chain first. (Before, the
    chain was a CTE the workspace's scan pulled before locking the workspace, and a post could deadlock
    with a service that held the workspace and was appending to its chain: tests/audit/test_chains.py.)"""
    w, k = "w", "k"
    return f"""
        WITH {w} AS (SELECT {", ".join(_c(Workspace, f) for f in _LOCKED_FIELDS)} FROM {_t(Workspace)}
                     WHERE {_c(Workspace, 'id')} = %s{sql.for_update()}),
             chain AS (SELECT {", ".join(_c(AuditChain, f, 'c') for f in ("id", "seq", "hash"))}
                       FROM {_t(AuditChain)} c JOIN {w} ON TRUE
                       WHERE {_c(AuditChain, 'name', 'c')} = %s{sql.for_update(of='c')})
        SELECT {", ".join(_c(Workspace, f, w) for f in _LOCKED_FIELDS)},
               ({_current_epoch_sql(w)}),
               {active_member_sql(_c(Workspace, 'id', w))},
               {", ".join(_c(IdentityKey, f, k) for f in _KEY_FIELDS)},
               chain.*
        FROM {w}
        LEFT JOIN chain ON TRUE
        LEFT JOIN {_t(IdentityKey)} {k} ON {_c(IdentityKey, 'id', k)} = ({_current_key_sql('id')})"""


@dataclass(frozen=True)
class LockedForPost:
    workspace: Workspace
    epoch_pk: int | None  # the current epoch's id
    is_member: bool  # the author is an active member
    key: IdentityKey | None  # the author's current identity key
    chain_head: tuple[int, int, str] | None  # the workspace's audit chain (id, seq, hash), locked; None if none yet


def workspace_locked_for_post(workspace_pk: int, author_pk: int) -> LockedForPost:
    """One statement: the workspace row and its audit chain's row locked (SELECT ... FOR UPDATE), and what
    the post's checks read."""
    row = sql.fetch_one(_lock_for_post_sql(), [workspace_pk, workspace_chain(workspace_pk), author_pk, author_pk])
    if row is None:
        raise Http404("no such workspace")
    n, k = len(_LOCKED_FIELDS), len(_KEY_FIELDS)
    epoch_pk, is_member, key_row, head = row[n], bool(row[n + 1]), row[n + 2:n + 2 + k], row[n + 2 + k:]
    key = sql.instance(IdentityKey, _KEY_FIELDS, key_row) if key_row[0] is not None else None
    return LockedForPost(sql.instance(Workspace, _LOCKED_FIELDS, row[:n]), epoch_pk, is_member, key,
                         tuple(head) if head[0] is not None else None)


# PostgreSQL runs the post's writes as one statement; False runs them one by one, as SQLite always does
# (tests/messaging/test_post_statements.py runs both on PostgreSQL and compares the rows).
COMBINED_WRITES = True


def post_write(post: Post, workspace_pk: int, changes: dict[str, Any], event: AuditEvent) -> None:
    """Store the post, the workspace's changes, the audit event and its chain's new head: on PostgreSQL in
    one statement of data-modifying CTEs (one round trip), elsewhere as four. Sets post.pk and event.pk."""
    post_sql, post_params = sql.insert_statement(Post, _post_values(post))
    ws_sql, ws_params = sql.update_statement(Workspace, workspace_pk, changes)
    (event_sql, event_params), (head_sql, head_params) = audit_storage.event_statements(event)
    if COMBINED_WRITES and connection.vendor == "postgresql":
        row = sql.fetch_one(
            f"WITH p AS ({post_sql}), w AS ({ws_sql}), e AS ({event_sql}), c AS ({head_sql}) "
            f"SELECT (SELECT {_c(Post, 'id')} FROM p), (SELECT {_c(AuditEvent, 'id')} FROM e)",
            [*post_params, *ws_params, *event_params, *head_params])
        post.pk, event.pk = row
    else:
        post.pk = sql.fetch_one(post_sql, post_params)[0]
        sql.execute(ws_sql, ws_params)
        event.pk = sql.fetch_one(event_sql, event_params)[0]
        sql.execute(head_sql, head_params)


def _post_values(post: Post) -> dict[str, Any]:
    return {f.attname: getattr(post, f.attname) for f in Post._meta.concrete_fields if not f.primary_key}


def post_insert(post: Post) -> int:
    """The row Post.objects.create() would insert; returns its id."""
    return sql.insert(Post, _post_values(post))


def workspace_update(workspace_pk: int, changes: dict[str, Any]) -> None:
    sql.update(Workspace, workspace_pk, changes)


@dataclass(frozen=True)
class PlainPostStored:
    pk: int
    seq: int
    epoch_pk: int
    roster_version: int  # the workspace's roster as the post was stored (deliveries re-check a newer one)
    event_pk: int


def post_one_statement(post: Post, *, workspace_public_id: uuid.UUID, epoch: int, prev_seq: int,
                       key: IdentityKey, event: AuditEvent) -> PlainPostStored | None:
    """A plain post (services/posts.py::_post_plain) stored on PostgreSQL in one statement, one round
    trip and, outside a transaction, its own: the workspace's row is moved on, then its audit chain's
    row locked (the lock order of every service: audit/README.md), then the post, the audit event and
    the chain's new head are written, the event hashed by PostgreSQL as audit hashes it
    (audit/storage.py::chained_event_sql).

    It writes only if everything the general path would read under the lock still holds: the workspace
    is this one, open, needs no key renewal and is in `epoch`, whose wraps were checked for its roster;
    the author is an active member whose current identity key is `key`; the post follows an existing
    post; its id is new. Otherwise it writes nothing and returns None, and the caller takes the general
    path, which says why a post is refused. Sets post.pk, seq and epoch_id."""
    event_params = audit_storage.chained_event_params(event, data_key="seq")
    if event_params is None:
        return None
    hash_params, insert_params = event_params
    chain = workspace_chain(post.workspace_id)
    params = [post.workspace_id, sql.param(Workspace, "public_id", workspace_public_id), epoch, prev_seq,
              post.author_id, post.author_id, key.pk, bytes(key.sign_public), chain,
              sql.param(Post, "post_id", post.post_id), chain, *hash_params,
              *(sql.param(Post, name, getattr(post, name)) for name in _PLAIN_POST_GIVEN), *insert_params]
    row = sql.fetch_one(_one_statement_sql(), params)
    if row is None:
        return None
    stored = PlainPostStored(*row)
    post.pk, post.seq, post.epoch_id, event.pk = stored.pk, stored.seq, stored.epoch_pk, stored.event_pk
    return stored


# The post's columns the one statement takes as parameters; its sequence and epoch come from the statement.
_PLAIN_POST_GIVEN = tuple(f.attname for f in Post._meta.concrete_fields
                          if not f.primary_key and f.attname not in ("seq", "epoch_id"))


@functools.cache
def _one_statement_sql() -> str:
    chained = audit_storage.chained_event_sql(source="ok", number="ws.seq", prev_hash="head.hash",
                                              seq="head.seq + 1")
    w, k = "w", "cur"
    return f"""
        WITH ws AS (
            UPDATE {_t(Workspace)} {w} SET {_c(Workspace, 'last_seq')} = {_c(Workspace, 'last_seq', w)} + 1
            WHERE {_c(Workspace, 'id', w)} = %s AND {_c(Workspace, 'public_id', w)} = %s
              AND {_c(Workspace, 'status', w)} <> '{Workspace.Status.CLOSED.value}'
              AND NOT {_c(Workspace, 'rotation_required', w)}
              AND {_c(Workspace, 'current_epoch', w)} = %s
              AND {_c(Workspace, 'roster_keys_checked', w)} = {_c(Workspace, 'roster_version', w)}
              AND {_c(Workspace, 'last_seq', w)} >= %s
              AND {active_member_sql(_c(Workspace, 'id', w))}
              AND EXISTS (SELECT 1 FROM ({_current_key_sql('id', 'sign_public')}) {k}
                          WHERE {_c(IdentityKey, 'id', k)} = %s AND {_c(IdentityKey, 'sign_public', k)} = %s)
              AND EXISTS ({_current_epoch_sql(w)})
              AND EXISTS (SELECT 1 FROM {_t(AuditChain)} WHERE {_c(AuditChain, 'name')} = %s)
              AND NOT EXISTS (SELECT 1 FROM {_t(Post)} WHERE {_c(Post, 'post_id')} = %s)
            RETURNING {_c(Workspace, 'id', w)} AS id, {_c(Workspace, 'last_seq', w)} AS seq,
                      {_c(Workspace, 'roster_version', w)} AS roster,
                      ({_current_epoch_sql(w)}) AS epoch),
        head AS (
            SELECT {_c(AuditChain, 'id', 'c')} AS id, {_c(AuditChain, 'seq', 'c')} AS seq,
                   {_c(AuditChain, 'hash', 'c')} AS hash
            FROM {_t(AuditChain)} c JOIN ws ON TRUE WHERE {_c(AuditChain, 'name', 'c')} = %s FOR UPDATE OF c),
        ok AS (
            SELECT ws.seq AS number, ws.epoch, ws.roster, head.id AS chain, head.seq + 1 AS event_seq,
                   head.hash AS prev_hash, {chained.hash_sql} AS hash
            FROM ws JOIN head ON TRUE),
        p AS (
            INSERT INTO {_t(Post)} ({", ".join(_c(Post, n) for n in (*_PLAIN_POST_GIVEN, "seq", "epoch_id"))})
            SELECT {", ".join("%s" for _ in _PLAIN_POST_GIVEN)}, ok.number, ok.epoch FROM ok
            RETURNING {_c(Post, 'id')}),
        e AS ({chained.insert_sql}),
        h AS ({chained.head_sql})
        SELECT (SELECT {_c(Post, 'id')} FROM p), ok.number, ok.epoch, ok.roster, (SELECT {_c(AuditEvent, 'id')} FROM e)
        FROM ok"""


# --- reading posts ------------------------------------------------------------------------------------


@functools.cache
def _payload_select() -> str:
    """A post payload's columns, in payloads.post_payload_from_row's order, and the joins they need."""
    p, w, a, k, e = "p", "w", "a", "k", "e"
    columns = ", ".join([_c(Post, "seq", p), _c(Post, "post_id", p), _c(Workspace, "public_id", w),
                         _c(Professional, "public_id", a), _c(IdentityKey, "version", k), _c(Epoch, "number", e),
                         *(_c(Post, f, p) for f in ("kind", "created_at", "header", "nonce", "ciphertext", "signature"))])
    joins = (f"{_t(Post)} {p} JOIN {_t(Workspace)} {w} ON {_c(Workspace, 'id', w)} = {_c(Post, 'workspace', p)} "
             f"JOIN {_t(Professional)} {a} ON {_c(Professional, 'id', a)} = {_c(Post, 'author', p)} "
             f"JOIN {_t(IdentityKey)} {k} ON {_c(IdentityKey, 'id', k)} = {_c(Post, 'author_key', p)} "
             f"JOIN {_t(Epoch)} {e} ON {_c(Epoch, 'id', e)} = {_c(Post, 'epoch', p)}")
    return f"SELECT {columns} FROM {joins}"


@functools.cache
def _reader_epochs_sql() -> str:
    ew, e = "ew", "e"
    return (f"SELECT {_c(EpochWrap, 'epoch', ew)} FROM {_t(EpochWrap)} {ew} "
            f"JOIN {_t(Epoch)} {e} ON {_c(Epoch, 'id', e)} = {_c(EpochWrap, 'epoch', ew)} "
            f"WHERE {_c(Epoch, 'workspace', e)} = %s AND {_c(EpochWrap, 'recipient', ew)} = %s "
            f"AND {active_member_sql(_c(Epoch, 'workspace', e))}")


def reader_epoch_ids(workspace_pk: int, professional_pk: int) -> list[int]:
    """The epochs of the workspace the professional was given a key for (in a manifest, by re-keying or by
    a history grant), if they are an active member now; none otherwise."""
    rows = sql.fetch_all(_reader_epochs_sql(), [workspace_pk, professional_pk, professional_pk])
    return [epoch_id for epoch_id, in rows]


@functools.lru_cache(maxsize=256)
def _post_page_sql(epochs: int, of_kind: bool) -> str:
    p = "p"
    kind_filter = f" AND {_c(Post, 'kind', p)} = %s" if of_kind else ""
    return (f"{_payload_select()} WHERE {_c(Post, 'workspace', p)} = %s AND {_c(Post, 'seq', p)} > %s "
            f"AND {_c(Post, 'epoch', p)} IN ({', '.join(['%s'] * epochs)}){kind_filter} "
            f"ORDER BY {_c(Post, 'seq', p)} LIMIT %s")


def post_page(workspace_pk: int, *, after_seq: int, epoch_ids: Sequence[int], kind: str | None,
              limit: int) -> list[tuple]:
    """Rows of payload columns: the workspace's posts after `after_seq` in those epochs (of one kind, if
    given), in order. The epoch ids go in as a list: with them inline PostgreSQL walks the (workspace,
    seq) index; an EXISTS on the wraps planned and ran about 4 ms slower per page (BENCHMARKS.md, W5)."""
    return sql.fetch_all(_post_page_sql(len(epoch_ids), kind is not None),
                         [workspace_pk, after_seq, *epoch_ids, *([kind] if kind is not None else []), limit])
