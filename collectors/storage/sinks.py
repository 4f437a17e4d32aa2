"""Bulk, idempotent writes of neutral rows (see :mod:`collectors.storage.tables`) into one database.

Sinks are synchronous and own one connection; the async :class:`~collectors.storage.writer.BatchWriter` runs
them in a worker thread. Every write is one transaction: all of a batch lands, or none of it does. Every batch
first passes the value verdict (:mod:`collectors.storage.values`), and both databases apply the same upsert
rules (:mod:`collectors.storage.sink_rules`).

* :class:`~collectors.storage.sink_postgres.PostgresSink`: binary COPY straight into the table when a batch
  cannot conflict, else COPY into a staging table and ``INSERT ... SELECT ... ON CONFLICT``.
* :class:`~collectors.storage.sink_sqlite.SqliteSink`: multi-row ``INSERT ... ON CONFLICT`` statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine

from collectors.storage.sink_postgres import PostgresSink
from collectors.storage.sink_rules import WriteResult
from collectors.storage.sink_sqlite import SqliteSink
from collectors.storage.tables import Row, TableSpec

__all__ = ["PostgresSink", "Sink", "SqliteSink", "WriteResult", "open_sink"]


class Sink(Protocol):
    dialect: str

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult: ...

    def close(self) -> None: ...


def open_sink(engine: Engine) -> Sink:
    if engine.dialect.name == "postgresql":
        return PostgresSink(engine)
    if engine.dialect.name == "sqlite":
        return SqliteSink(engine)
    raise ValueError(f"no sink for {engine.dialect.name}")
