"""Export trades and candles to CSV and Parquet with ``okx-collector export``, then read the files back.

``python examples/export_trades.py`` builds a small SQLite database (``read_sample_db.py``) in a temporary
folder and runs the same command a shell would::

    okx-collector export --database-url sqlite:///sample.db --pairs BTC-USDT --kind trades \\
        --from 2025-01-01T00:00Z --to 2025-01-01T02:00Z --format csv --out exports
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from read_sample_db import sample_database

from collectors.read import MarketData
from collectors.read.export import load_export
from flows.cli import main as okx_collector


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url, out = sample_database(Path(tmp)), Path(tmp) / "exports"
        span = ["--from", "2025-01-01T00:00Z", "--to", "2025-01-01T02:00Z", "--out", str(out)]
        for args in (
            ["--kind", "trades", "--format", "csv"],
            ["--kind", "candles", "--timeframe", "15m", "--format", "parquet"],
        ):
            code = okx_collector(["export", "--database-url", url, "--pairs", "BTC-USDT", *span, *args])
            if code != 0:
                return code
        csv_lines = (out / "BTC-USDT_trades.csv").read_text().splitlines()
        print(f"BTC-USDT_trades.csv, {len(csv_lines) - 1} rows; the first three:")
        print("\n".join(csv_lines[:4]))

        table = pq.read_table(out / "BTC-USDT_candles_15m.parquet")
        print(f"\nBTC-USDT_candles_15m.parquet: {table.num_rows} rows; price columns are exact text:")
        print(
            table.select(["open_time", "open", "close", "volume"])
            .slice(0, 3)
            .to_pandas()
            .to_string(index=False)
        )

        with MarketData(url) as md:
            api = md.trades("BTC-USDT", "2025-01-01T00:00Z", "2025-01-01T02:00Z")
        back = load_export(out / "BTC-USDT_trades.csv", "trades")
        same = back.astype(str).equals(api.astype(str)) and list(back["price"]) == list(api["price"])
        print(f"\nthe CSV read back equals the read API's frame: {same}")
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
