"""Vectorised re-aggregation of an ordered batch of trades: exact, and identical to the streaming engine.

Prices and sizes arrive as integer multiples of the instrument's tick and lot size (``price_ticks``,
``size_lots``), so every OHLC value, count and sum is integer arithmetic on ``int64`` columns. Overflow is
ruled out up front, never detected after the fact: when a sum's bound ``n * max`` does not fit in ``int64``
the values are split into 32-bit limbs whose sums cannot overflow, recombined per candle as Python integers;
``price x size`` is split the same way (size in 31-bit limbs), and only beyond ``price_ticks >= 2**32`` falls
back to Python integers per trade. Only the final candles are converted back to
:class:`~decimal.Decimal` (``units * step``, exact).

Coarser timeframes are built from the groups of the largest finer timeframe that nests in them (1m -> 5m ->
15m -> 1h -> 4h, 1h -> 1d -> 1w), which is the same arithmetic as grouping the trades again. The result
equals feeding the trades one by one to :class:`~collectors.candles.engine.CandleEngine` and flushing it
(tested property); a candle equals another when every value field is equal (``Decimal`` compares by value).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in requirements.txt

from collectors.candles.events import EmptyPolicy
from collectors.candles.exact import EXACT, check_close, scaled
from collectors.candles.fill import fill_series, seed_candle
from collectors.candles.spans import SpanSet
from collectors.candles.window import Partial, check_range, restrict_to_range
from collectors.errors import InvalidRecord
from collectors.model import DEFAULT_TIMEFRAMES, Candle, CandleSource, Instrument, Side, Timeframe, Trade
from collectors.validation import POSITIVE_REASON, TS_MAX_MS, TS_MIN_MS, check_trade, check_ts_ms

__all__ = ["FRAME_COLUMNS", "aggregate_frame", "frame_from_trades", "to_units"]

FRAME_COLUMNS: Final = ("ts_ms", "trade_id", "price_ticks", "size_lots", "is_buy")
_INT64_MAX: Final = 2**63 - 1
_LIMB_BITS: Final = 32
_LOW_MASK: Final = 2**_LIMB_BITS - 1
_SIZE_BITS: Final = 31
_SIZE_MASK: Final = 2**_SIZE_BITS - 1

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class _Groups:
    """One row per non-empty bucket; prices in ticks, sizes in lots, quote in ticks x lots."""

    start: Array
    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array
    buy: Array
    quote: Array
    count: Array
    first_id: Array
    last_id: Array
    first_ms: Array
    last_ms: Array


def frame_from_trades(trades: Iterable[Trade], instrument: Instrument) -> pd.DataFrame:
    """Trades as the integer frame :func:`aggregate_frame` reads.

    Each trade must pass :func:`~collectors.validation.check_trade` (raises ``InvalidRecord``: a plain string
    side, a price or size <= 0, a float timestamp, ...); raises ``ValueError`` off the tick/lot grid.
    """
    rows = [
        (
            t.ts_ms,
            t.trade_id,
            instrument.price_ticks(t.price),
            instrument.size_lots(t.size),
            t.side is Side.BUY,
        )
        for t in map(check_trade, trades)
    ]
    if any(r[2] > _INT64_MAX or r[3] > _INT64_MAX for r in rows):
        raise ValueError("price ticks or size lots beyond int64: aggregate these trades with CandleEngine")
    frame = pd.DataFrame.from_records(rows, columns=list(FRAME_COLUMNS))
    return frame.astype({"ts_ms": "int64", "trade_id": "int64", "price_ticks": "int64", "size_lots": "int64"})


def aggregate_frame(
    frame: pd.DataFrame,
    *,
    instrument: Instrument,
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP,
    no_data: Iterable[tuple[int, int]] = (),
    closed_until_ms: int | None = None,
    source: CandleSource = CandleSource.REAGGREGATE,
    complete_range: tuple[int, int] | None = None,
    partial: Partial = "drop",
    previous_close: Decimal | None = None,
) -> dict[str, list[Candle]]:
    """Closed candles per timeframe (ascending ``open_time_ms``) from a frame with :data:`FRAME_COLUMNS`.

    Rows may come in any order; rows with the same ``trade_id`` count once (the first in input order, as
    when the rows are fed to the engine in that order), whatever their ``ts_ms``. Carried candles
    (``empty_policy=CARRY``) fill empty buckets after the first trade up to the last non-empty bucket, and
    on to buckets ending at or before ``closed_until_ms`` when given; never inside a ``no_data`` span.

    ``complete_range=(start_ms, end_ms)``: the frame holds every trade of that range (rows outside it are
    ignored). Candles whose bucket is not entirely inside it are dropped (``partial="drop"``) or marked
    ``is_complete=False`` (``partial="incomplete"``); ``closed_until_ms`` defaults to ``end_ms``, and
    ``previous_close`` (the close before ``start_ms``) seeds carried candles from the range start. See
    :func:`~collectors.candles.window.reaggregation_window` to widen a range to complete candles.
    """
    spans = SpanSet(no_data)
    frames = sorted((Timeframe.parse(name) for name in timeframes), key=lambda tf: tf.duration_ms)
    cols = _prepare(frame)
    if complete_range is not None:
        check_range(*complete_range)
        inside = (cols["ts_ms"] >= complete_range[0]) & (cols["ts_ms"] < complete_range[1])
        if not inside.all():
            cols = {c: v[inside] for c, v in cols.items()}
        if closed_until_ms is None:
            closed_until_ms = complete_range[1]
    elif previous_close is not None:
        raise ValueError("previous_close needs complete_range (where the carried candles start)")
    if previous_close is not None:
        check_close(previous_close)
    built: list[tuple[Timeframe, _Groups]] = []
    result: dict[str, list[Candle]] = {}
    for tf in frames:
        finer = next((g for done, g in reversed(built) if done.nests_in(tf)), None)
        groups = _group_trades(cols, tf) if finer is None else _regroup(finer, tf)
        built.append((tf, groups))
        candles = _to_candles(groups, tf, instrument, source)
        seed = None
        if previous_close is not None and complete_range is not None:
            seed = seed_candle(
                exchange=instrument.exchange,
                inst_id=instrument.inst_id,
                tf=tf,
                before_ms=complete_range[0],
                close=previous_close,
                source=source,
            )
        filled = fill_series(
            candles, tf, policy=empty_policy, no_data=spans, closed_until_ms=closed_until_ms, seed=seed
        )
        if complete_range is not None:
            filled = restrict_to_range(filled, tf, complete_range, partial)
        result[tf.name] = filled
    return result


def _prepare(frame: pd.DataFrame) -> dict[str, Array]:
    """Columns as numpy arrays sorted by ``(ts_ms, trade_id)`` without duplicate trades."""
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"trade frame lacks columns {missing}")
    cols = {c: _checked_column(frame[c], c) for c in FRAME_COLUMNS}
    ts, tid = cols["ts_ms"], cols["trade_id"]
    if len(ts) > 1 and not bool(np.all(tid[1:] > tid[:-1])):
        # Duplicates by trade id (the engine's rule): the first row in input order counts, whatever its ts.
        _, first = np.unique(tid, return_index=True)
        if len(first) < len(tid):
            first.sort()
            cols = {c: v[first] for c, v in cols.items()}
            ts, tid = cols["ts_ms"], cols["trade_id"]
    if len(ts) > 1 and not _strictly_increasing(ts, tid):
        order = np.lexsort((tid, ts))
        cols = {c: v[order] for c, v in cols.items()}
    _check_rows(cols)
    return cols


def _check_rows(cols: dict[str, Array]) -> None:
    """The trade rule of :func:`~collectors.validation.check_trade` on whole columns: ``InvalidRecord`` naming
    the column and the first offending value, with the same reason."""
    for name in ("price_ticks", "size_lots"):
        values = cols[name]
        if len(values) and values.min() <= 0:
            bad = int(values[values <= 0][0])
            raise InvalidRecord(f"{name}={bad!r}: {POSITIVE_REASON}", field=name, value=repr(bad))
    ts = cols["ts_ms"]
    if len(ts) and (ts.min() < TS_MIN_MS or ts.max() >= TS_MAX_MS):
        check_ts_ms(int(ts[(ts < TS_MIN_MS) | (ts >= TS_MAX_MS)][0]), "ts_ms")


def _checked_column(column: pd.Series, name: str) -> Array:
    """``column`` as int64 (bool for ``is_buy``), refusing any value the conversion would change."""
    values: Array = column.to_numpy()
    kind = values.dtype.kind
    if name == "is_buy":
        if kind == "b":
            return np.asarray(values, dtype=np.bool_)
        if kind == "O" and all(type(v) is bool or isinstance(v, np.bool_) for v in values):
            return np.asarray(values, dtype=np.bool_)
        raise ValueError(
            f"column 'is_buy' must hold booleans, not {values.dtype} (e.g. is_buy = side == 'buy')"
        )
    if kind == "i":
        return np.asarray(values, dtype=np.int64)
    if kind == "u":
        if len(values) and int(values.max()) > _INT64_MAX:
            raise ValueError(f"column {name!r} has values beyond int64")
        return np.asarray(values, dtype=np.int64)
    if kind == "O" and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        if any(not -_INT64_MAX - 1 <= int(v) <= _INT64_MAX for v in values):
            raise ValueError(f"column {name!r} has values beyond int64")
        return np.asarray(values, dtype=np.int64)
    hint = " (convert prices and sizes with to_units)" if name in ("price_ticks", "size_lots") else ""
    raise ValueError(f"column {name!r} must hold integers, not {values.dtype}{hint}")


def to_units(values: Iterable[object] | pd.Series | Array, step: Decimal, *, column: str = "values") -> Array:
    """Exact integer multiples of ``step`` (tick or lot size) from decimal strings or ``Decimal``s, as int64.

    Vectorised on the strings (``"64321.2"``, ``"0.00001234"``; ``Decimal`` and exponent forms such as
    ``"1E-8"`` are first written out in positional notation). Raises ``ValueError`` naming ``column`` for a
    value that is not a non-negative decimal number, is off the ``step`` grid, or exceeds int64 units.
    Floats are refused: they may not be the decimal they print as.
    """
    step = Decimal(step)
    if not step.is_finite() or step <= 0:
        raise ValueError(f"step must be a positive decimal, not {step}")
    raw = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    if len(raw) == 0:
        return np.zeros(0, dtype=np.int64)
    if any(isinstance(v, float | np.floating) for v in raw):
        raise ValueError(f"column {column!r}: floats are not exact decimals; pass strings or Decimals")
    text = raw.map(_positional).str.strip()
    plain = text.str.fullmatch(r"\d+(\.\d*)?|\.\d+")
    if not plain.all():
        bad = raw[~plain.fillna(False).astype(bool)].iloc[0]
        raise ValueError(f"column {column!r}: {bad!r} is not a non-negative decimal number")
    parts = text.str.partition(".")
    whole, fraction = parts[0].str.lstrip("0"), parts[2].str.rstrip("0")
    exponent = -step.as_tuple().exponent if step.as_tuple().exponent < 0 else 0  # type: ignore[operator]
    if (fraction.str.len() > exponent).any():
        bad = raw[(fraction.str.len() > exponent).to_numpy()].iloc[0]
        raise ValueError(f"column {column!r}: {bad!r} is off the {step} grid")
    digits = whole + fraction.str.pad(exponent, side="right", fillchar="0")
    if (digits.str.len() > 18).any():
        bad = raw[(digits.str.len() > 18).to_numpy()].iloc[0]
        raise ValueError(f"column {column!r}: {bad!r} is beyond int64 {step} units")
    scaled = digits.replace("", "0").astype(np.int64).to_numpy()  # value * 10**exponent
    step_scaled = int(step.scaleb(exponent))
    units, remainder = np.divmod(scaled, step_scaled)
    if remainder.any():
        bad = raw[(remainder != 0)].iloc[0]
        raise ValueError(f"column {column!r}: {bad!r} is off the {step} grid")
    result: Array = units.astype(np.int64)
    return result


def _positional(value: object) -> str:
    if isinstance(value, str):
        if "e" not in value and "E" not in value:
            return value
        value = Decimal(value.strip())
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(int(value))
    return repr(value)  # refused by the pattern


def _strictly_increasing(ts: Array, tid: Array) -> bool:
    dts = ts[1:] - ts[:-1]
    return bool(np.all((dts > 0) | ((dts == 0) & (tid[1:] > tid[:-1]))))


def _exact_sums(values: Array, starts: Array) -> Array:
    """Per-group sums of non-negative ``values`` without overflow.

    int64 when ``n * max`` fits; otherwise each value is split into 32-bit limbs whose group sums cannot
    overflow (``n < 2**31``), recombined as Python integers (one per group, so cheap).
    """
    if values.dtype == object or len(values) == 0 or int(values.max()) * len(values) <= _INT64_MAX:
        return _reduce(np.add, values, starts)
    low = _reduce(np.add, values & _LOW_MASK, starts).tolist()
    high = _reduce(np.add, values >> _LIMB_BITS, starts).tolist()
    return np.array([(h << _LIMB_BITS) + lo for h, lo in zip(high, low, strict=True)], dtype=object)


def _quote_sums(px: Array, sz: Array, starts: Array) -> Array:
    """Per-group sums of ``px * sz`` (ticks x lots), exact whatever the magnitudes."""
    if len(px) == 0 or int(px.max()) * int(sz.max()) <= _INT64_MAX:
        return _exact_sums(px * sz, starts)
    if int(px.max()) < 2**_LIMB_BITS:  # px * (sz split in 31-bit limbs) fits in int64
        high = _exact_sums(px * (sz >> _SIZE_BITS), starts).tolist()
        low = _exact_sums(px * (sz & _SIZE_MASK), starts).tolist()
        return np.array([(h << _SIZE_BITS) + lo for h, lo in zip(high, low, strict=True)], dtype=object)
    return _reduce(np.add, px.astype(object) * sz.astype(object), starts)


def _group_trades(cols: dict[str, Array], tf: Timeframe) -> _Groups:
    ts, px, sz = cols["ts_ms"], cols["price_ticks"], cols["size_lots"]
    bucket = tf.bucket_start_ms(ts)
    starts, ends = _bounds(bucket)
    buy_sz = np.where(cols["is_buy"], sz, 0)
    return _Groups(
        start=bucket[starts],
        open=px[starts],
        high=_reduce(np.maximum, px, starts),
        low=_reduce(np.minimum, px, starts),
        close=px[ends - 1],
        volume=_exact_sums(sz, starts),
        buy=_exact_sums(buy_sz, starts),
        quote=_quote_sums(px, sz, starts),
        count=ends - starts,
        first_id=cols["trade_id"][starts],
        last_id=cols["trade_id"][ends - 1],
        first_ms=ts[starts],
        last_ms=ts[ends - 1],
    )


def _regroup(g: _Groups, tf: Timeframe) -> _Groups:
    bucket = tf.bucket_start_ms(g.start)
    starts, ends = _bounds(bucket)
    return _Groups(
        start=bucket[starts],
        open=g.open[starts],
        high=_reduce(np.maximum, g.high, starts),
        low=_reduce(np.minimum, g.low, starts),
        close=g.close[ends - 1],
        volume=_exact_sums(g.volume, starts),
        buy=_exact_sums(g.buy, starts),
        quote=_exact_sums(g.quote, starts),
        count=_reduce(np.add, g.count, starts),
        first_id=g.first_id[starts],
        last_id=g.last_id[ends - 1],
        first_ms=g.first_ms[starts],
        last_ms=g.last_ms[ends - 1],
    )


def _bounds(sorted_keys: Array) -> tuple[Array, Array]:
    """Start and end (exclusive) positions of each run of equal keys."""
    if len(sorted_keys) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change, [len(sorted_keys)])).astype(np.int64)
    return starts, ends


def _reduce(ufunc: np.ufunc, values: Array, starts: Array) -> Array:
    if len(starts) == 0:
        return values[:0]
    reduced: Array = ufunc.reduceat(values, starts)
    return reduced


def _to_candles(g: _Groups, tf: Timeframe, instrument: Instrument, source: CandleSource) -> list[Candle]:
    tick, lot = instrument.tick_size, instrument.lot_size
    step_quote = EXACT.multiply(tick, lot)
    columns = (g.start, g.open, g.high, g.low, g.close, g.volume, g.buy, g.quote, g.count)
    ids = (g.first_id, g.last_id, g.first_ms, g.last_ms)
    out = []
    for (start, o, h, low, c, vol, buy, quote, count), (fid, lid, fms, lms) in zip(
        zip(*(col.tolist() for col in columns), strict=True),
        zip(*(col.tolist() for col in ids), strict=True),
        strict=True,
    ):
        out.append(
            Candle(
                exchange=instrument.exchange,
                inst_id=instrument.inst_id,
                timeframe=tf.name,
                open_time_ms=start,
                open=scaled(o, tick),
                high=scaled(h, tick),
                low=scaled(low, tick),
                close=scaled(c, tick),
                volume=scaled(vol, lot),
                quote_volume=scaled(quote, step_quote),
                trade_count=count,
                buy_volume=scaled(buy, lot),
                sell_volume=scaled(vol - buy, lot),
                first_trade_id=fid,
                last_trade_id=lid,
                first_trade_ms=fms,
                last_trade_ms=lms,
                is_closed=True,
                source=source,
            )
        )
    return out
