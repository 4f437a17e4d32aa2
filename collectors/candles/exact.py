"""Exact decimal arithmetic for candle sums.

Decimal's default context keeps 28 significant digits and silently rounds beyond that; a day of quote volume
(``sum(price * size)`` with 8-decimal sizes) can need more. Every sum and product in this package is computed
inside :data:`EXACT`, a context with far more digits than any realistic candle needs and with ``Inexact`` and
``Rounded`` trapped: if a result ever needed rounding, the operation raises ``decimal.Inexact`` instead of
losing a digit. Additions and multiplications of finite decimals are exact as long as the result fits in
``EXACT.prec`` digits, so in practice nothing raises; the trap is the proof.

Division is never done here (``Candle.vwap`` divides in the caller's context, on purpose).
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Final

__all__ = ["EXACT", "ZERO", "scaled"]

EXACT: Final = Context(prec=120, traps=[Inexact, Rounded, InvalidOperation])
ZERO: Final = Decimal(0)


def scaled(units: int, step: Decimal) -> Decimal:
    """``units * step`` exactly (``step`` is a tick or lot size such as ``Decimal("0.01")``)."""
    return EXACT.multiply(Decimal(units), step)
