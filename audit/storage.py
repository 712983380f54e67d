"""The audit app's hand-written statements: appending an event is three of them (lock the chain's row,
insert the event, move the head), on every post (teamaroundchild/sql.py says why they are hand-written).
Table and column names come from the models."""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


# --- an event chained inside a larger statement (the one-statement post) -----------------------------

# Stand-ins for the two numbers PostgreSQL hands out in that statement (the event's place in its chain and
# one number in its data, the post's sequence), so the event's canonical JSON can be split around them
# and hashed there. JSON writes an integer as PostgreSQL's bigint::text does.
_DATA_MARK, _SEQ_MARK = 4_611_686_018_427_387_901, 4_611_686_018_427_387_903


@dataclass(frozen=True)
class ChainedEvent:
    """SQL that appends an event to its chain inside a larger statement: `hash_sql`, the event's hash over
    three SQL expressions the caller names; `insert_sql` and `head_sql`, reading a source (a CTE) with the
    columns chain, event_seq, prev_hash, hash and number. Parameters: chained_event_params."""

    hash_sql: str
    insert_sql: str
    head_sql: str


# The columns an event's INSERT takes as parameters; the rest come from the statement.
_FROM_STATEMENT = ("chain_id", "seq", "prev_hash", "hash", "data")
_GIVEN = tuple(f.attname for f in AuditEvent._meta.concrete_fields
               if not f.primary_key and f.attname not in _FROM_STATEMENT)


@functools.cache
def chained_event_sql(*, source: str, number: str, prev_hash: str, seq: str) -> ChainedEvent:
    """`number`, `seq` and `prev_hash`: SQL expressions, where the hash is computed, for the number left to
    SQL in the event's data, its sequence in its chain and its chain's head hash. The hash is audit's own
    (AuditEvent.compute_hash: SHA-256 of prev_hash and the canonical JSON), so audit_verify checks these
    rows as any other."""
    hash_sql = (f"encode(sha256(convert_to({prev_hash}, 'UTF8') || %s::bytea || convert_to(({number})::text, 'UTF8') "
                f"|| %s::bytea || convert_to(({seq})::text, 'UTF8') || %s::bytea), 'hex')")
    columns = [*_GIVEN, *_FROM_STATEMENT]
    selected = [*("%s" for _ in _GIVEN), f"{source}.chain", f"{source}.event_seq", f"{source}.prev_hash",
                f"{source}.hash", f"jsonb_set(%s::jsonb, %s::text[], to_jsonb({source}.number))"]
    insert_sql = (f"INSERT INTO {sql.table(AuditEvent)} ({', '.join(sql.column(AuditEvent, c) for c in columns)}) "
                  f"SELECT {', '.join(selected)} FROM {source} RETURNING {sql.column(AuditEvent, 'id')}")
    head_sql = (f"UPDATE {sql.table(AuditChain)} SET {sql.column(AuditChain, 'seq')} = {source}.event_seq, "
                f"{sql.column(AuditChain, 'hash')} = {source}.hash FROM {source} "
                f"WHERE {sql.table(AuditChain)}.{sql.column(AuditChain, 'id')} = {source}.chain")
    return ChainedEvent(hash_sql, insert_sql, head_sql)


def chained_event_params(event: AuditEvent, *, data_key: str) -> tuple[list, list] | None:
    """The parameters of chained_event_sql's hash and INSERT for `event` (audit_event_unchained), whose
    `data[data_key]` and sequence PostgreSQL fills in. The canonical JSON is made here with stand-ins for
    the two and split around them. None if the event's own text holds a stand-in (the caller writes it
    the ordinary way)."""
    probe = AuditEvent(**{name: getattr(event, name) for name in _GIVEN})
    probe.data, probe.seq = {**event.data, data_key: _DATA_MARK}, _SEQ_MARK
    canonical = probe.canonical()
    marks = [str(_DATA_MARK).encode(), str(_SEQ_MARK).encode()]
    if any(canonical.count(mark) != 1 for mark in marks) or canonical.find(marks[0]) > canonical.find(marks[1]):
        return None
    head, rest = canonical.split(marks[0])
    middle, tail = rest.split(marks[1])
    insert_params = [*(sql.param(AuditEvent, name, getattr(event, name)) for name in _GIVEN),
                     sql.param(AuditEvent, "data", event.data), [data_key]]
    return [head, middle, tail], insert_params
