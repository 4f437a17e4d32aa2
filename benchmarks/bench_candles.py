"""Candle engine benchmarks: streaming throughput, batch re-aggregation, streaming memory.

Every entry compares our figure with a baseline measured in the same run on the same synthetic trades
(deterministic seed), so the ratio is meaningful even on a different machine. Our repeats and the baseline's
alternate (ours, baseline, baseline, ours, ...): each pair gives a ratio under the same load, the entry
reports the pair with the median ratio, and ``params`` hold every pair's ratio (``ratios``, ``ratio_min``,
``ratio_max``) and each side's best throughput, so the spread on a loaded machine is visible:

1. ``candles.streaming``: trades/s through :class:`CandleEngine` (six default timeframes, one trade per call,
   updates off, exact sums, lateness, de-duplication, closing) vs a tight bare loop keeping only OHLC, volume
   and count per timeframe with ``Decimal`` (current row per timeframe in a list, bucket end compared; see
   :func:`bare_loop`). Further entries, same baseline, with ``CandleUpdated`` on: one trade per call
   (``candles.streaming_updates``), the same while reading every update's candle
   (``candles.streaming_updates_read``), and live-like frames of 10 trades per call with updates on
   (``candles.streaming_frames_with_updates``, what the live collector does) and off
   (``candles.streaming_frames``).
2. ``candles.batch``: trades/s of :func:`aggregate_frame` (integer ticks/lots, exact) over 5M trades into six
   timeframes vs pandas ``resample`` (OHLC, volume, quote volume, count) on float64 columns.
3. ``candles.memory``: tracemalloc peak streaming 1M trades vs 100k (quick: 200k vs 20k); ~20 trades/s, so
   both runs are longer than the de-duplication window (10 min) and the ratio shows the bound.
4. ``candles.reaggregate_shuffled``: trades/s of :func:`reaggregate_trades` on the tape shuffled vs the same
   tape in order (200k trades; quick: 20k): a ratio near 1 says the cost does not depend on the order.

``run(quick=True)`` shrinks every size for a smoke run. ``python -m benchmarks.bench_candles [--quick]``
prints the entries as JSON.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from collectors.candles import CandleEngine, CandleUpdated, EngineConfig, aggregate_frame, reaggregate_trades
from collectors.model import DEFAULT_TIMEFRAMES, Instrument, Side, Timeframe, Trade

SEED = 20_261_124
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BTC = Instrument(
    exchange="okx",
    inst_id="BTC-USDT",
    base_ccy="BTC",
    quote_ccy="USDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.00000001"),
    min_size=Decimal("0.00001"),
)


def synthetic_columns(count: int, seed: int = SEED) -> pd.DataFrame:
    """A BTC-like tape: ~20 trades/s with bursts, random-walk price in ticks, log-normal sizes in lots."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(50.0, count).astype(np.int64)
    ts = START_MS + np.cumsum(gaps)
    steps = rng.integers(-3, 4, count)
    price = np.maximum(600_000 + np.cumsum(steps), 1)
    size = np.maximum(rng.lognormal(13.0, 2.0, count).astype(np.int64), 1)  # ~0.004 BTC median
    return pd.DataFrame(
        {
            "ts_ms": ts,
            "trade_id": np.arange(1, count + 1, dtype=np.int64),
            "price_ticks": price.astype(np.int64),
            "size_lots": np.minimum(size, 10**11).astype(np.int64),
            "is_buy": rng.random(count) < 0.5,
        }
    )


def synthetic_trades(count: int, seed: int = SEED) -> list[Trade]:
    return list(iter_trades(synthetic_columns(count, seed)))


def iter_trades(frame: pd.DataFrame) -> Iterator[Trade]:
    """Trades built one at a time from the integer columns (so a long tape need not sit in memory)."""
    for ts, tid, px, sz, buy in frame.itertuples(index=False):
        yield Trade(
            exchange="okx",
            inst_id=BTC.inst_id,
            trade_id=int(tid),
            ts_ms=int(ts),
            price=Decimal(int(px)).scaleb(-1),
            size=Decimal(int(sz)).scaleb(-8),
            side=Side.BUY if buy else Side.SELL,
        )


