"""Revising a stored candle with late trades, for candles the engine no longer holds (``RevisionRequired``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import localcontext

from collectors.candles.accumulator import Accumulator
from collectors.candles.exact import EXACT
from collectors.candles.spans import SpanSet
from collectors.model import Candle, Side, Timeframe, Trade
from collectors.validation import check_trade

__all__ = ["revise_candle"]


def revise_candle(
    stored: Candle, trades: Iterable[Trade], *, no_data: Iterable[tuple[int, int]] = ()
) -> Candle:
    """``stored`` with ``trades`` folded in and ``revision + 1``.

    The trades must be new (not already counted in ``stored``): the caller checks that against the trades
    table, since the engine's de-duplication window has passed. Raises ``InvalidRecord`` for a trade
    :func:`~collectors.validation.check_trade` refuses, ``ValueError`` for a trade outside the candle's
    bucket or of another instrument.

    A carried (empty) candle that gets a trade becomes a real one, and its completeness is then its own
    bucket's: complete unless it overlaps one of ``no_data`` (the no-data spans the engine was given; a
    carried candle is often incomplete only because the close it carried came from before such a span). A
    real candle keeps its ``is_complete``.
    """
    tf = Timeframe.parse(stored.timeframe)
    acc = _accumulator_of(stored)
    is_complete = stored.is_complete
    trades = list(trades)
    if stored.trade_count == 0 and trades:
        is_complete = not SpanSet(no_data).overlaps(stored.open_time_ms, stored.open_time_ms + tf.duration_ms)
    with localcontext(EXACT):
        for trade in map(check_trade, trades):
            if tf.bucket_start_ms(trade.ts_ms) != stored.open_time_ms or trade.inst_id != stored.inst_id:
                raise ValueError(f"trade {trade.trade_id} does not belong to candle {stored.open_time_ms}")
            quote = trade.price * trade.size
            acc.add(trade.price, trade.size, quote, trade.side is Side.BUY, trade.ts_ms, trade.trade_id)
        revised = acc.to_candle(
            exchange=stored.exchange,
            inst_id=stored.inst_id,
            timeframe=stored.timeframe,
            is_closed=stored.is_closed,
            is_complete=is_complete,
            source=stored.source,
        )
    return dataclasses.replace(revised, revision=stored.revision + 1)


def _accumulator_of(candle: Candle) -> Accumulator:
    acc = Accumulator(start_ms=candle.open_time_ms, price=candle.close)
    acc.open, acc.high, acc.low = candle.open, candle.high, candle.low
    acc.volume, acc.quote, acc.buy = candle.volume, candle.quote_volume, candle.buy_volume
    acc.count = candle.trade_count
    if candle.trade_count:
        acc.first_id, acc.last_id = _known(candle.first_trade_id), _known(candle.last_trade_id)
        acc.first_ms, acc.last_ms = _known(candle.first_trade_ms), _known(candle.last_trade_ms)
    acc.revision = candle.revision
    return acc


def _known(value: int | None) -> int:
    if value is None:
        raise ValueError("a candle with trades must carry first/last trade ids and times")
    return value
