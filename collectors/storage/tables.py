"""How each record type maps onto its table: columns, natural key, conflict policy and row conversion.

Rows are "neutral" tuples in the table's column order: ``str``, ``int``, ``bool``, ``Decimal`` or ``None``, with
instants as integer milliseconds. Each sink converts neutral rows to its database's form in one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from collectors.model import BookLevel, BookSnapshot, Candle, Instrument, Ticker, Trade, format_decimal
from collectors.storage.records import CoverageSpan, ExchangeCandle, RawMessage, RejectedMessage

__all__ = ["SPECS", "Conflict", "Kind", "Row", "TableSpec", "spec_for", "spec_named"]

Row = tuple[Any, ...]


class Kind(str, Enum):
    TEXT = "text"
    INT = "int"  # 64-bit
    INT4 = "int4"  # 32-bit counters
    DECIMAL = "decimal"
    TIME = "time"
    BOOL = "bool"


class Conflict(str, Enum):
    """What a row whose key already exists does."""

    IGNORE = "ignore"  # immutable facts (trades, snapshots, archives): the stored row stays
    REPLACE = "replace"  # reference data: the new values win when they differ
    REVISE = "revise"  # candles: new values win, revision + 1 when a closed candle changes


@dataclass(frozen=True, slots=True, kw_only=True)
class TableSpec:
    table: str
    columns: tuple[tuple[str, Kind], ...]
    key: tuple[str, ...]
    conflict: Conflict
    to_row: Callable[[Any, int], Row]
    # For the COPY fast path: rows of one partition whose ``monotonic`` value is above everything stored for
    # that partition cannot conflict, so they may be copied straight into the table.
    partition: tuple[str, ...] = ()
    monotonic: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(kind for _, kind in self.columns)

    def index_of(self, column: str) -> int:
        return self.names.index(column)


T, I, I4, D, M, B = Kind.TEXT, Kind.INT, Kind.INT4, Kind.DECIMAL, Kind.TIME, Kind.BOOL


def _trade_row(t: Trade, _now_ms: int) -> Row:
    # _value_ rather than .value: the Enum property costs a Python call per row on the bulk path
    return (t.exchange, t.inst_id, t.trade_id, t.ts_ms, t.price, t.size, t.side._value_, t.source, t.recv_ms)


def _candle_row(c: Candle, now_ms: int) -> Row:
    return (
        c.exchange, c.inst_id, c.timeframe, c.open_time_ms,
        c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.vwap, c.trade_count,
        c.buy_volume, c.sell_volume, c.first_trade_id, c.last_trade_id, c.first_trade_ms, c.last_trade_ms,
        c.is_closed, c.is_complete, c.source.value, c.revision, now_ms,
    )  # fmt: skip


def _levels_json(levels: tuple[BookLevel, ...]) -> str:
    return json.dumps(
        [[format_decimal(lv.price), format_decimal(lv.size), lv.orders] for lv in levels],
        separators=(",", ":"),
    )


def _book_row(b: BookSnapshot, _now_ms: int) -> Row:
    bid = b.bids[0] if b.bids else None
    ask = b.asks[0] if b.asks else None
    return (
        b.exchange, b.inst_id, b.ts_ms, b.seq_id, max(len(b.bids), len(b.asks)),
        bid.price if bid else None, bid.size if bid else None,
        ask.price if ask else None, ask.size if ask else None,
        _levels_json(b.bids), _levels_json(b.asks), b.recv_ms,
    )  # fmt: skip


def _ticker_row(t: Ticker, _now_ms: int) -> Row:
    return (
        t.exchange, t.inst_id, t.ts_ms, t.last, t.last_size, t.bid_price, t.bid_size, t.ask_price, t.ask_size,
        t.open_24h, t.high_24h, t.low_24h, t.volume_24h, t.volume_ccy_24h, t.recv_ms,
    )  # fmt: skip


def _instrument_row(i: Instrument, now_ms: int) -> Row:
    return (
        i.exchange, i.inst_id, i.inst_type, i.base_ccy, i.quote_ccy, i.tick_size, i.lot_size, i.min_size,
        i.state, i.list_time_ms, now_ms,
    )  # fmt: skip


def _raw_row(m: RawMessage, _now_ms: int) -> Row:
    return (m.collector_id, m.seq, m.exchange, m.channel, m.inst_id, m.recv_ms, m.payload)


def _rejected_row(m: RejectedMessage, _now_ms: int) -> Row:
    return (m.collector_id, m.seq, m.exchange, m.channel, m.inst_id, m.recv_ms, m.reason, m.payload)


def _coverage_row(s: CoverageSpan, now_ms: int) -> Row:
    return (s.exchange, s.inst_id, s.data_type.value, s.start_ms, s.end_ms, s.status.value, s.reason, now_ms)


def _exchange_candle_row(c: ExchangeCandle, now_ms: int) -> Row:
    return (
        c.exchange, c.inst_id, c.bar, c.open_time_ms, c.open, c.high, c.low, c.close,
        c.volume, c.volume_ccy, c.volume_ccy_quote, c.confirmed, now_ms,
    )  # fmt: skip


_INST: Final = (("exchange", T), ("inst_id", T))

TRADES: Final = TableSpec(
    table="trades",
    columns=(*_INST, ("trade_id", I), ("ts", M), ("price", D), ("size", D), ("side", T), ("source", T),
             ("recv_time", M)),
    key=("exchange", "inst_id", "trade_id"),
    conflict=Conflict.IGNORE,
    to_row=_trade_row,
    partition=("exchange", "inst_id"),
    monotonic="trade_id",
)  # fmt: skip

CANDLES: Final = TableSpec(
    table="candles",
    columns=(*_INST, ("timeframe", T), ("open_time", M), ("open", D), ("high", D), ("low", D), ("close", D),
             ("volume", D), ("quote_volume", D), ("vwap", D), ("trade_count", I4), ("buy_volume", D),
             ("sell_volume", D), ("first_trade_id", I), ("last_trade_id", I), ("first_trade_time", M),
             ("last_trade_time", M), ("is_closed", B), ("is_complete", B), ("source", T), ("revision", I4),
             ("updated_at", M)),
    key=("exchange", "inst_id", "timeframe", "open_time"),
    conflict=Conflict.REVISE,
    to_row=_candle_row,
)  # fmt: skip

BOOK_SNAPSHOTS: Final = TableSpec(
    table="book_snapshots",
    columns=(*_INST, ("ts", M), ("seq_id", I), ("depth", I4), ("bid_price", D), ("bid_size", D),
             ("ask_price", D), ("ask_size", D), ("bids", T), ("asks", T), ("recv_time", M)),
    key=("exchange", "inst_id", "ts"),
    conflict=Conflict.IGNORE,
    to_row=_book_row,
    partition=("exchange", "inst_id"),
    monotonic="ts",
)  # fmt: skip

TICKERS: Final = TableSpec(
    table="tickers",
    columns=(*_INST, ("ts", M), ("last", D), ("last_size", D), ("bid_price", D), ("bid_size", D),
             ("ask_price", D), ("ask_size", D), ("open_24h", D), ("high_24h", D), ("low_24h", D),
             ("volume_24h", D), ("volume_ccy_24h", D), ("recv_time", M)),
    key=("exchange", "inst_id", "ts"),
    conflict=Conflict.IGNORE,
    to_row=_ticker_row,
    partition=("exchange", "inst_id"),
    monotonic="ts",
)  # fmt: skip

INSTRUMENTS: Final = TableSpec(
    table="instruments",
    columns=(*_INST, ("inst_type", T), ("base_ccy", T), ("quote_ccy", T), ("tick_size", D), ("lot_size", D),
             ("min_size", D), ("state", T), ("list_time", M), ("updated_at", M)),
    key=("exchange", "inst_id"),
    conflict=Conflict.REPLACE,
    to_row=_instrument_row,
)  # fmt: skip

RAW_MESSAGES: Final = TableSpec(
    table="raw_messages",
    columns=(("collector_id", T), ("seq", I), ("exchange", T), ("channel", T), ("inst_id", T),
             ("recv_time", M), ("payload", T)),
    key=("collector_id", "seq"),
    conflict=Conflict.IGNORE,
    to_row=_raw_row,
    partition=("collector_id",),
    monotonic="seq",
)  # fmt: skip

REJECTED_MESSAGES: Final = TableSpec(
    table="rejected_messages",
    columns=(("collector_id", T), ("seq", I), ("exchange", T), ("channel", T), ("inst_id", T),
             ("recv_time", M), ("reason", T), ("payload", T)),
    key=("collector_id", "seq"),
    conflict=Conflict.IGNORE,
    to_row=_rejected_row,
    partition=("collector_id",),
    monotonic="seq",
)  # fmt: skip

COVERAGE: Final = TableSpec(
    table="coverage",
    columns=(*_INST, ("data_type", T), ("start_time", M), ("end_time", M), ("status", T), ("reason", T),
             ("updated_at", M)),
    key=("exchange", "inst_id", "data_type", "start_time", "end_time", "status"),
    conflict=Conflict.REPLACE,
    to_row=_coverage_row,
)  # fmt: skip

EXCHANGE_CANDLES: Final = TableSpec(
    table="exchange_candles",
    columns=(*_INST, ("timeframe", T), ("open_time", M), ("open", D), ("high", D), ("low", D), ("close", D),
             ("volume", D), ("volume_ccy", D), ("volume_ccy_quote", D), ("confirmed", B), ("updated_at", M)),
    key=("exchange", "inst_id", "timeframe", "open_time"),
    conflict=Conflict.REPLACE,
    to_row=_exchange_candle_row,
)  # fmt: skip

SPECS: Final[dict[type, TableSpec]] = {
    Trade: TRADES,
    Candle: CANDLES,
    BookSnapshot: BOOK_SNAPSHOTS,
    Ticker: TICKERS,
    Instrument: INSTRUMENTS,
    RawMessage: RAW_MESSAGES,
    RejectedMessage: REJECTED_MESSAGES,
    CoverageSpan: COVERAGE,
    ExchangeCandle: EXCHANGE_CANDLES,
}
_BY_NAME: Final = {spec.table: spec for spec in SPECS.values()}


def spec_for(record: object) -> TableSpec:
    """The table a record belongs in; raises ``TypeError`` for a type the storage does not know."""
    try:
        return SPECS[type(record)]
    except KeyError:
        raise TypeError(f"no table stores {type(record).__name__} records") from None


def spec_named(table: str) -> TableSpec:
    return _BY_NAME[table]


def encode_value(value: Any) -> Any:
    """Neutral value -> JSON-safe value (decimals as plain strings) for spill files."""
    return format_decimal(value) if isinstance(value, Decimal) else value


def decode_row(spec: TableSpec, values: list[Any]) -> Row:
    """Inverse of :func:`encode_value` over a whole row, guided by the column kinds."""
    return tuple(
        Decimal(v) if kind is Kind.DECIMAL and v is not None else v
        for v, kind in zip(values, spec.kinds, strict=True)
    )
