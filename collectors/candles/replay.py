"""Re-aggregation through the streaming engine itself, and reading final candles out of event streams."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import Decimal

from collectors.candles.engine import CandleEngine
from collectors.candles.events import CandleClosed, CandleEvent, CandleRevised, EmptyPolicy, EngineConfig
from collectors.candles.exact import check_close
from collectors.candles.window import Partial, check_range, restrict_to_range
from collectors.model import DEFAULT_TIMEFRAMES, Candle, CandleSource, Timeframe, Trade
from collectors.validation import check_trade

__all__ = ["final_candles", "reaggregate_trades", "same_values"]

# Fields that describe where a row came from rather than what it says.
_META_FIELDS = ("source", "revision")


def final_candles(events: Iterable[CandleEvent]) -> dict[str, list[Candle]]:
    """The last closed or revised version of each candle, per timeframe, ascending ``open_time_ms``."""
    latest: dict[tuple[str, int], Candle] = {}
    for event in events:
        if isinstance(event, CandleClosed | CandleRevised):
            latest[(event.candle.timeframe, event.candle.open_time_ms)] = event.candle
    result: dict[str, list[Candle]] = {}
    for key in sorted(latest):
        result.setdefault(key[0], []).append(latest[key])
    return result


def reaggregate_trades(
    trades: Iterable[Trade],
    *,
    exchange: str,
    inst_id: str,
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
    no_data: Iterable[tuple[int, int]] = (),
    closed_until_ms: int | None = None,
    source: CandleSource = CandleSource.REAGGREGATE,
    complete_range: tuple[int, int] | None = None,
    partial: Partial = "drop",
    previous_close: Decimal | None = None,
) -> dict[str, list[Candle]]:
    """Closed candles of ``trades`` (any order) via :class:`CandleEngine`, like ``aggregate_frame`` does.

    The trades are de-duplicated by trade id (the first in input order counts, the engine's rule) and sorted
    by ``(ts_ms, trade_id)`` once, then fed in order: the cost is that of sorted input whatever the order
    (shuffled input used to revise closed candles over and over). ``complete_range``, ``partial`` and
    ``previous_close`` as in :func:`~collectors.candles.batch.aggregate_frame` (range re-aggregation
    without partial candles).
    """
    trades = _first_of_each_id_in_order(trades)
    if complete_range is not None:
        check_range(*complete_range)
        lo, hi = complete_range
        trades = [t for t in trades if lo <= t.ts_ms < hi]
        if closed_until_ms is None:
            closed_until_ms = hi
    elif previous_close is not None:
        raise ValueError("previous_close needs complete_range (where the carried candles start)")
    if previous_close is not None:
        check_close(previous_close)
    config = EngineConfig(
        timeframes=tuple(timeframes),
        empty_policy=empty_policy,
        emit_updates=False,
        source=source,
        allowed_lateness_ms=0,
        retention_ms=2**62,
    )
    engine = CandleEngine(exchange=exchange, inst_id=inst_id, config=config)
    events: list[CandleEvent] = []
    if previous_close is not None and complete_range is not None:
        engine.seed_close(previous_close, complete_range[0])
    for start_ms, end_ms in no_data:
        events += engine.mark_no_data(start_ms, end_ms)
    events += engine.on_trades(trades)
    if closed_until_ms is not None:
        events += engine.advance(closed_until_ms)
    events += engine.flush()
    built = final_candles(events)
    # every asked timeframe has its list, empty when no candle closed in it
    result = {name: [_reset(c) for c in built.get(name, [])] for name in config.timeframes}
    if complete_range is not None:
        result = {
            name: restrict_to_range(candles, Timeframe.parse(name), complete_range, partial)
            for name, candles in result.items()
        }
    return result


def _first_of_each_id_in_order(trades: Iterable[Trade]) -> list[Trade]:
    first: dict[int, Trade] = {}
    for trade in map(check_trade, trades):  # InvalidRecord before sorting compares anything
        first.setdefault(trade.trade_id, trade)
    return sorted(first.values(), key=lambda t: (t.ts_ms, t.trade_id))


def _reset(candle: Candle) -> Candle:
    """Revisions inside one re-aggregation call are an artefact of arrival order, not of the data."""
    return candle if candle.revision == 0 else dataclasses.replace(candle, revision=0)


def same_values(a: Candle, b: Candle) -> bool:
    """Equal in every field except ``source`` and ``revision`` (``Decimal`` compares by value)."""
    return all(
        getattr(a, name) == getattr(b, name) for name in a.__dataclass_fields__ if name not in _META_FIELDS
    )
