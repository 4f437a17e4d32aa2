"""Readers and server helpers for storage tests; records come from :mod:`tests.builders`."""

from __future__ import annotations

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.storage.schema import TradeRow


def stored_trades(engine: Engine, inst_id: str | None = None) -> list[TradeRow]:
    with Session(engine) as session:
        query = select(TradeRow).order_by(TradeRow.inst_id, TradeRow.trade_id)
        if inst_id:
            query = query.where(TradeRow.inst_id == inst_id)
        return list(session.scalars(query))


def count_trades(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(TradeRow)) or 0)


def terminate_connections(engine: Engine) -> int:
    """Kill every other server connection to ``engine``'s PostgreSQL database; returns how many."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (engine.url.database,),
        ).fetchone()
    return int(row[0]) if row else 0
