"""Empty-interval policy and no-data marking for a finished series of candles (batch paths and rollup).

The streaming engine applies the same rules as it closes candles; this module states them once for a list:

* ``skip``: empty buckets have no candle.
* ``carry``: each empty bucket after the first non-empty one gets OHLC = the previous candle's close, zero
  volumes and trades, and no trade ids; up to the last non-empty bucket, or to ``closed_until_ms``.
* A bucket that overlaps a no-data span never gets a carried candle, and a real candle overlapping one is
  ``is_complete=False`` (an input candle already marked incomplete stays so).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal

from collectors.candles.events import EmptyPolicy
from collectors.candles.exact import ZERO
from collectors.candles.spans import SpanSet
from collectors.model import Candle, CandleSource, Timeframe

__all__ = ["carried", "fill_series", "seed_candle"]


def fill_series(
    candles: Sequence[Candle],
    tf: Timeframe,
    *,
    policy: EmptyPolicy,
    no_data: SpanSet,
    closed_until_ms: int | None = None,
    seed: Candle | None = None,
) -> list[Candle]:
    """``candles`` (non-empty, ascending, one timeframe) with carried candles and completeness applied.

    ``seed``: a candle (not returned) standing before the first bucket to fill; under ``carry`` its close is
    carried into the empty buckets after it, before the first candle (the close preceding a re-aggregated
    range).
    """
    out: list[Candle] = []
    carry = policy is EmptyPolicy.CARRY
    # Start of the real candle (or seeded range) whose close the next carried candle carries.
    source = None if seed is None else seed.open_time_ms + tf.duration_ms
    for candle in candles:
        if carry:
            previous = out[-1] if out else seed
            if previous is not None and source is not None:
                out.extend(_carries(previous, candle.open_time_ms, tf, no_data, source))
        out.append(_with_completeness(candle, tf, no_data))
        if candle.trade_count > 0:
            source = candle.open_time_ms
    last = out[-1] if out else seed
    if last is not None and source is not None and carry and closed_until_ms is not None:
        # Buckets ending at or before closed_until_ms: those starting before the bucket that contains it.
        out.extend(_carries(last, tf.bucket_start_ms(closed_until_ms), tf, no_data, source))
    return out


def seed_candle(
    *, exchange: str, inst_id: str, tf: Timeframe, before_ms: int, close: Decimal, source: CandleSource
) -> Candle:
    """An empty candle closing at ``close``, in the bucket before the one containing ``before_ms``."""
    return Candle(
        exchange=exchange,
        inst_id=inst_id,
        timeframe=tf.name,
        open_time_ms=tf.bucket_start_ms(before_ms) - tf.duration_ms,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=ZERO,
        quote_volume=ZERO,
        trade_count=0,
        buy_volume=ZERO,
        sell_volume=ZERO,
        is_closed=True,
        source=source,
    )


def _carries(
    previous: Candle, until_ms: int, tf: Timeframe, no_data: SpanSet, source_ms: int
) -> list[Candle]:
    """Carried candles for the empty buckets from the end of ``previous`` to ``until_ms`` (a bucket start).

    A carried candle is incomplete while a no-data span lies between ``source_ms`` (the start of the real
    candle whose close it carries) and itself: the close may have moved during the disconnect.
    """
    result = []
    start = previous.open_time_ms + tf.duration_ms
    while start < until_ms:
        if not no_data.overlaps(start, start + tf.duration_ms):
            candle = carried(previous, start)
            if no_data.overlaps(source_ms, start):
                candle = dataclasses.replace(candle, is_complete=False)
            result.append(candle)
        start += tf.duration_ms
    return result


def carried(previous: Candle, open_time_ms: int) -> Candle:
    """The empty candle at ``open_time_ms`` that carries ``previous.close``."""
    price = previous.close
    return dataclasses.replace(
        previous,
        open_time_ms=open_time_ms,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=ZERO,
        quote_volume=ZERO,
        trade_count=0,
        buy_volume=ZERO,
        sell_volume=ZERO,
        first_trade_id=None,
        last_trade_id=None,
        first_trade_ms=None,
        last_trade_ms=None,
        is_complete=True,
        revision=0,
    )


def _with_completeness(candle: Candle, tf: Timeframe, no_data: SpanSet) -> Candle:
    overlaps = no_data.overlaps(candle.open_time_ms, candle.open_time_ms + tf.duration_ms)
    complete = candle.is_complete and not overlaps
    return candle if candle.is_complete == complete else dataclasses.replace(candle, is_complete=complete)
