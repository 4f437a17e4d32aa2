"""Helpers of the quality tests: a deterministic stored tape and its candles (engine-built, as live)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import Engine

from collectors.candles import reaggregate_trades
from collectors.model import DEFAULT_TIMEFRAMES, Candle, CandleSource, Side, Trade
from collectors.storage.records import CoverageSpan, CoverageStatus
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter

DAY_START: Final = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
HOUR: Final = 3_600_000
MINUTE: Final = 60_000


def tape(
    *, inst_id: str = "BTC-USDT", start_ms: int = DAY_START, end_ms: int = DAY_START + 3 * HOUR,
    count: int = 3_000, seed: int = 7, quiet: Sequence[tuple[int, int]] = (),
) -> list[Trade]:  # fmt: skip
    """``count`` trades with contiguous ids from 1000 at random times of ``[start_ms, end_ms)`` outside the
    ``quiet`` spans; prices on a 0.1 grid, some written with a trailing zero (scale 2), sizes of 8 places."""
    rng = random.Random(seed)
    times: list[int] = []
    while len(times) < count:
        ts = rng.randrange(start_ms, end_ms)
        if not any(a <= ts < b for a, b in quiet):
            times.append(ts)
    times.sort()
    trades = []
    price = 630000
    for n, ts in enumerate(times):
        price += rng.randint(-5, 5)
        text = f"{price // 10}.{price % 10}" + ("0" if n % 7 == 0 else "")
        trades.append(
            Trade(
                exchange="okx",
                inst_id=inst_id,
                trade_id=1000 + n,
                ts_ms=ts,
                price=Decimal(text),
                size=Decimal(rng.randint(1, 10**7)).scaleb(-8),
                side=Side.BUY if rng.random() < 0.5 else Side.SELL,
                source="0",
            )
        )
    return trades


def live_candles(trades: Sequence[Trade], start_ms: int, end_ms: int) -> list[Candle]:
    """The candles the streaming engine closes over ``[start_ms, end_ms)``, marked live."""
    inst_id = trades[0].inst_id
    built = reaggregate_trades(
        trades, exchange="okx", inst_id=inst_id, source=CandleSource.LIVE, complete_range=(start_ms, end_ms)
    )
    return [c for name in DEFAULT_TIMEFRAMES for c in built.get(name, [])]


def collected(inst_id: str, start_ms: int, end_ms: int) -> CoverageSpan:
    from collectors.model import DataType

    return CoverageSpan(
        exchange="okx", inst_id=inst_id, data_type=DataType.TRADES, start_ms=start_ms, end_ms=end_ms,
        status=CoverageStatus.COLLECTED,
    )  # fmt: skip


async def store(engine: Engine, records: Sequence[object]) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many(records)
