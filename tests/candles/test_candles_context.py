"""The engine computes in its own exact context and always gives the caller's context back."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

from collectors.candles import CandleEngine
from collectors.errors import InvalidRecord
from collectors.model import Side
from tests.builders import trade

TS = 1_786_608_000_000


def test_sums_are_exact_whatever_the_callers_context_and_it_is_restored() -> None:
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT")
    with decimal.localcontext(decimal.Context(prec=5)) as caller:
        engine.on_trade(trade(1, ts_ms=TS + 1, size="0.12345678901234567890123456789", side=Side.BUY))
        engine.on_trades([trade(2, ts_ms=TS + 2, size="1000000000000000000000000000000.1", side=Side.BUY)])
        assert decimal.getcontext() is caller and caller.prec == 5
        (candle,) = [c for c in engine.open_candles() if c.timeframe == "1m"]
    assert candle.volume == Decimal("1000000000000000000000000000000.22345678901234567890123456789")
    assert candle.quote_volume == decimal.Context(prec=200).multiply(Decimal("63707.3"), candle.volume)


def test_the_callers_context_is_restored_when_a_trade_is_refused() -> None:
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT")
    caller = decimal.getcontext()
    with pytest.raises(InvalidRecord, match="exact range"):  # beyond 1E+40: refused whole, never rounded
        engine.on_trade(
            trade(
                1,
                ts_ms=TS + 1,
                size="1E+200",
                price="1.000000000000000000000000000000000000000001",
                side=Side.BUY,
            )
        )
    assert decimal.getcontext() is caller
    assert engine.stats.trades_processed == 0
