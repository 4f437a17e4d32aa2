"""Higher timeframes from lower ones (typically 1m), equal to aggregating the trades directly.

Exact for the same reasons as the engine: sums of decimals inside :data:`~collectors.candles.exact.EXACT`.
Input candles of the same instrument and timeframe; carried (empty) input candles contribute nothing but
their place in time, so the result does not depend on the input's empty-interval policy. Several versions of
one candle (an event stream with revisions) count once: the highest ``revision``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from decimal import localcontext

from collectors.candles.events import EmptyPolicy
from collectors.candles.exact import EXACT, ZERO
from collectors.candles.fill import fill_series
from collectors.candles.replay import same_values
from collectors.candles.spans import SpanSet
from collectors.model import Candle, Timeframe

__all__ = ["rollup"]


def rollup(
    candles: Sequence[Candle],
    timeframe: str,
    *,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
    no_data: Iterable[tuple[int, int]] = (),
    closed_until_ms: int | None = None,
) -> list[Candle]:
    """Candles of ``timeframe`` built from finer ``candles`` whose buckets nest in it.

    Of several versions of one candle, the highest ``revision`` counts. Raises ``ValueError`` when the input
    mixes instruments or timeframes, does not nest (5m into 3m), or holds two different candles with the same
    open time and revision.
    Pass the same ``no_data`` spans the input was built with: a coarse bucket that overlaps one is
    incomplete even when the fine candles inside it are all skipped.
    """
    target = Timeframe.parse(timeframe)
    _check_input(candles, target)
    real = sorted((c for c in _newest_versions(candles) if c.trade_count > 0), key=lambda c: c.open_time_ms)
    groups: dict[int, list[Candle]] = {}
    for candle in real:
        groups.setdefault(target.bucket_start_ms(candle.open_time_ms), []).append(candle)
    with localcontext(EXACT):
        merged = [_merge(start, group, target) for start, group in groups.items()]
    return fill_series(
        merged, target, policy=empty_policy, no_data=SpanSet(no_data), closed_until_ms=closed_until_ms
    )


def _check_input(candles: Sequence[Candle], target: Timeframe) -> None:
    keys = {(c.exchange, c.inst_id, c.timeframe) for c in candles}
    if len(keys) > 1:
        raise ValueError(f"rollup input mixes series: {sorted(keys)}")
    for _, _, name in keys:
        source = Timeframe.parse(name)
        if not source.nests_in(target):
            raise ValueError(f"{source.name} candles do not nest in {target.name}")


def _newest_versions(candles: Sequence[Candle]) -> list[Candle]:
    """One candle per open time: the highest revision (identical repeats allowed, conflicting ones refused)."""
    newest: dict[int, Candle] = {}
    for candle in candles:
        seen = newest.get(candle.open_time_ms)
        if seen is None or candle.revision > seen.revision:
            newest[candle.open_time_ms] = candle
        elif candle.revision == seen.revision and not same_values(candle, seen):
            raise ValueError(
                f"two different candles at {candle.open_time_ms} with revision {candle.revision} in rollup input"
            )
    return list(newest.values())


def _merge(start_ms: int, group: list[Candle], target: Timeframe) -> Candle:
    first, last = group[0], group[-1]
    volume = sum((c.volume for c in group), start=ZERO)
    buy = sum((c.buy_volume for c in group), start=ZERO)
    return dataclasses.replace(
        first,
        timeframe=target.name,
        open_time_ms=start_ms,
        high=max(c.high for c in group),
        low=min(c.low for c in group),
        close=last.close,
        volume=volume,
        quote_volume=sum((c.quote_volume for c in group), start=ZERO),
        trade_count=sum(c.trade_count for c in group),
        buy_volume=buy,
        sell_volume=(volume - buy) or ZERO,  # zero as 0, like the engine and the batch path
        last_trade_id=last.last_trade_id,
        last_trade_ms=last.last_trade_ms,
        is_closed=all(c.is_closed for c in group),
        is_complete=all(c.is_complete for c in group),
        revision=0,
    )
