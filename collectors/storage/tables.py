"""How each record type maps onto its table: natural key, conflict policy and row conversion.

The columns themselves (names, order, kinds, lengths, nullability) are read from
:mod:`collectors.storage.schema`, their one home; each ``to_row`` returns values in that order.

Rows are "neutral" tuples in the table's column order: ``str``, ``int``, ``bool``, ``Decimal`` or ``None``, with
instants as integer milliseconds. Each sink converts neutral rows to its database's form in one place.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from sqlalchemy import BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy import Column as SAColumn

from collectors.model import BookLevel, BookSnapshot, Candle, Instrument, Ticker, Trade, format_decimal
from collectors.storage.records import CoverageSpan, ExchangeCandle, RawMessage, RejectedMessage
from collectors.storage.schema import Base
from collectors.storage.types import ExactDecimal, UtcMillis

__all__ = [
    "SPECS",
    "Column",
    "Conflict",
    "Kind",
    "Row",
    "TableSpec",
    "row_error",
    "spec_for",
    "spec_named",
    "table_spec",
]

Row = tuple[Any, ...]


class Kind(str, Enum):
    TEXT = "text"
    INT = "int"  # 64-bit
    INT4 = "int4"  # 32-bit counters
    DECIMAL = "decimal"
    TIME = "time"
    BOOL = "bool"


# schema type -> kind; order matters (BigInteger is an Integer, ExactDecimal and UtcMillis are decorators)
_KINDS: Final[tuple[tuple[type, Kind], ...]] = (
    (ExactDecimal, Kind.DECIMAL),
    (UtcMillis, Kind.TIME),
    (BigInteger, Kind.INT),
    (Integer, Kind.INT4),
    (Boolean, Kind.BOOL),
    (String, Kind.TEXT),  # Text is a String
)


class Conflict(str, Enum):
    """What a row whose key already exists does."""

    IGNORE = "ignore"  # immutable facts (trades, snapshots, archives): the stored row stays
    REPLACE = "replace"  # reference data: the new values win when they differ
    REVISE = "revise"  # candles: new values win, revision + 1 when a closed candle changes


@dataclass(frozen=True, slots=True)
class Column:
    """One stored column as the writer sees it; derived from :mod:`collectors.storage.schema`."""

    name: str
    kind: Kind
    nullable: bool
    max_length: int | None  # characters, for length-limited text


@dataclass(frozen=True, slots=True, kw_only=True)
class TableSpec:
    """How records of one type become rows of one table. Build with :func:`table_spec`, which takes the
    columns, their kinds, lengths and nullability from the schema (the one list of columns)."""

    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    conflict: Conflict
    to_row: Callable[[Any, int], Row]
    # For the COPY fast path: rows of one partition whose ``monotonic`` value is above everything stored for
    # that partition cannot conflict, so they may be copied straight into the table.
    partition: tuple[str, ...] = ()
    monotonic: str | None = None
    names: tuple[str, ...] = ()  # filled by table_spec: column names and kinds, in row order
    kinds: tuple[Kind, ...] = ()

    def index_of(self, column: str) -> int:
        return self.names.index(column)

    def kind_of(self, column: str) -> Kind:
        return self.kinds[self.index_of(column)]


def _kind(column: SAColumn[Any]) -> Kind:
    sa_type = column.type
    for python_type, kind in _KINDS:
        if isinstance(sa_type, python_type):
            return kind
    raise TypeError(f"{column.table.name}.{column.name}: no storage kind for {sa_type!r}")


def table_spec(
    table: str,
    *,
    conflict: Conflict,
    to_row: Callable[[Any, int], Row],
    partition: tuple[str, ...] = (),
    monotonic: str | None = None,
) -> TableSpec:
    """The spec of ``table``: columns in schema order (a database-generated identity column is left out), key =
    the primary key, or the table's one unique constraint when the primary key is a generated identity."""
    sa_table = Base.metadata.tables[table]
    columns = tuple(
        Column(
            name=c.name, kind=_kind(c), nullable=bool(c.nullable), max_length=getattr(c.type, "length", None)
        )
        for c in sa_table.columns
        if c.identity is None
    )
    primary = list(sa_table.primary_key.columns)
    if any(c.identity is not None for c in primary):
        (unique,) = (c for c in sa_table.constraints if isinstance(c, UniqueConstraint))
        key = tuple(c.name for c in unique.columns)
    else:
        key = tuple(c.name for c in primary)
    return TableSpec(
        table=table, columns=columns, key=key, conflict=conflict, to_row=to_row, partition=partition,
        monotonic=monotonic, names=tuple(c.name for c in columns), kinds=tuple(c.kind for c in columns),
    )  # fmt: skip


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


TRADES: Final = table_spec(
    "trades",
    conflict=Conflict.IGNORE,
    to_row=_trade_row,
    partition=("exchange", "inst_id"),
    monotonic="trade_id",
)
CANDLES: Final = table_spec("candles", conflict=Conflict.REVISE, to_row=_candle_row)
BOOK_SNAPSHOTS: Final = table_spec(
    "book_snapshots",
    conflict=Conflict.IGNORE,
    to_row=_book_row,
    partition=("exchange", "inst_id"),
    monotonic="ts",
)
TICKERS: Final = table_spec(
    "tickers", conflict=Conflict.IGNORE, to_row=_ticker_row, partition=("exchange", "inst_id"), monotonic="ts"
)
INSTRUMENTS: Final = table_spec("instruments", conflict=Conflict.REPLACE, to_row=_instrument_row)
RAW_MESSAGES: Final = table_spec(
    "raw_messages", conflict=Conflict.IGNORE, to_row=_raw_row, partition=("collector_id",), monotonic="seq"
)
REJECTED_MESSAGES: Final = table_spec(
    "rejected_messages", conflict=Conflict.IGNORE, to_row=_rejected_row, partition=("collector_id",),
    monotonic="seq",
)  # fmt: skip
COVERAGE: Final = table_spec("coverage", conflict=Conflict.REPLACE, to_row=_coverage_row)
EXCHANGE_CANDLES: Final = table_spec(
    "exchange_candles", conflict=Conflict.REPLACE, to_row=_exchange_candle_row
)

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


def row_error(record: object, exc: BaseException) -> TypeError:
    """Why ``to_row`` could not build a row from ``record``: a ``TypeError`` naming the field when an enum
    field holds something else (a plain ``"buy"`` for ``Side.BUY``). Only called on the failure path."""
    cls = type(record)
    hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(record) else {}
    for name, hint in hints.items():
        enums = [t for t in typing.get_args(hint) or (hint,) if isinstance(t, type) and issubclass(t, Enum)]
        value = getattr(record, name, None)
        if enums and value is not None and not isinstance(value, tuple(enums)):
            return TypeError(
                f"{cls.__name__}.{name}: expected {enums[0].__name__}, got {type(value).__name__} {value!r:.80}"
            )
    return TypeError(f"cannot build a row from {cls.__name__}: {type(exc).__name__}: {exc}")


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
