"""The engine's refusals: input it does not take, and watermarks or trades that would carry absurdly far.

Every check runs before the engine changes anything, so a refused call leaves it exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors.candles.exact import MAX_VALUE, MIN_VALUE
from collectors.candles.series import Series
from collectors.candles.spans import check_int_ms
from collectors.errors import InvalidRecord
from collectors.model import Trade
from collectors.validation import TS_MAX_MS, TS_MIN_MS, check_trade

__all__ = ["check_jump", "check_ms", "check_old_trade", "refuse"]


def refuse(trade: Trade) -> None:
    """Raise :class:`InvalidRecord` for a trade the engine's inline check did not pass: the reason of
    :func:`~collectors.validation.check_trade` (the one domain rule), or a price or size outside the exact
    range (see exact.py)."""
    check_trade(trade)
    for field, value in (("price", trade.price), ("size", trade.size)):
        if not MIN_VALUE <= value < MAX_VALUE:
            raise InvalidRecord(
                f"{field}={value!r}: outside the candle engine's exact range [{MIN_VALUE}, {MAX_VALUE})",
                field=field,
                value=repr(value),
            )
    raise AssertionError(f"trade refused without a reason: {trade!r}")  # the inline rule and this differ


def check_ms(ts_ms: int) -> None:
    """``TypeError`` for a time that is not an ``int`` (a float or ``Decimal`` would make open times of that
    type), ``ValueError`` for one that is not in milliseconds between 2000 and 2100 UTC."""
    check_int_ms(ts_ms)
    if not TS_MIN_MS <= ts_ms < TS_MAX_MS:
        raise ValueError(f"timestamp {ts_ms} is not in milliseconds between 2000 and 2100 UTC")


def check_jump(series_list: Sequence[Series], watermark_ms: int, lateness_ms: int, limit: int) -> None:
    """Refuse a watermark that would emit more than ``limit`` carried candles in one timeframe at once."""
    boundary_ms = watermark_ms - lateness_ms
    for series in series_list:
        if not series.carry:
            continue
        # carrying starts at closed_through once a close is known, else after the first open bucket
        start = series.closed_through if series.last_close is not None else min(series.open, default=None)
        if start is not None:
            boundary = series.bucket(boundary_ms)
            opened = sum(1 for s in series.open if start <= s < boundary)
            count = (boundary - start) // series.duration_ms - opened
            if count > limit:
                raise ValueError(
                    f"watermark {watermark_ms} would carry {count} empty {series.name} candles at once "
                    f"(max_carried_per_call={limit}); is it in milliseconds?"
                )


def check_old_trade(series_list: Sequence[Series], ts_ms: int, watermark_ms: int | None, limit: int) -> None:
    """Refuse a trade so old that it would carry into more than ``limit`` buckets that were never emitted (an
    engine restarted long after its last candle, then fed a very old trade)."""
    if watermark_ms is None:
        return
    for series in series_list:
        through = series.closed_through
        if not series.carry or through is None:
            continue
        start = series.bucket(ts_ms)
        if series.before_seed(start):
            continue  # nothing is carried before a seed
        frontier = series.emitted_from if series.emitted_from is not None else through
        if start + series.keep_ms <= watermark_ms and start < frontier:
            count = (frontier - start) // series.duration_ms - 1
            if count > limit:
                raise ValueError(
                    f"trade at {ts_ms} would carry {count} empty {series.name} candles at once "
                    f"(max_carried_per_call={limit}); re-aggregate that range"
                )
