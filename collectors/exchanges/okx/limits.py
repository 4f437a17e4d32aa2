"""OKX's REST rate limits: the one table, keyed by endpoint path (the keys of the shared :class:`RateLimiter`).

Every figure is OKX's own, per IP and per 2-second window, from shared/okx/API.md section 2.2 (the OKX v5 docs,
scraped 2026-06 "D1" and 2025-11 "D2"; the 2026-11 second audit confirms them: "the docs' figures hold
(history-trades 20/2 s); some SDKs use stricter ones (ccxt 10/2 s)"). The limiter keeps a headroom below them
(``collectors.ratelimit.DEFAULT_HEADROOM``, 90 %: 18 history-trades requests per 2 s) and can hand a process a
share of each (issue 10).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from collectors.ratelimit import Quota

__all__ = [
    "CANDLES",
    "HISTORY_CANDLES",
    "HISTORY_TRADES",
    "INSTRUMENTS",
    "OKX_REST_QUOTAS",
    "TRADES",
]

INSTRUMENTS: Final = "/api/v5/public/instruments"
TRADES: Final = "/api/v5/market/trades"
HISTORY_TRADES: Final = "/api/v5/market/history-trades"
CANDLES: Final = "/api/v5/market/candles"
HISTORY_CANDLES: Final = "/api/v5/market/history-candles"

_WINDOW_MS: Final = 2_000
_SOURCE: Final = "shared/okx/API.md 2.2 (OKX docs D1 2026-06, D2 2025-11)"


def _per_2s(limit: int) -> Quota:
    return Quota(limit=limit, window_ms=_WINDOW_MS, source=_SOURCE)


OKX_REST_QUOTAS: Final = MappingProxyType(
    {
        "/api/v5/public/time": _per_2s(10),
        # OKX counts instruments per IP *and* instType; one key for all types is stricter, never looser
        INSTRUMENTS: _per_2s(20),
        "/api/v5/market/ticker": _per_2s(20),
        "/api/v5/market/tickers": _per_2s(20),
        "/api/v5/market/books": _per_2s(40),
        "/api/v5/market/books-full": _per_2s(10),
        TRADES: _per_2s(100),  # the newest 500 trades, no paging
        HISTORY_TRADES: _per_2s(20),  # 3 months, 100 per page: the budget that bounds every gap fill
        CANDLES: _per_2s(40),  # the latest 1,440 bars
        HISTORY_CANDLES: _per_2s(20),
        "/api/v5/public/market-data-history": _per_2s(5),
    }
)
