"""Re-aggregating a sub-range without overwriting correct rows with partial ones.

A candle is only right when every trade of its bucket was aggregated. Re-aggregating trades from 01:00 to
02:17 yields a partial 02:00 hourly candle and a partial daily candle: upserted, they would overwrite the
correct live rows. Two tools prevent that:

* :func:`reaggregation_window` widens a range to the edges of the coarsest buckets it touches, so every
  candle of the re-aggregation is complete (fetch the trades of the widened range);
* ``complete_range=(start_ms, end_ms)`` on :func:`~collectors.candles.batch.aggregate_frame` and
  :func:`~collectors.candles.replay.reaggregate_trades` states which trades were supplied: candles whose
  bucket is not entirely inside the range are dropped (``partial="drop"``, the default) or kept with
  ``is_complete=False`` (``partial="incomplete"``); trades outside the range are ignored, and carried
  candles are emitted from the range start (seeded with ``previous_close``, the close before the range) to
  the range end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

from collectors.model import Candle, Timeframe

__all__ = ["Partial", "check_range", "reaggregation_window", "restrict_to_range"]

Partial: TypeAlias = Literal["drop", "incomplete"]


def reaggregation_window(start_ms: int, end_ms: int, timeframes: Iterable[str]) -> tuple[int, int]:
    """The smallest ``[start, end)`` containing ``[start_ms, end_ms)`` whose edges are bucket edges of every
    timeframe (for the defaults: whole UTC days), so re-aggregating it gives only complete candles."""
    check_range(start_ms, end_ms)
    frames = [Timeframe.parse(name) for name in timeframes]
    if not frames:
        raise ValueError("at least one timeframe is required")
    start, end = start_ms, end_ms
    while True:  # widening for one timeframe can move an edge off another's grid (3m and 5m): repeat
        new_start = min(tf.bucket_start_ms(start) for tf in frames)
        new_end = max(tf.bucket_start_ms(end - 1) + tf.duration_ms for tf in frames)
        if (new_start, new_end) == (start, end):
            return start, end
        start, end = new_start, new_end


def check_range(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise ValueError(f"empty or reversed range [{start_ms}, {end_ms})")


def restrict_to_range(
    candles: Sequence[Candle], tf: Timeframe, complete_range: tuple[int, int], partial: Partial
) -> list[Candle]:
    """Candles of one timeframe whose bucket lies inside ``complete_range``; the others dropped or marked."""
    if partial not in ("drop", "incomplete"):
        raise ValueError(f"partial must be 'drop' or 'incomplete', not {partial!r}")
    start, end = complete_range
    out = []
    for candle in candles:
        inside = start <= candle.open_time_ms and candle.open_time_ms + tf.duration_ms <= end
        if inside:
            out.append(candle)
        elif partial == "incomplete":
            out.append(candle if not candle.is_complete else dataclasses.replace(candle, is_complete=False))
    return out
