"""Hand-written statements for the live path: storing a post, checking membership at delivery, reading
a backlog page. Everything else uses the ORM.

Why: on the 2-core benchmark machine the ORM spends 0.5-1 ms of CPU building one simple statement,
and 3.6 ms on the post's locking query, against about 0.05 ms for the same SQL through the cursor; a
post was 9 ORM statements and 12 ms of CPU (BENCHMARKS.md, "Where a post's time went").

The SQL is plain enough for both databases the project runs on (PostgreSQL, and SQLite for `make run`),
and values go through the model fields' own get_db_prep_save, so a row stored here is the row the ORM
would have stored. Table and column names come from the models, never from input.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """The quoted column of a field, by name or attname (`workspace` or `workspace_id`)."""
    return connection.ops.quote_name(model._meta.get_field(name).column)


def for_update(of: str = "") -> str:
    """` FOR UPDATE [OF alias]` where the database has row locks (SQLite locks the whole database on
    its first write instead)."""
    if not connection.features.has_select_for_update:
        return ""
    if of and connection.features.has_select_for_update_of:
        return f" FOR UPDATE OF {of}"
    return " FOR UPDATE"


@functools.lru_cache(maxsize=64)
def _insert_sql(model: type[Model], names: tuple[str, ...]) -> str:
    columns = ", ".join(column(model, n) for n in names)
    marks = ", ".join(["%s"] * len(names))
    return f"INSERT INTO {table(model)} ({columns}) VALUES ({marks}) RETURNING {column(model, model._meta.pk.name)}"


@functools.lru_cache(maxsize=64)
def _update_sql(model: type[Model], names: tuple[str, ...]) -> str:
    sets = ", ".join(f"{column(model, n)} = %s" for n in names)
    return f"UPDATE {table(model)} SET {sets} WHERE {column(model, model._meta.pk.name)} = %s"


def param(model: type[Model], name: str, value: Any) -> Any:
    """A value for a %s placeholder, as the field would store it (SQLite wants UUIDs as hex text)."""
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def _prepared(model: type[Model], values: dict[str, Any]) -> list:
    return [param(model, name, value) for name, value in values.items()]


def insert(model: type[Model], values: dict[str, Any]) -> int:
    """INSERT one row (field names or attnames -> Python values); returns its primary key."""
    with connection.cursor() as cursor:
        cursor.execute(*insert_statement(model, values))
        return cursor.fetchone()[0]


def update(model: type[Model], pk: Any, values: dict[str, Any]) -> int:
    """UPDATE one row by primary key; returns the number of rows changed."""
    with connection.cursor() as cursor:
        cursor.execute(*update_statement(model, pk, values))
        return cursor.rowcount


def insert_statement(model: type[Model], values: dict[str, Any]) -> tuple[str, list]:
    """The INSERT (RETURNING the primary key) and its parameters, to run as part of a larger statement."""
    return _insert_sql(model, tuple(values)), _prepared(model, values)


def update_statement(model: type[Model], pk: Any, values: dict[str, Any]) -> tuple[str, list]:
    """The UPDATE of one row by primary key and its parameters, to run as part of a larger statement."""
    return _update_sql(model, tuple(values)), [*_prepared(model, values), pk]


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    """A statement that returns no rows; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetch_one(sql: str, params: Sequence[Any] = ()) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def from_db(model: type[Model], name: str, value: Any) -> Any:
    """A value read by hand-written SQL as the ORM would return it (SQLite hands back UUIDs as hex text,
    booleans as integers and datetimes as text; PostgreSQL gives the Python types already)."""
    expression, converters = _converters(model._meta.get_field(name))
    for converter in converters:
        value = converter(value, expression, connection)
    return value


def converts(model: type[Model], name: str) -> bool:
    """Whether from_db changes anything for this field on this database."""
    return bool(_converters(model._meta.get_field(name))[1])


def instance(model: type[Model], names: Sequence[str], row: Sequence[Any]) -> Model:
    """A model instance from a hand-written SELECT of these attnames, the others deferred (they load on
    access, as with QuerySet.only())."""
    loaded = {name: from_db(model, name, value) for name, value in zip(names, row, strict=True)}
    ordered = [f.attname for f in model._meta.concrete_fields if f.attname in loaded]  # from_db() wants model order
    return model.from_db("default", ordered, [loaded[name] for name in ordered])


@functools.lru_cache(maxsize=128)
def _converters(field) -> tuple:
    expression = field.get_col(field.model._meta.db_table)
    return expression, tuple(connection.ops.get_db_converters(expression) + field.get_db_converters(connection))


def placeholders(values: Iterable) -> str:
    return ", ".join("%s" for _ in values)
