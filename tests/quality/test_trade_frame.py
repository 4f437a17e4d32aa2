"""Stored trades as the engine's integer frame, on SQLite and PostgreSQL: exact steps whatever the scales, an
empty range, and a value beyond int64 steps refused rather than rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from quality_helpers import DAY_START, store
from sqlalchemy import Engine

from collectors.errors import StorageError
from collectors.model import Side, Trade
from collectors.quality.trade_frame import read_trade_frame


def _trade(trade_id: int, price: str, size: str, side: Side = Side.BUY) -> Trade:
    return Trade(exchange="okx", inst_id="PEPE-USDT", trade_id=trade_id, ts_ms=DAY_START + trade_id,
                 price=Decimal(price), size=Decimal(size), side=side)  # fmt: skip


async def test_mixed_scales_become_exact_integer_steps(engine: Engine) -> None:
    await store(engine, [_trade(3, "0.00001234", "1000000"), _trade(1, "0.000012", "2.5", Side.SELL),
                         _trade(2, "0.0000120", "7")])  # fmt: skip
    got = read_trade_frame(
        engine, exchange="okx", inst_id="PEPE-USDT", start_ms=DAY_START, end_ms=DAY_START + 10
    )
    assert (got.instrument.tick_size, got.instrument.lot_size) == (Decimal("1E-8"), Decimal("0.1"))
    frame = got.frame.sort_values("trade_id")
    assert frame["trade_id"].tolist() == [1, 2, 3]
    assert frame["ts_ms"].tolist() == [DAY_START + 1, DAY_START + 2, DAY_START + 3]
    assert frame["price_ticks"].tolist() == [1200, 1200, 1234]
    assert frame["size_lots"].tolist() == [25, 70, 10_000_000]
    assert frame["is_buy"].tolist() == [False, True, True]


async def test_an_empty_range_is_an_empty_frame(engine: Engine) -> None:
    got = read_trade_frame(
        engine, exchange="okx", inst_id="PEPE-USDT", start_ms=DAY_START, end_ms=DAY_START + 10
    )
    assert len(got) == 0 and list(got.frame.columns) == [
        "ts_ms",
        "trade_id",
        "price_ticks",
        "size_lots",
        "is_buy",
    ]


async def test_a_value_beyond_int64_steps_is_refused_not_rounded(engine: Engine) -> None:
    await store(engine, [_trade(1, "123456789012.123456789", "1"), _trade(2, "1", "1")])
    with pytest.raises(StorageError, match=r"out of range|beyond int64"):
        read_trade_frame(
            engine, exchange="okx", inst_id="PEPE-USDT", start_ms=DAY_START, end_ms=DAY_START + 10
        )
