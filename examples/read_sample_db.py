"""A small sample database for the read examples: two hours of BTC-USDT trades and their 1m candles.

Run alone (``python examples/read_sample_db.py``) it builds the database in a temporary folder and prints
what it holds; ``read_candles.py`` and ``export_trades.py`` import :func:`sample_database`. The rows go in the
way a collector writes them: through :class:`~collectors.storage.writer.BatchWriter`, the 1m candles from the
trades through the candle engine, and a ``collected`` coverage span over the whole time.
"""

from __future__ import annotations

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

from collectors.candles import reaggregate_trades
from collectors.model import DataType, Instrument, Side, Trade
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.records import CoverageSpan, CoverageStatus
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter

START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC
MINUTE_MS = 60_000


def sample_trades() -> list[Trade]:
    """Two hours of trades, 1 to 4 a minute, at prices on BTC-USDT's 0.1 grid, a quiet minute now and then."""
    trades = []
    trade_id = 1_000_000
    for minute in range(120):
        if minute % 9 == 4:
            continue
        for k in range(1 + minute % 4):
            trade_id += 1
            price = Decimal("93450.0") + Decimal((minute * 37 + k * 11) % 400) / 10
            trades.append(
                Trade(
                    exchange="okx", inst_id="BTC-USDT", trade_id=trade_id,
                    ts_ms=START_MS + minute * MINUTE_MS + k * 13_000 + 250,
                    price=price, size=Decimal("0.00012000") * (k + 1), side=Side.BUY if k % 2 else Side.SELL,
                )
            )  # fmt: skip
    return trades


async def _fill(url: str) -> int:
    engine = make_engine(url)
    try:
        upgrade(engine)
        trades = sample_trades()
        candles = reaggregate_trades(trades, exchange="okx", inst_id="BTC-USDT", timeframes=("1m",))["1m"]
        instrument = Instrument(
            exchange="okx", inst_id="BTC-USDT", base_ccy="BTC", quote_ccy="USDT",
            tick_size=Decimal("0.1"), lot_size=Decimal("0.00000001"), min_size=Decimal("0.00001"),
        )  # fmt: skip
        watched = CoverageSpan(
            exchange="okx", inst_id="BTC-USDT", data_type=DataType.TRADES, start_ms=START_MS,
            end_ms=START_MS + 120 * MINUTE_MS, status=CoverageStatus.COLLECTED,
        )  # fmt: skip
        async with BatchWriter(open_sink(engine)) as writer:
            await writer.put_many([instrument, *trades, *candles, watched])
        return len(trades)
    finally:
        engine.dispose()


def sample_database(folder: Path) -> str:
    """A new SQLite database in ``folder`` filled with the sample; returns its URL."""
    url = f"sqlite:///{folder / 'sample.db'}"
    asyncio.run(_fill(url))
    return url


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        db_url = sample_database(Path(tmp))
        trades = sample_trades()
        print(f"sample database {db_url}: {len(trades)} BTC-USDT trades")
        print(f"first trade: id {trades[0].trade_id} at {trades[0].price} x {trades[0].size}")
