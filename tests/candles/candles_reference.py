"""An independent reference: pandas groupby over Decimal objects, written without the engine's code.

It shares only the data types (Trade, Candle) and the specification: UTC buckets (weeks from Monday), trades
ordered by (ts_ms, trade_id), duplicates by trade id counted once, carry = previous close for empty buckets
after the first trade, nothing carried over no-data spans, candles overlapping them incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext

import pandas as pd

from collectors.model import Candle, CandleSource, Side, Trade

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_WIDE = Context(prec=500)


def duration_ms(timeframe: str) -> int:
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


def bucket_ms(ts_ms: int, timeframe: str) -> int:
    if timeframe == "1w":
        day = datetime.fromtimestamp(ts_ms // 1000, UTC).replace(hour=0, minute=0, second=0)
        monday = day - timedelta(days=day.weekday())
        return int(monday.timestamp()) * 1000
    step = duration_ms(timeframe)
    return ts_ms // step * step


def reference_candles(
    trades: Sequence[Trade],
    timeframe: str,
    *,
    carry: bool = False,
    no_data: Sequence[tuple[int, int]] = (),
    closed_until_ms: int | None = None,
    source: CandleSource = CandleSource.REAGGREGATE,
) -> list[Candle]:
    if not trades:
        return []
    frame = pd.DataFrame(
        {
            "ts": [t.ts_ms for t in trades],
            "tid": [t.trade_id for t in trades],
            "px": pd.Series([t.price for t in trades], dtype=object),
            "sz": pd.Series([t.size for t in trades], dtype=object),
            "buy": [t.side is Side.BUY for t in trades],
        }
    )
    frame = frame.drop_duplicates(subset="tid", keep="first").sort_values(["ts", "tid"], kind="stable")
    frame["bucket"] = [bucket_ms(ts, timeframe) for ts in frame["ts"]]
    frame["buy_sz"] = [sz if buy else Decimal(0) for sz, buy in zip(frame["sz"], frame["buy"], strict=True)]
    with localcontext(_WIDE):
        frame["quote"] = [px * sz for px, sz in zip(frame["px"], frame["sz"], strict=True)]
        rows = frame.groupby("bucket", sort=True).agg(
            open=("px", "first"),
            high=("px", "max"),
            low=("px", "min"),
            close=("px", "last"),
            volume=("sz", lambda s: sum(s, Decimal(0))),
            quote=("quote", lambda s: sum(s, Decimal(0))),
            buy=("buy_sz", lambda s: sum(s, Decimal(0))),
            count=("tid", "size"),
            first_id=("tid", "first"),
            last_id=("tid", "last"),
            first_ms=("ts", "first"),
            last_ms=("ts", "last"),
        )
        real = {int(b): _candle(trades[0], timeframe, int(b), row, source) for b, row in rows.iterrows()}
    return _fill(real, timeframe, carry, no_data, closed_until_ms)


def _candle(sample: Trade, timeframe: str, start: int, row: pd.Series, source: CandleSource) -> Candle:
    return Candle(
        exchange=sample.exchange,
        inst_id=sample.inst_id,
        timeframe=timeframe,
        open_time_ms=start,
        open=row["open"],
        high=row["high"],
        low=row["low"],
        close=row["close"],
        volume=row["volume"],
        quote_volume=row["quote"],
        trade_count=int(row["count"]),
        buy_volume=row["buy"],
        sell_volume=row["volume"] - row["buy"],
        first_trade_id=int(row["first_id"]),
        last_trade_id=int(row["last_id"]),
        first_trade_ms=int(row["first_ms"]),
        last_trade_ms=int(row["last_ms"]),
        is_closed=True,
        source=source,
    )


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


def _fill(
    real: dict[int, Candle],
    timeframe: str,
    carry: bool,
    no_data: Sequence[tuple[int, int]],
    closed_until_ms: int | None,
) -> list[Candle]:
    first, last = min(real), max(real)
    end = last + 1
    if carry and closed_until_ms is not None:
        end = max(end, bucket_ms(closed_until_ms, timeframe))  # buckets ending at or before closed_until_ms
    out: list[Candle] = []
    start = source = first
    while start < end:
        stop = _next_bucket(start, timeframe)
        gap = _overlaps(start, stop, no_data)
        if start in real:
            out.append(_replace(real[start], is_complete=not gap))
            source = start
        elif carry and not gap:
            price = out[-1].close
            out.append(
                _replace(
                    out[-1],
                    open_time_ms=start,
                    open=price,
                    high=price,
                    low=price,
                    volume=Decimal(0),
                    quote_volume=Decimal(0),
                    trade_count=0,
                    buy_volume=Decimal(0),
                    sell_volume=Decimal(0),
                    first_trade_id=None,
                    last_trade_id=None,
                    first_trade_ms=None,
                    last_trade_ms=None,
                    # the carried close is unconfirmed while a no-data span lies since its source candle
                    is_complete=not _overlaps(source, start, no_data),
                )
            )
        start = stop
    return out


def _next_bucket(start: int, timeframe: str) -> int:
    return start + duration_ms(timeframe)


def _replace(candle: Candle, **changes: object) -> Candle:
    import dataclasses

    return dataclasses.replace(candle, **changes)  # type: ignore[arg-type]


def differences(ours: Sequence[Candle], expected: Sequence[Candle]) -> list[str]:
    """Human-readable field-level differences (empty when equal), ignoring source and revision."""
    problems = []
    if [c.open_time_ms for c in ours] != [c.open_time_ms for c in expected]:
        return [f"open times {[c.open_time_ms for c in ours]} != {[c.open_time_ms for c in expected]}"]
    for a, b in zip(ours, expected, strict=True):
        for name in a.__dataclass_fields__:
            if name in ("source", "revision"):
                continue
            if getattr(a, name) != getattr(b, name):
                problems.append(
                    f"{a.timeframe}@{a.open_time_ms}.{name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
                )
    return problems
