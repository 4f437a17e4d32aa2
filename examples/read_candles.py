"""Read candles back with the read API: stored 1m candles, hourly ones rolled up from them, in chunks.

``python examples/read_candles.py`` builds a small SQLite database (``read_sample_db.py``) in a temporary
folder and reads it; against your own database, give ``MarketData`` its URL
(``postgresql://user@host/marketdata`` or ``sqlite:///data/marketdata.db``): the same calls, the same frames.
"""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from read_sample_db import sample_database

from collectors.read import MarketData


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, MarketData(sample_database(Path(tmp))) as md:
        minutes = md.candles("BTC-USDT", "1m", "2025-01-01T00:00Z", "2025-01-01T00:10Z")
        print(
            f"1m candles ({minutes.attrs['origin']}): {len(minutes)} rows, columns open_time, open, high, ..."
        )
        print(
            minutes[["open_time", "open", "high", "low", "close", "volume", "trade_count"]].to_string(
                index=False
            )
        )

        hours = md.candles("BTC-USDT", "1h", "2025-01-01", "2025-01-01T02:00Z")  # not stored: rolled up
        print(f"\n1h candles ({hours.attrs['origin']}):")
        print(hours[["open_time", "open", "close", "volume", "vwap", "is_complete"]].to_string(index=False))

        # exact values: Decimal objects, summed exactly; instants are tz-aware UTC
        total = sum(minutes["volume"], start=Decimal(0))
        first = minutes.iloc[0]
        print(f"\nvolume of the first 10 minutes: {total} ({type(total).__name__})")
        print(f"first candle opens {first['open_time'].isoformat()} at {first['open']!r}")

        # a range larger than memory: chunks of at most chunk_rows rows (keyset pages)
        sizes = [
            len(chunk) for chunk in md.iter_trades("BTC-USDT", "2025-01-01", "2025-01-02", chunk_rows=100)
        ]
        print(f"trades in chunks of at most 100 rows: {sizes}")


if __name__ == "__main__":
    main()
