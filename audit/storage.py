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
    """SQL that appends `event` to its chain inside a larger statement. `hash_sql` (with `hash_params`)
    is the event's hash over three SQL expressions the caller gives; `insert_sql` and `head_sql` read a
    source (a CTE) with the columns chain, event_seq, prev_hash, hash and the data number."""

    hash_sql: str
    hash_params: list
    insert_sql: str
    insert_params: list
    head_sql: str


def chained_event_sql(event: AuditEvent, *, data_key: str, source: str, number: str, prev_hash: str,
                      seq: str) -> ChainedEvent | None:
    """`event` (audit_event_unchained) with `event.data[data_key]` and its sequence left to SQL: `number`,
    `seq` and `prev_hash` are SQL expressions for them and its chain's head hash where the hash is
    computed; the source's columns `number`, `event_seq`, `prev_hash`, `hash` and `chain` where the row
    is written. The hash is audit's own (AuditEvent.compute_hash: SHA-256 of prev_hash and the canonical
    JSON), so audit_verify checks these rows as any other. None if the event's own text holds a stand-in
    (the caller writes it the ordinary way)."""
    probe = AuditEvent(**{f.attname: getattr(event, f.attname) for f in AuditEvent._meta.concrete_fields})
    probe.data, probe.seq = {**event.data, data_key: _DATA_MARK}, _SEQ_MARK
    canonical = probe.canonical()
    marks = [str(_DATA_MARK).encode(), str(_SEQ_MARK).encode()]
    if any(canonical.count(mark) != 1 for mark in marks) or canonical.find(marks[0]) > canonical.find(marks[1]):
        return None
    head, rest = canonical.split(marks[0])
    middle, tail = rest.split(marks[1])
    hash_sql = (f"encode(sha256(convert_to({prev_hash}, 'UTF8') || %s::bytea || convert_to(({number})::text, 'UTF8') "
                f"|| %s::bytea || convert_to(({seq})::text, 'UTF8') || %s::bytea), 'hex')")
    values = {name: value for name, value in _event_values(event).items()
              if name not in ("chain_id", "seq", "prev_hash", "hash", "data")}
    columns = [*values, "chain_id", "seq", "prev_hash", "hash", "data"]
    selected = [*("%s" for _ in values), f"{source}.chain", f"{source}.event_seq", f"{source}.prev_hash",
                f"{source}.hash", f"jsonb_set(%s::jsonb, %s::text[], to_jsonb({source}.number))"]
    insert_sql = (f"INSERT INTO {sql.table(AuditEvent)} ({', '.join(sql.column(AuditEvent, c) for c in columns)}) "
                  f"SELECT {', '.join(selected)} FROM {source} RETURNING {sql.column(AuditEvent, 'id')}")
    insert_params = [*(sql.param(AuditEvent, name, value) for name, value in values.items()),
                     sql.param(AuditEvent, "data", event.data), [data_key]]
    head_sql = (f"UPDATE {sql.table(AuditChain)} SET {sql.column(AuditChain, 'seq')} = {source}.event_seq, "
                f"{sql.column(AuditChain, 'hash')} = {source}.hash FROM {source} "
                f"WHERE {sql.table(AuditChain)}.{sql.column(AuditChain, 'id')} = {source}.chain")
    return ChainedEvent(hash_sql, [head, middle, tail], insert_sql, insert_params, head_sql)
