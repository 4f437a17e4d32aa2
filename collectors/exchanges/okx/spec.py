"""OKX as the core sees it: endpoints, channels, symbol rule, default pairs and the bar names of its candles.

The one home of these OKX facts: ``collectors/settings.py`` takes its URL defaults from here, the config
loader its channel and pair rules (through the registry), reconciliation its bar names.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from collectors.exchanges.spec import ExchangeSpec
from collectors.model import Timeframe, validate_inst_id

__all__ = ["DEFAULT_PAIRS", "OKX", "OKX_BARS", "REST_URL", "WS_BUSINESS_URL", "WS_PUBLIC_URL", "okx_bar"]

# Production endpoints (shared/okx/API.md section 1.1 and 2.1).
REST_URL: Final = "https://www.okx.com"
WS_PUBLIC_URL: Final = "wss://ws.okx.com:8443/ws/v5/public"  # tickers, trades, books5
WS_BUSINESS_URL: Final = "wss://ws.okx.com:8443/ws/v5/business"  # candle<bar>, trades-all

# The pairs collected when the config names none.
DEFAULT_PAIRS: Final = (
    "BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT", "TON-USDT", "ETH-USDC", "BTC-USDC", "UNI-USDT", "PEPE-USDT",
)  # fmt: skip

# Our UTC-aligned timeframes -> OKX bar names. OKX's 6H/12H/1D/1W bars are aligned to UTC+8 (Hong Kong);
# the UTC-aligned ones carry the "utc" suffix, so those are the ones comparable with ours.
OKX_BARS: Final = MappingProxyType(
    {
        "1s": "1s", "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H",
        "4h": "4H", "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc",
    }
)  # fmt: skip


def okx_bar(timeframe: str) -> str:
    """The OKX ``bar`` (REST) / channel suffix (WS ``candle<bar>``) with our UTC alignment.

    Raises ``ValueError`` for a name that is not one of our timeframes (a caller's mistake).
    """
    Timeframe.parse(timeframe)
    return OKX_BARS[timeframe]


OKX: Final = ExchangeSpec(
    name="okx",
    channels=frozenset({"trades", "books5", "tickers", "candles"}),
    validate_symbol=validate_inst_id,
    default_channels=("trades", "books5", "tickers", "candles"),
    default_symbols=DEFAULT_PAIRS,
    bars=OKX_BARS,
    endpoints=MappingProxyType(
        {"rest": REST_URL, "ws_public": WS_PUBLIC_URL, "ws_business": WS_BUSINESS_URL}
    ),
)
