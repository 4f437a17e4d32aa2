"""Hypothesis strategies for candle tests: tapes, arrival orders, chunkings."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

from collectors.model import Instrument, Trade
from tests.builders import BTC, DOGE, ETH_USDC, MONDAY_MS, grid_trade

# 2024-01-01 00:00 UTC (MONDAY_MS) was a Monday: a day and a week boundary. 2024-03-13 12:00 UTC: mid-week, mid-day.
ANCHORS = (MONDAY_MS, MONDAY_MS + 6 * 86_400_000 + 23 * 3_600_000, 1_710_331_200_000)
TIMEFRAMES = ("1s", "1m", "3m", "5m", "15m", "1h", "4h", "6h", "1d", "1w")


@dataclass(frozen=True)
class Tape:
    instrument: Instrument
    trades: list[Trade]  # ascending (ts_ms, trade_id), unique ids


@st.composite
def tapes(draw: st.DrawFn, *, max_trades: int = 40, max_gap_ms: int = 3 * 3_600_000) -> Tape:
    instrument = draw(st.sampled_from((BTC, DOGE, ETH_USDC)))
    ts = draw(st.sampled_from(ANCHORS)) + draw(st.integers(-5_000, 5_000))
    trade_id = draw(st.integers(1, 10**12))
    prices = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=5))
    steps = st.one_of(st.just(0), st.integers(0, 2_500), st.integers(0, 400_000), st.integers(0, max_gap_ms))
    trades = []
    for _ in range(draw(st.integers(1, max_trades))):
        ts += draw(steps)
        trade_id += draw(st.integers(1, 3))
        ticks = draw(st.one_of(st.sampled_from(prices), st.integers(1, 10**12)))
        lots = draw(st.one_of(st.integers(1, 1_000), st.integers(1, 10**18)))
        trades.append(grid_trade(instrument, trade_id, ts, ticks, lots, draw(st.booleans())))
    return Tape(instrument=instrument, trades=trades)


@st.composite
def arrivals_within(draw: st.DrawFn, trades: list[Trade], lateness_ms: int) -> list[Trade]:
    """An arrival order where each trade is at most ``lateness_ms - 1`` late, with some duplicates."""
    delays = [draw(st.integers(0, max(lateness_ms - 1, 0))) for _ in trades]
    order = sorted(range(len(trades)), key=lambda i: (trades[i].ts_ms + delays[i], i))
    arrived = [trades[i] for i in order]
    for position in draw(st.lists(st.integers(0, len(arrived) - 1), max_size=3)):
        arrived.insert(position + 1, arrived[position])  # a resent trade right after the original
    return arrived


@st.composite
def chunkings(draw: st.DrawFn, items: list[Trade]) -> list[list[Trade]]:
    cuts = sorted(draw(st.sets(st.integers(0, len(items)), max_size=6)) | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(cuts)]
