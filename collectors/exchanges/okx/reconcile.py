"""Compare our candles with OKX's own candles and report field-level differences.

OKX's candles arrive as the stored record :class:`~collectors.storage.records.ExchangeCandle` (from the
database, or from wire rows through :func:`collectors.exchanges.okx.messages.parse_candles`). For SPOT
``volume`` is base volume and ``volume_ccy`` and ``volume_ccy_quote`` are quote volume; for derivatives
``volume`` is contracts and ``volume_ccy`` base currency, which our trade-based candles do not carry, so only
OHLC and ``volume`` are compared there.

Alignment: our timeframes are UTC-aligned. OKX's ``6H``, ``12H``, ``1D``, ``1W`` (and longer) bars are aligned
to UTC+8; their ``...utc`` variants are UTC-aligned. :func:`collectors.exchanges.okx.spec.okx_bar` names the
bar to request for each of our timeframes. An OKX candle of another bar (a ``1D`` row for our ``1d``, a ``5m``
row among ``1m`` ones) or whose open time is not on our bucket grid is reported as ``MISALIGNED`` and not
compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

from collectors.exchanges.okx.spec import okx_bar
from collectors.model import Candle, Timeframe
from collectors.storage.records import ExchangeCandle

__all__ = ["CandleDiff", "DiffKind", "reconcile"]


class DiffKind(str, Enum):
    VALUE = "value"  # both sides have the candle; ``field`` differs
    MISSING_OURS = "missing_ours"  # OKX has a candle with trades, we have none
    MISSING_OKX = "missing_okx"  # we have a candle with trades, OKX has none
    MISALIGNED = "misaligned"  # an OKX candle of another bar, or its ts is not on our bucket grid


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleDiff:
    """One difference; ``field`` names the :class:`ExchangeCandle` attribute, ``ours`` / ``okx`` hold the
    compared values (None where a side is missing)."""

    inst_id: str
    timeframe: str
    open_time_ms: int
    kind: DiffKind
    field: str | None = None
    ours: Decimal | None = None
    okx: Decimal | None = None


# (our Candle attribute, ExchangeCandle attribute)
_SPOT_FIELDS: Final = (
    ("open", "open"),
    ("high", "high"),
    ("low", "low"),
    ("close", "close"),
    ("volume", "volume"),
    ("quote_volume", "volume_ccy"),
    ("quote_volume", "volume_ccy_quote"),
)
_DERIVATIVE_FIELDS: Final = _SPOT_FIELDS[:5]
# OKX instrument types (``instType``); spot and margin candles share the spot volume units
_FIELDS_BY_INST_TYPE: Final = {
    "SPOT": _SPOT_FIELDS,
    "MARGIN": _SPOT_FIELDS,
    "SWAP": _DERIVATIVE_FIELDS,
    "FUTURES": _DERIVATIVE_FIELDS,
    "OPTION": _DERIVATIVE_FIELDS,
}


def reconcile(
    ours: Iterable[Candle],
    okx_candles: Iterable[ExchangeCandle],
    *,
    inst_id: str,
    timeframe: str,
    inst_type: str = "SPOT",
    include_unconfirmed: bool = False,
) -> list[CandleDiff]:
    """Differences between our closed candles and OKX's, ordered by time then field.

    Only OKX candles (``exchange`` "okx") of ``inst_id`` are used on both sides, and only the span the OKX
    candles of the bar :func:`okx_bar` names for ``timeframe`` cover is compared (a page of history); OKX
    candles of another bar are reported as ``MISALIGNED``. Several versions of one of our candles (an event
    stream) may be passed: the highest ``revision`` is compared. Of several OKX candles with one open time, a
    confirmed one wins over a forming one, else the last given. Unconfirmed OKX candles (``confirmed`` false)
    and our open candles are left out unless ``include_unconfirmed``. A bucket that is empty on one side and
    absent on the other (a carried candle against a skipped one) is not a difference. ``inst_type`` is OKX's
    (SPOT, MARGIN, SWAP, FUTURES, OPTION); another value raises ``ValueError``.
    """
    tf = Timeframe.parse(timeframe)
    fields = _FIELDS_BY_INST_TYPE.get(inst_type)
    if fields is None:
        raise ValueError(
            f"unknown inst_type {inst_type!r}; expected one of {', '.join(_FIELDS_BY_INST_TYPE)}"
        )
    bar = okx_bar(timeframe)
    rows = [
        r
        for r in okx_candles
        if r.exchange == "okx" and r.inst_id == inst_id and (r.confirmed or include_unconfirmed)
    ]
    diffs = [
        _diff(inst_id, timeframe, r.open_time_ms, DiffKind.MISALIGNED)
        for r in rows
        if r.bar != bar or tf.bucket_start_ms(r.open_time_ms) != r.open_time_ms
    ]
    theirs: dict[int, ExchangeCandle] = {}
    for r in rows:
        if r.bar == bar and tf.bucket_start_ms(r.open_time_ms) == r.open_time_ms:
            kept = theirs.get(r.open_time_ms)
            if kept is None or r.confirmed or not kept.confirmed:
                theirs[r.open_time_ms] = r
    if not theirs:
        return diffs
    first, last = min(theirs), max(theirs)
    mine: dict[int, Candle] = {}
    for c in ours:
        if (
            c.exchange == "okx"
            and c.inst_id == inst_id
            and c.timeframe == timeframe
            and first <= c.open_time_ms <= last
            and (c.is_closed or include_unconfirmed)
        ):
            # the highest revision of each candle wins, whatever the input order (closed over open on a tie)
            held = mine.get(c.open_time_ms)
            if held is None or (c.revision, c.is_closed) >= (held.revision, held.is_closed):
                mine[c.open_time_ms] = c
    for ts in sorted(theirs.keys() | mine.keys()):
        diffs.extend(_compare(inst_id, timeframe, ts, mine.get(ts), theirs.get(ts), fields))
    return sorted(diffs, key=lambda d: d.open_time_ms)


def _compare(
    inst_id: str,
    timeframe: str,
    ts_ms: int,
    candle: Candle | None,
    row: ExchangeCandle | None,
    fields: Sequence[tuple[str, str]],
) -> list[CandleDiff]:
    if candle is None:
        assert row is not None
        return [] if row.volume == 0 else [_diff(inst_id, timeframe, ts_ms, DiffKind.MISSING_OURS)]
    if row is None:
        return [] if candle.trade_count == 0 else [_diff(inst_id, timeframe, ts_ms, DiffKind.MISSING_OKX)]
    result = []
    for ours_name, theirs_name in fields:
        ours_value, okx_value = getattr(candle, ours_name), getattr(row, theirs_name)
        if ours_value != okx_value:
            result.append(
                CandleDiff(
                    inst_id=inst_id,
                    timeframe=timeframe,
                    open_time_ms=ts_ms,
                    kind=DiffKind.VALUE,
                    field=theirs_name,
                    ours=ours_value,
                    okx=okx_value,
                )
            )
    return result


def _diff(inst_id: str, timeframe: str, ts_ms: int, kind: DiffKind) -> CandleDiff:
    return CandleDiff(inst_id=inst_id, timeframe=timeframe, open_time_ms=ts_ms, kind=kind)
