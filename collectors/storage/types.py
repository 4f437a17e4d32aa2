"""Column types that keep values exact on every database.

The only place where PostgreSQL and SQLite differ in how a value is stored:

* :class:`ExactDecimal`: ``NUMERIC`` on PostgreSQL (unconstrained, so the exchange's scale is kept:
  ``43210.50`` stays ``43210.50``); ``TEXT`` on SQLite, whose NUMERIC affinity would silently turn
  ``'43210.5'`` into a float and ``'43210.0'`` into the integer 43210.
* :class:`UtcMillis`: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL (microsecond resolution, so milliseconds
  round-trip exactly); ``BIGINT`` milliseconds since the epoch on SQLite, which has no time type.

Python code always sees ``Decimal`` and ``int`` milliseconds UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import BigInteger, Dialect, Numeric, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from collectors.model import format_decimal

__all__ = ["EPOCH", "ExactDecimal", "UtcMillis", "datetime_to_ms", "ms_to_datetime"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    """Exact conversion (no float): ``0`` -> ``1970-01-01T00:00:00+00:00``."""
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_ms(value: datetime) -> int:
    """Exact conversion of an aware datetime to integer milliseconds (sub-millisecond parts floor)."""
    return (value - EPOCH) // _ONE_MS


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal stored without loss on PostgreSQL and SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected Decimal, got {type(value).__name__}: {value!r}")
        return format_decimal(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


class UtcMillis(TypeDecorator[int]):
    """A UTC instant; Python sees integer milliseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return ms_to_datetime(value) if dialect.name == "postgresql" else int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return datetime_to_ms(value) if isinstance(value, datetime) else int(value)
