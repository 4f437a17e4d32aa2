"""The database schema: table and column names here are a contract that users and scripts query.

Conventions: prices and sizes are :class:`ExactDecimal`; instants are :class:`UtcMillis` (``timestamptz`` on
PostgreSQL, integer milliseconds on SQLite); every table has a natural primary key so that writes are
idempotent upserts and redundant collectors merge cleanly. Each index names the query it serves.
Changing anything here needs an Alembic migration in ``storage/migrations/versions``.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Identity, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from collectors.storage.types import ExactDecimal, UtcMillis

__all__ = [
    "Base",
    "BookSnapshotRow",
    "CandleRow",
    "CoverageRow",
    "ExchangeCandleRow",
    "InstrumentRow",
    "RawMessageRow",
    "RejectedMessageRow",
    "TickerRow",
    "TradeRow",
    "ValidationFindingRow",
    "ValidationRunRow",
]

_EXCHANGE = String(32)
_INST_ID = String(64)


class Base(DeclarativeBase):
    pass


class InstrumentRow(Base):
    __tablename__ = "instruments"

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    inst_type: Mapped[str] = mapped_column(String(16))
    base_ccy: Mapped[str] = mapped_column(String(32))
    quote_ccy: Mapped[str] = mapped_column(String(32))
    tick_size: Mapped[Decimal] = mapped_column(ExactDecimal())
    lot_size: Mapped[Decimal] = mapped_column(ExactDecimal())
    min_size: Mapped[Decimal] = mapped_column(ExactDecimal())
    state: Mapped[str] = mapped_column(String(16))
    list_time: Mapped[int | None] = mapped_column(UtcMillis())
    updated_at: Mapped[int] = mapped_column(UtcMillis())


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (
        # range scans: candles from trades, gap detection by time, exports
        Index("ix_trades_time", "exchange", "inst_id", "ts"),
    )

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[int] = mapped_column(UtcMillis())
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    size: Mapped[Decimal] = mapped_column(ExactDecimal())
    side: Mapped[str] = mapped_column(String(4))
    # the exchange's own flag (OKX: "0" normal fill, "1" enhanced liquidity program)
    source: Mapped[str | None] = mapped_column(String(8))
    recv_time: Mapped[int | None] = mapped_column(UtcMillis())


class CandleRow(Base):
    __tablename__ = "candles"
    __table_args__ = (
        # completeness checks and re-aggregation scan recently updated rows
        Index("ix_candles_updated", "exchange", "inst_id", "timeframe", "updated_at"),
    )

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    open_time: Mapped[int] = mapped_column(UtcMillis(), primary_key=True)
    open: Mapped[Decimal] = mapped_column(ExactDecimal())
    high: Mapped[Decimal] = mapped_column(ExactDecimal())
    low: Mapped[Decimal] = mapped_column(ExactDecimal())
    close: Mapped[Decimal] = mapped_column(ExactDecimal())
    volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    quote_volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    vwap: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    trade_count: Mapped[int] = mapped_column(Integer)
    buy_volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    sell_volume: Mapped[Decimal] = mapped_column(ExactDecimal())
    first_trade_id: Mapped[int | None] = mapped_column(BigInteger)
    last_trade_id: Mapped[int | None] = mapped_column(BigInteger)
    first_trade_time: Mapped[int | None] = mapped_column(UtcMillis())
    last_trade_time: Mapped[int | None] = mapped_column(UtcMillis())
    is_closed: Mapped[bool] = mapped_column(Boolean)
    is_complete: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(UtcMillis())


class ExchangeCandleRow(Base):
    """The exchange's own candles, kept for reconciliation. ``timeframe`` is the exchange's bar name."""

    __tablename__ = "exchange_candles"

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    open_time: Mapped[int] = mapped_column(UtcMillis(), primary_key=True)
    open: Mapped[Decimal] = mapped_column(ExactDecimal())
    high: Mapped[Decimal] = mapped_column(ExactDecimal())
    low: Mapped[Decimal] = mapped_column(ExactDecimal())
    close: Mapped[Decimal] = mapped_column(ExactDecimal())
    volume: Mapped[Decimal] = mapped_column(ExactDecimal())  # OKX vol: base currency on spot
    volume_ccy: Mapped[Decimal] = mapped_column(ExactDecimal())  # OKX volCcy: quote currency on spot
    volume_ccy_quote: Mapped[Decimal] = mapped_column(ExactDecimal())  # OKX volCcyQuote
    confirmed: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[int] = mapped_column(UtcMillis())


class BookSnapshotRow(Base):
    """Top-of-book snapshots; ``bids``/``asks`` are JSON arrays of [price, size, orders] strings, best first."""

    __tablename__ = "book_snapshots"

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    ts: Mapped[int] = mapped_column(UtcMillis(), primary_key=True)
    seq_id: Mapped[int | None] = mapped_column(BigInteger)
    depth: Mapped[int] = mapped_column(Integer)
    bid_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    bid_size: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    ask_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    ask_size: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    bids: Mapped[str] = mapped_column(Text)
    asks: Mapped[str] = mapped_column(Text)
    recv_time: Mapped[int | None] = mapped_column(UtcMillis())


class TickerRow(Base):
    __tablename__ = "tickers"

    exchange: Mapped[str] = mapped_column(_EXCHANGE, primary_key=True)
    inst_id: Mapped[str] = mapped_column(_INST_ID, primary_key=True)
    ts: Mapped[int] = mapped_column(UtcMillis(), primary_key=True)
    last: Mapped[Decimal] = mapped_column(ExactDecimal())
    last_size: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    bid_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    bid_size: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    ask_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    ask_size: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    open_24h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    high_24h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    low_24h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    volume_24h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    volume_ccy_24h: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    recv_time: Mapped[int | None] = mapped_column(UtcMillis())


class RawMessageRow(Base):
    """Frames exactly as received. ``(collector_id, seq)`` is assigned by the receiving collector, so a
    replayed batch (spill file, retry) adds nothing."""

    __tablename__ = "raw_messages"
    __table_args__ = (Index("ix_raw_messages_time", "exchange", "inst_id", "recv_time"),)

    collector_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    exchange: Mapped[str] = mapped_column(_EXCHANGE)
    channel: Mapped[str] = mapped_column(String(64))
    inst_id: Mapped[str | None] = mapped_column(_INST_ID)
    recv_time: Mapped[int] = mapped_column(UtcMillis())
    payload: Mapped[str] = mapped_column(Text)


class RejectedMessageRow(Base):
    """Input that failed validation, with the reason: nothing is thrown away."""

    __tablename__ = "rejected_messages"
    __table_args__ = (Index("ix_rejected_messages_time", "exchange", "recv_time"),)

    collector_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    exchange: Mapped[str] = mapped_column(_EXCHANGE)
    channel: Mapped[str | None] = mapped_column(String(64))
    inst_id: Mapped[str | None] = mapped_column(_INST_ID)
    recv_time: Mapped[int] = mapped_column(UtcMillis())
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class CoverageRow(Base):
    """Ledger of ``[start_time, end_time)`` spans per exchange, instrument and data type.

    ``status``: collected, gap, backfilled or unrecoverable; ``reason`` says why (disconnect, REST limit...).
    """

    __tablename__ = "coverage"
    __table_args__ = (
        UniqueConstraint(
            "exchange", "inst_id", "data_type", "start_time", "end_time", "status", name="uq_coverage_span"
        ),
        # "which spans of X overlap [a, b)?"
        Index("ix_coverage_span", "exchange", "inst_id", "data_type", "start_time"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True
    )
    exchange: Mapped[str] = mapped_column(_EXCHANGE)
    inst_id: Mapped[str] = mapped_column(_INST_ID)
    data_type: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int] = mapped_column(UtcMillis())
    end_time: Mapped[int] = mapped_column(UtcMillis())
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(UtcMillis())


class ValidationRunRow(Base):
    """One run of the completeness check (``okx-collector validate``, the ``validate`` flow) over a range.

    ``status``: ``passed`` (findings within ``tolerance``) or ``failed``; ``pairs`` is a comma-separated list.
    """

    __tablename__ = "validation_runs"
    __table_args__ = (
        # "the latest runs": the UI's history and the status of the last check
        Index("ix_validation_runs_started", "exchange", "started_at"),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    exchange: Mapped[str] = mapped_column(_EXCHANGE)
    pairs: Mapped[str] = mapped_column(Text)
    range_start: Mapped[int] = mapped_column(UtcMillis())
    range_end: Mapped[int] = mapped_column(UtcMillis())
    started_at: Mapped[int] = mapped_column(UtcMillis())
    finished_at: Mapped[int] = mapped_column(UtcMillis())
    findings: Mapped[int] = mapped_column(Integer)
    tolerance: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))


class ValidationFindingRow(Base):
    """One finding of a validation run: ``kind`` over ``[start_time, end_time)`` of one pair (and timeframe,
    field where they apply), ``detail`` in words. Kinds are listed in docs/quality.md."""

    __tablename__ = "validation_findings"
    __table_args__ = (
        # "every finding of kind K for a pair over time": is a hole new or the same one as last hour?
        Index("ix_validation_findings_pair", "exchange", "inst_id", "kind", "start_time"),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    exchange: Mapped[str] = mapped_column(_EXCHANGE)
    inst_id: Mapped[str] = mapped_column(_INST_ID)
    kind: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str | None] = mapped_column(String(8))
    field: Mapped[str | None] = mapped_column(String(32))
    start_time: Mapped[int] = mapped_column(UtcMillis())
    end_time: Mapped[int] = mapped_column(UtcMillis())
    detail: Mapped[str] = mapped_column(Text)
