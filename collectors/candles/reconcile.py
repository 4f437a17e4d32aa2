"""Compare our candles with OKX's candle arrays and report field-level differences.

OKX sends ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]`` (strings, ``ts`` = bar open time). For
SPOT ``vol`` is base volume and ``volCcy`` and ``volCcyQuote`` are quote volume; for derivatives ``vol`` is
contracts and ``volCcy`` base currency, which our trade-based candles do not carry, so only OHLC and ``vol``
are compared there.

Alignment: our timeframes are UTC-aligned. OKX's ``6H``, ``12H``, ``1D``, ``1W`` (and longer) bars are aligned
to UTC+8; their ``...utc`` variants are UTC-aligned. :func:`okx_bar` names the bar to request for each of our
timeframes, and rows whose ``ts`` is not on our bucket grid are reported as ``MISALIGNED``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Final, NamedTuple

from collectors.errors import ParseError
from collectors.model import Candle, Timeframe

__all__ = ["OKX_BAR", "CandleDiff", "DiffKind", "OkxCandleRow", "okx_bar", "reconcile"]

OKX_BAR: Final = {
    "1s": "1s",
    "1m": "1m",
    "3m": "3m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1h": "1H",
    "2h": "2H",
    "4h": "4H",
    "6h": "6Hutc",  # plain 6H/12H/1D/1W open at UTC+8 boundaries
    "12h": "12Hutc",
    "1d": "1Dutc",
    "1w": "1Wutc",
}


def okx_bar(timeframe: str) -> str:
    """The OKX ``bar`` (REST) / channel suffix (WS ``candle<bar>``) with the same UTC alignment."""
    Timeframe.parse(timeframe)
    return OKX_BAR[timeframe]


class OkxCandleRow(NamedTuple):
    """One OKX candle array with named fields."""

    ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vol: Decimal
    vol_ccy: Decimal
    vol_ccy_quote: Decimal
    confirmed: bool

    @classmethod
    def parse(cls, row: Sequence[str]) -> OkxCandleRow:
        """Parse ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``; raises ``ParseError``."""
        if len(row) != 9 or row[8] not in ("0", "1"):
            raise ParseError(f"OKX candle row must have 9 fields ending in confirm 0/1: {row!r}")
        ts, o, h, low, c, vol, vol_ccy, vol_ccy_quote, confirm = row
        try:
            return cls(
                ts_ms=int(ts),
                open=Decimal(o),
                high=Decimal(h),
                low=Decimal(low),
                close=Decimal(c),
                vol=Decimal(vol),
                vol_ccy=Decimal(vol_ccy),
                vol_ccy_quote=Decimal(vol_ccy_quote),
                confirmed=confirm == "1",
            )
        except (ValueError, InvalidOperation) as exc:
            raise ParseError(f"bad number in OKX candle row {row!r}") from exc


class DiffKind(str, Enum):
    VALUE = "value"  # both sides have the candle; ``field`` differs
    MISSING_OURS = "missing_ours"  # OKX has a candle with trades, we have none
    MISSING_OKX = "missing_okx"  # we have a candle with trades, OKX has none
    MISALIGNED = "misaligned"  # OKX ts is not on our bucket grid (wrong bar name?)


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleDiff:
    """One difference; ``ours`` / ``okx`` hold the compared values (None where a side is missing)."""

    inst_id: str
    timeframe: str
    open_time_ms: int
    kind: DiffKind
    field: str | None = None
    ours: Decimal | None = None
    okx: Decimal | None = None


# (our Candle attribute, OKX row attribute)
_SPOT_FIELDS: Final = (
    ("open", "open"),
    ("high", "high"),
    ("low", "low"),
    ("close", "close"),
    ("volume", "vol"),
    ("quote_volume", "vol_ccy"),
    ("quote_volume", "vol_ccy_quote"),
)
_DERIVATIVE_FIELDS: Final = _SPOT_FIELDS[:5]


def reconcile(
    ours: Iterable[Candle],
    okx_rows: Iterable[Sequence[str] | OkxCandleRow],
    *,
    inst_id: str,
    timeframe: str,
    inst_type: str = "SPOT",
    include_unconfirmed: bool = False,
) -> list[CandleDiff]:
    """Differences between our closed candles and OKX's rows, ordered by time then field.

    ``okx_rows`` are raw arrays (REST ``data`` or WS ``data``) or already parsed :class:`OkxCandleRow` values
    (for instance built from stored exchange candles).

    Only the span covered by the OKX rows is compared (a page of history). Several versions of one of our
    candles (an event stream) may be passed: the highest ``revision`` is compared. Unconfirmed OKX rows
    (``confirm`` "0") and our open candles are left out unless ``include_unconfirmed``. A bucket that is
    empty on one side and absent on the other (a carried candle against a skipped one) is not a difference.
    """
    tf = Timeframe.parse(timeframe)
    rows = [r if isinstance(r, OkxCandleRow) else OkxCandleRow.parse(r) for r in okx_rows]
    rows = [r for r in rows if r.confirmed or include_unconfirmed]
    diffs = [
        _diff(inst_id, timeframe, r.ts_ms, DiffKind.MISALIGNED)
        for r in rows
        if tf.bucket_start_ms(r.ts_ms) != r.ts_ms
    ]
    theirs = {r.ts_ms: r for r in rows if tf.bucket_start_ms(r.ts_ms) == r.ts_ms}
    if not theirs:
        return diffs
    first, last = min(theirs), max(theirs)
    mine: dict[int, Candle] = {}
    for c in ours:
        if (
            c.inst_id == inst_id
            and c.timeframe == timeframe
            and first <= c.open_time_ms <= last
            and (c.is_closed or include_unconfirmed)
        ):
            # the highest revision of each candle wins, whatever the input order (closed over open on a tie)
            held = mine.get(c.open_time_ms)
            if held is None or (c.revision, c.is_closed) >= (held.revision, held.is_closed):
                mine[c.open_time_ms] = c
    fields = _SPOT_FIELDS if inst_type == "SPOT" else _DERIVATIVE_FIELDS
    for ts in sorted(theirs.keys() | mine.keys()):
        diffs.extend(_compare(inst_id, timeframe, ts, mine.get(ts), theirs.get(ts), fields))
    return sorted(diffs, key=lambda d: d.open_time_ms)


def _compare(
    inst_id: str,
    timeframe: str,
    ts_ms: int,
    candle: Candle | None,
    row: OkxCandleRow | None,
    fields: Sequence[tuple[str, str]],
) -> list[CandleDiff]:
    if candle is None:
        assert row is not None
        return [] if row.vol == 0 else [_diff(inst_id, timeframe, ts_ms, DiffKind.MISSING_OURS)]
    if row is None:
        return [] if candle.trade_count == 0 else [_diff(inst_id, timeframe, ts_ms, DiffKind.MISSING_OKX)]
    result = []
    for ours_name, okx_name in fields:
        ours_value, okx_value = getattr(candle, ours_name), getattr(row, okx_name)
        if ours_value != okx_value:
            result.append(
                CandleDiff(
                    inst_id=inst_id,
                    timeframe=timeframe,
                    open_time_ms=ts_ms,
                    kind=DiffKind.VALUE,
                    field=okx_name,
                    ours=ours_value,
                    okx=okx_value,
                )
            )
    return result


def _diff(inst_id: str, timeframe: str, ts_ms: int, kind: DiffKind) -> CandleDiff:
    return CandleDiff(inst_id=inst_id, timeframe=timeframe, open_time_ms=ts_ms, kind=kind)
