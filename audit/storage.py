"""The audit app's hand-written statements: appending an event is three of them (lock the chain's row,
insert the event, move the head), on every post (teamaroundchild/sql.py says why they are hand-written).
Table and column names come from the models."""

from __future__ import annotations

import functools

from teamaroundchild import sql

from .models import AuditChain, AuditEvent


@functools.cache
def _head_sql() -> str:
    return (f"SELECT {sql.column(AuditChain, 'id')}, {sql.column(AuditChain, 'seq')}, {sql.column(AuditChain, 'hash')} "
            f"FROM {sql.table(AuditChain)} WHERE {sql.column(AuditChain, 'name')} = %s{sql.for_update()}")


def chain_head_locked(name: str) -> tuple[int, int, str] | None:
    """(id, seq, hash) of the named chain's row, locked with SELECT ... FOR UPDATE until the caller's
    transaction ends; None if the chain has no row yet."""
    return sql.fetch_one(_head_sql(), [name])


def _event_values(event: AuditEvent) -> dict:
    return {f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields if not f.primary_key}


def event_insert(event: AuditEvent) -> int:
    """The row AuditEvent.objects.create() would insert; returns its id."""
    return sql.insert(AuditEvent, _event_values(event))


def chain_head_move(chain_id: int, seq: int, hash_: str) -> None:
    sql.update(AuditChain, chain_id, {"seq": seq, "hash": hash_})


def event_statements(event: AuditEvent) -> tuple[tuple[str, list], tuple[str, list]]:
    """The event's INSERT (RETURNING its id) and its chain's head UPDATE, with their parameters, for a
    caller that runs them inside one larger statement (messaging/storage.py::post_write)."""
    return (sql.insert_statement(AuditEvent, _event_values(event)),
            sql.update_statement(AuditChain, event.chain_id, {"seq": event.seq, "hash": event.hash}))


@functools.cache
def chain_head_lock_cte(alias: str) -> str:
    """A CTE `alias AS (SELECT id, seq, hash ... FOR UPDATE)` locking the chain named by its one
    parameter, for a caller's larger statement (the post's first statement locks its workspace's chain)."""
    return f"{alias} AS ({_head_sql()})"
