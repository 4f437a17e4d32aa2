"""Exact decimal arithmetic for candle sums, and the range of values it accepts.

Decimal's default context keeps 28 significant digits and silently rounds beyond that; a day of quote volume
(``sum(price * size)`` with 8-decimal sizes) can need more. Every sum and product in this package is computed
inside :data:`EXACT`, a context with the largest precision and exponent range decimal offers: an addition or
multiplication of finite decimals is then always exact (its result has fewer digits than ``MAX_PREC``), so no
trade can be half applied by a rounding trap in one timeframe and not in another. ``Inexact``, ``Rounded`` and
``InvalidOperation`` stay trapped as the proof: nothing here ever rounds or computes with NaN or Infinity.

What bounds the digits instead is the input: the engine accepts prices and sizes in
``[MIN_VALUE, MAX_VALUE)`` (1E-40 to 1E+40, far beyond any market), so a candle value has at most about 80
digits before the point plus the digits its trades bring after it; memory stays proportional to the input.

Division is never done here (``Candle.vwap`` divides in the caller's context, on purpose).
"""

from __future__ import annotations

from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Final

from collectors.errors import InvalidRecord

__all__ = ["EXACT", "MAX_VALUE", "MIN_VALUE", "ZERO", "check_close", "scaled"]

EXACT: Final = Context(
    prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, Rounded, InvalidOperation]
)
ZERO: Final = Decimal(0)
MIN_VALUE: Final = Decimal("1E-40")  # smallest price or size the engine accepts
MAX_VALUE: Final = Decimal("1E+40")  # prices and sizes must be below this


def scaled(units: int, step: Decimal) -> Decimal:
    """``units * step`` exactly (``step`` is a tick or lot size such as ``Decimal("0.01")``); zero is ``ZERO``
    (``0``), as the engine writes it, never ``0E-8``: a text column would take them for different values."""
    return EXACT.multiply(Decimal(units), step) if units else ZERO


def check_close(value: object, field: str = "previous_close") -> Decimal:
    """``value`` if it can stand as a close (``seed_close``, ``previous_close``): a ``Decimal`` price in
    ``[MIN_VALUE, MAX_VALUE)``, the range a trade's price must lie in; else :class:`InvalidRecord`."""
    if type(value) is not Decimal or not value.is_finite() or not MIN_VALUE <= value < MAX_VALUE:
        raise InvalidRecord(
            f"{field}={value!r}: a price must be a finite Decimal in [{MIN_VALUE}, {MAX_VALUE})",
            field=field,
            value=repr(value),
        )
    return value
