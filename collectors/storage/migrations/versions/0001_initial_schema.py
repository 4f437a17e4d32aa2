"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Hand-reviewed: candle OHLC columns moved next to open_time so that SELECT * reads naturally.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import collectors.storage.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "book_snapshots",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("ts", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("seq_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("bid_price", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("bid_size", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("ask_price", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("ask_size", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("bids", sa.Text(), nullable=False),
        sa.Column("asks", sa.Text(), nullable=False),
        sa.Column("recv_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "inst_id", "ts"),
    )
    op.create_table(
        "candles",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("open_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("open", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("high", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("low", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("close", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("volume", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("quote_volume", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("vwap", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("buy_volume", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("sell_volume", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("first_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("last_trade_id", sa.BigInteger(), nullable=True),
        sa.Column("first_trade_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.Column("last_trade_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_complete", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "inst_id", "timeframe", "open_time"),
    )
    op.create_index(
        "ix_candles_updated", "candles", ["exchange", "inst_id", "timeframe", "updated_at"], unique=False
    )

    op.create_table(
        "coverage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.Identity(always=False),
            nullable=False,
        ),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("data_type", sa.String(length=16), nullable=False),
        sa.Column("start_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("end_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "exchange", "inst_id", "data_type", "start_time", "end_time", "status", name="uq_coverage_span"
        ),
    )
    op.create_index(
        "ix_coverage_span", "coverage", ["exchange", "inst_id", "data_type", "start_time"], unique=False
    )

    op.create_table(
        "exchange_candles",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("open_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("open", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("high", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("low", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("close", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("volume", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("volume_ccy", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("volume_ccy_quote", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "inst_id", "timeframe", "open_time"),
    )
    op.create_table(
        "instruments",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("inst_type", sa.String(length=16), nullable=False),
        sa.Column("base_ccy", sa.String(length=32), nullable=False),
        sa.Column("quote_ccy", sa.String(length=32), nullable=False),
        sa.Column("tick_size", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("lot_size", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("min_size", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("list_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.Column("updated_at", collectors.storage.types.UtcMillis(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "inst_id"),
    )
    op.create_table(
        "raw_messages",
        sa.Column("collector_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=True),
        sa.Column("recv_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("collector_id", "seq"),
    )
    op.create_index(
        "ix_raw_messages_time", "raw_messages", ["exchange", "inst_id", "recv_time"], unique=False
    )

    op.create_table(
        "rejected_messages",
        sa.Column("collector_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("inst_id", sa.String(length=64), nullable=True),
        sa.Column("recv_time", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("collector_id", "seq"),
    )
    op.create_index("ix_rejected_messages_time", "rejected_messages", ["exchange", "recv_time"], unique=False)

    op.create_table(
        "tickers",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("ts", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("last", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("last_size", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("bid_price", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("bid_size", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("ask_price", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("ask_size", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("open_24h", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("high_24h", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("low_24h", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("volume_24h", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("volume_ccy_24h", collectors.storage.types.ExactDecimal(), nullable=True),
        sa.Column("recv_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "inst_id", "ts"),
    )
    op.create_table(
        "trades",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("inst_id", sa.String(length=64), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", collectors.storage.types.UtcMillis(), nullable=False),
        sa.Column("price", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("size", collectors.storage.types.ExactDecimal(), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=True),
        sa.Column("recv_time", collectors.storage.types.UtcMillis(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "inst_id", "trade_id"),
    )
    op.create_index("ix_trades_time", "trades", ["exchange", "inst_id", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trades_time", table_name="trades")

    op.drop_table("trades")
    op.drop_table("tickers")
    op.drop_index("ix_rejected_messages_time", table_name="rejected_messages")

    op.drop_table("rejected_messages")
    op.drop_index("ix_raw_messages_time", table_name="raw_messages")

    op.drop_table("raw_messages")
    op.drop_table("instruments")
    op.drop_table("exchange_candles")
    op.drop_index("ix_coverage_span", table_name="coverage")

    op.drop_table("coverage")
    op.drop_index("ix_candles_updated", table_name="candles")

    op.drop_table("candles")
    op.drop_table("book_snapshots")