def _seconds(fn: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _paired(
    repeats: int, ours: Callable[[], object], theirs: Callable[[], object]
) -> list[tuple[float, float]]:
    """``repeats`` pairs of (our seconds, the baseline's seconds), run alternately (ABAB...): on a machine
    shared with other work the load drifts, and a ratio taken within a pair sees the same load on both."""
    pairs = []
    for i in range(repeats):
        if i % 2:  # alternate which runs first, so neither is always the warm or the cold one
            theirs_s = _seconds(theirs)
            ours_s = _seconds(ours)
        else:
            ours_s = _seconds(ours)
            theirs_s = _seconds(theirs)
        pairs.append((ours_s, theirs_s))
    return pairs


def _entry(
    name: str,
    metric: str,
    value: float,
    unit: str,
    baseline: str,
    baseline_value: float,
    params: dict[str, Any],
) -> dict[str, Any]:
    return {
        "name": name,
        "metric": metric,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": value / baseline_value,
        "params": params,
    }


def _paired_entry(
    name: str, count: int, pairs: list[tuple[float, float]], baseline: str, params: dict[str, Any]
) -> dict[str, Any]:
    """A throughput entry from interleaved pairs: ``value`` and ``baseline_value`` are those of the pair with
    the median ratio (so ``ratio = value / baseline_value`` still holds); the params give every pair's ratio,
    their spread, and each side's best."""
    ratios = [theirs / ours for ours, theirs in pairs]  # (count / ours) / (count / theirs)
    order = sorted(range(len(pairs)), key=ratios.__getitem__)
    ours, theirs = pairs[order[(len(order) - 1) // 2]]  # the lower median for an even count
    return _entry(
        name,
        "throughput",
        count / ours,
        "trades/s",
        baseline,
        count / theirs,
        params
        | {
            "pairs": len(pairs),
            "ratios": [round(r, 3) for r in ratios],
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
            "best": round(count / min(o for o, _ in pairs), 1),
            "baseline_best": round(count / min(t for _, t in pairs), 1),
        },
    )


# -- 1. streaming -------------------------------------------------------------------------------------------


def stream_engine(
    trades: list[Trade], *, chunk: int = 1, emit_updates: bool = False, read_updates: bool = False
) -> int:
    """Feed ``trades`` ``chunk`` per call; ``read_updates`` also builds every update's ``Candle`` (a consumer
    that looks at each one; updates are built lazily otherwise)."""
    engine = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(emit_updates=emit_updates))
    events = 0
    if chunk == 1:
        for trade in trades:
            out = engine.on_trade(trade)
            if read_updates:
                for event in out:
                    if isinstance(event, CandleUpdated):
                        event.candle  # noqa: B018 - builds the deferred candle
            events += len(out)
    else:
        for i in range(0, len(trades), chunk):
            events += len(engine.on_trades(trades[i : i + chunk]))
    return events + len(engine.flush())


def bare_loop(trades: list[Trade]) -> int:
    """The floor: a tight loop keeping OHLC + volume + count per timeframe with Decimal, nothing else.

    The current row of each timeframe lives in a list indexed by timeframe, beside the end of its bucket; a
    trade before the finest bucket's end (the common case: buckets nest, so every coarser bucket ends later)
    updates every row without any bucket arithmetic; otherwise each timeframe whose bucket ended starts a new
    row (kept in a list of rows per timeframe). No dictionary look-ups, no closing, no events, no ordering,
    no de-duplication: trades are assumed in time order.
    """
    durations = [Timeframe.parse(name).duration_ms for name in DEFAULT_TIMEFRAMES]
    span = range(len(durations))
    rows: list[list[Any]] = [[] for _ in durations]
    kept: list[list[list[Any]]] = [[] for _ in durations]
    ends = [-(2**62)] * len(durations)
    for trade in trades:
        price, size, ts = trade.price, trade.size, trade.ts_ms
        if ts < ends[0]:
            for row in rows:
                if price > row[1]:
                    row[1] = price
                elif price < row[2]:
                    row[2] = price
                row[3] = price
                row[4] += size
                row[5] += 1
            continue
        for i in span:
            if ts >= ends[i]:
                duration = durations[i]
                ends[i] = ts - ts % duration + duration
                rows[i] = row = [price, price, price, price, size, 1]
                kept[i].append(row)
            else:
                row = rows[i]
                if price > row[1]:
                    row[1] = price
                elif price < row[2]:
                    row[2] = price
                row[3] = price
                row[4] += size
                row[5] += 1
    return sum(len(rows_of) for rows_of in kept)


def bench_streaming(count: int, repeats: int) -> list[dict[str, Any]]:
    trades = synthetic_trades(count)
    params = {"trades": count, "timeframes": list(DEFAULT_TIMEFRAMES), "repeats": repeats}
    baseline = "tight bare Decimal OHLC+volume+count loop, rows in lists (same run, interleaved)"
    variants: list[tuple[str, Callable[[], object], dict[str, Any]]] = [
        (
            "candles.streaming",
            lambda: stream_engine(trades),
            {"per_call": 1, "emit_updates": False},
        ),
        (
            "candles.streaming_updates",
            lambda: stream_engine(trades, emit_updates=True),
            {"per_call": 1, "emit_updates": True, "updates_read": False},
        ),
        (
            "candles.streaming_updates_read",
            lambda: stream_engine(trades, emit_updates=True, read_updates=True),
            {"per_call": 1, "emit_updates": True, "updates_read": True},
        ),
        (
            "candles.streaming_frames_with_updates",
            lambda: stream_engine(trades, chunk=10, emit_updates=True),
            {"per_call": 10, "emit_updates": True, "updates_read": False},
        ),
        (
            "candles.streaming_frames",
            lambda: stream_engine(trades, chunk=10),
            {"per_call": 10, "emit_updates": False},
        ),
    ]
    bare = lambda: bare_loop(trades)  # noqa: E731
    return [
        _paired_entry(name, count, _paired(repeats, ours, bare), baseline, params | extra)
        for name, ours, extra in variants
    ]


# -- 2. batch -----------------------------------------------------------------------------------------------

_PANDAS_RULES = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}


def pandas_resample(frame: pd.DataFrame) -> int:
    """Float64 baseline: OHLC, volume, quote volume and count per timeframe with ``resample``."""
    rows = 0
    for rule in _PANDAS_RULES.values():
        resampled = frame.resample(rule)
        ohlc = resampled["price"].ohlc()
        sums = resampled[["size", "quote"]].sum()
        counts = resampled["price"].count()
        rows += len(ohlc) + len(sums) + len(counts)
    return rows


def bench_batch(count: int, repeats: int) -> dict[str, Any]:
    frame = synthetic_columns(count)
    floats = pd.DataFrame(
        {"price": frame["price_ticks"] * 0.1, "size": frame["size_lots"] * 1e-8},
        index=pd.to_datetime(frame["ts_ms"], unit="ms"),
    )
    floats["quote"] = floats["price"] * floats["size"]
    pairs = _paired(repeats, lambda: aggregate_frame(frame, instrument=BTC), lambda: pandas_resample(floats))
    return _paired_entry(
        "candles.batch",
        count,
        pairs,
        "pandas resample on float64 (same run, interleaved)",
        {"trades": count, "timeframes": list(DEFAULT_TIMEFRAMES), "repeats": repeats, "exact": True},
    )


# -- 3. memory ----------------------------------------------------------------------------------------------


def _peak_bytes(count: int) -> int:
    """tracemalloc peak while streaming ``count`` trades (generated lazily, one at a time)."""
    frame = synthetic_columns(count, seed=SEED + 1)
    gc.collect()
    tracemalloc.start()
    try:
        engine = CandleEngine(exchange="okx", inst_id=BTC.inst_id, config=EngineConfig(emit_updates=False))
        for trade in iter_trades(frame):
            engine.on_trade(trade)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def bench_memory(short: int) -> dict[str, Any]:
    long = 10 * short
    long_peak, short_peak = _peak_bytes(long), _peak_bytes(short)
    return _entry(
        "candles.memory",
        "tracemalloc_peak",
        float(long_peak),
        "bytes",
        f"same engine over {short} trades",
        float(short_peak),
        {"trades": long, "baseline_trades": short, "goal": "ratio close to 1 (bounded)"},
    )


# -- 4. re-aggregation order ------------------------------------------------------------------------------


def bench_reaggregate_order(count: int, repeats: int) -> dict[str, Any]:
    trades = synthetic_trades(count)
    shuffled = [trades[i] for i in np.random.default_rng(SEED).permutation(count)]

    def reaggregate(tape: list[Trade]) -> object:
        return reaggregate_trades(tape, exchange="okx", inst_id=BTC.inst_id)

    pairs = _paired(repeats, lambda: reaggregate(shuffled), lambda: reaggregate(trades))
    return _paired_entry(
        "candles.reaggregate_shuffled",
        count,
        pairs,
        "reaggregate_trades on the same tape in order (same run, interleaved)",
        {"trades": count, "timeframes": list(DEFAULT_TIMEFRAMES), "repeats": repeats},
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    """All candle benchmark entries (see the module docstring)."""
    stream_count, batch_count, memory_count, repeats = (
        (20_000, 200_000, 20_000, 1) if quick else (200_000, 5_000_000, 100_000, 5)
    )
    return [
        *bench_streaming(stream_count, repeats),
        bench_batch(batch_count, repeats),
        bench_memory(memory_count),
        bench_reaggregate_order(stream_count, repeats),
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
