"""Small builders and readers for storage tests (values chosen from real OKX samples where they matter)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.model import Side, Trade
from collectors.storage.schema import TradeRow

BASE_TS = 1_786_613_174_873  # a real OKX ts from the 2026 ticker recording


def trade(
    trade_id: int, *, inst_id: str = "BTC-USDT", price: str = "63707.3", size: str = "0.00164251"
) -> Trade:
    return Trade(
        exchange="okx",
        inst_id=inst_id,
        trade_id=trade_id,
        ts_ms=BASE_TS + trade_id,
        price=Decimal(price),
        size=Decimal(size),
        side=Side.BUY if trade_id % 2 else Side.SELL,
        source="0",
        recv_ms=BASE_TS + trade_id + 7,
    )


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
