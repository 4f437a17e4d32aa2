"""OKX as the core sees it: endpoints, channels, symbol rule and the bar names of its own candles."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from collectors.exchanges.registry import ExchangeSpec
from collectors.model import validate_inst_id

__all__ = ["OKX", "OKX_BARS"]

# Our UTC-aligned timeframes -> OKX bar names. OKX's 6H/12H/1D/1W bars are aligned to UTC+8 (Hong Kong);
# the UTC-aligned ones carry the "utc" suffix, so those are the ones comparable with ours.
OKX_BARS: Final = MappingProxyType(
    {
        "1s": "1s", "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H",
        "4h": "4H", "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc",
    }
)  # fmt: skip

OKX: Final = ExchangeSpec(
    name="okx",
    channels=frozenset({"trades", "books5", "tickers", "candles"}),
    validate_symbol=validate_inst_id,
    bars=OKX_BARS,
    endpoints=MappingProxyType(
        {
            "rest": "https://www.okx.com",
            "ws_public": "wss://ws.okx.com:8443/ws/v5/public",
            "ws_business": "wss://ws.okx.com:8443/ws/v5/business",
        }
    ),
)
