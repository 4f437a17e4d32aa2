"""``okx-collector export`` writes what the read API returns, exactly, from PostgreSQL and SQLite alike."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from collectors.read import MarketData
from collectors.read.export import load_export
from flows.cli import main
from tests.read.fill import HOUR, T0, assert_exact, grid_trades

FROM, TO = "2024-01-01T00:00:00Z", "2024-01-01T03:00:00Z"


def _url(md: MarketData) -> str:
    return md.engine.url.render_as_string(hide_password=False)


def _export(md: MarketData, out: Path, *args: str) -> int:
    return main(["export", "--database-url", _url(md), "--from", FROM, "--to", TO, "--out", str(out), *args])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exported_candles_equal_the_read_api(
    both: tuple[MarketData, MarketData], tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for md, name in zip(both, ("pg", "lite"), strict=True):
        out = tmp_path / name
        for timeframe, origin, rows in (("1m", "stored", 129), ("1h", "rollup:1m", 3)):
            args = ("--pairs", "BTC-USDT", "--kind", "candles", "--timeframe", timeframe, "--format", fmt)
            assert _export(md, out, *args, "--chunk-rows", "50") == 0
            path = out / f"BTC-USDT_candles_{timeframe}.{fmt}"
            assert capsys.readouterr().out == f"{path}: {rows} rows ({origin})\n"
            api = md.candles("BTC-USDT", timeframe, T0, T0 + 3 * HOUR)
            assert api.attrs["origin"] == origin and len(api) == rows
            assert_exact(load_export(path, "candles"), api)
    if fmt == "csv":  # the same bytes from both databases
        for timeframe in ("1m", "1h"):
            name = f"BTC-USDT_candles_{timeframe}.csv"
            assert (tmp_path / "pg" / name).read_bytes() == (tmp_path / "lite" / name).read_bytes()


def test_exported_values_are_the_stored_text(both: tuple[MarketData, MarketData], tmp_path: Path) -> None:
    pg, lite = both
    for md in both:
        for fmt in ("csv", "parquet"):
            assert (
                _export(md, tmp_path / fmt, "--pairs", "DOGE-USDT", "--kind", "trades", "--format", fmt) == 0
            )
        with (tmp_path / "csv" / "DOGE-USDT_trades.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        table = pq.read_table(tmp_path / "parquet" / "DOGE-USDT_trades.parquet")
        want = [
            "43210.50",
            "0.00000001",
            "0.00000001",
            "43210.5",
            "100",
            "9.5",
            "0.10",
            "123456789.123456789",
        ]
        assert [r["price"] for r in rows] == want
        assert table.column("price").to_pylist() == want
        assert str(table.schema.field("price").type) == "string"
        assert str(table.schema.field("ts").type) == "timestamp[ms, tz=UTC]"
        meta = json.loads(table.schema.metadata[b"okx_collector"])
        assert meta["kind"] == "trades" and "size" in meta["decimals"] and meta["inst_id"] == "DOGE-USDT"
        assert rows[0]["ts"] == "2024-01-01T00:00:00.005Z" and rows[3]["recv_time"] == ""
        assert rows[0]["source"] == "" and rows[1]["source"] == "0"
        for fmt in ("csv", "parquet"):
            path = tmp_path / fmt / f"DOGE-USDT_trades.{fmt}"
            assert_exact(load_export(path, "trades"), md.trades("DOGE-USDT", T0, T0 + 3 * HOUR))
    for kind in ("books", "tickers"):
        for md, name in zip((pg, lite), ("pg", "lite"), strict=True):
            assert _export(md, tmp_path / name, "--pairs", "DOGE-USDT", "--kind", kind) == 0
            api = getattr(md, kind)("DOGE-USDT", T0, T0 + 3 * HOUR)
            assert_exact(load_export(tmp_path / name / f"DOGE-USDT_{kind}.csv", kind), api)
        same = [(tmp_path / n / f"DOGE-USDT_{kind}.csv").read_bytes() for n in ("pg", "lite")]
        assert same[0] == same[1]
    book = (tmp_path / "pg" / "DOGE-USDT_books.csv").read_text().splitlines()[1]
    assert '"[[""43210.50"",""0.10"",3],[""0.00000001"",""5"",null]]"' in book


def test_progress_bar_only_when_asked_or_on_a_terminal(
    both: tuple[MarketData, MarketData],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg, _ = both
    n = len(grid_trades())
    assert _export(pg, tmp_path, "--pairs", "BTC-USDT,DOGE-USDT", "--kind", "trades") == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""  # stderr is not a terminal here
    assert quiet.out.splitlines() == [
        f"{tmp_path}/BTC-USDT_trades.csv: {n} rows",
        f"{tmp_path}/DOGE-USDT_trades.csv: 8 rows",
    ]
    assert (
        _export(pg, tmp_path, "--pairs", "BTC-USDT", "--kind", "trades", "--chunk-rows", "100", "--progress")
        == 0
    )
    err = capsys.readouterr().err
    assert err.endswith(f"\rBTC-USDT trades [{'#' * 30}] 100%  {n} rows\n")
    assert err.count("\n") == 1
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: drawn without --progress
    assert _export(pg, tmp_path, "--pairs", "DOGE-USDT", "--kind", "tickers") == 0
    assert capsys.readouterr().err.endswith(f"\rDOGE-USDT tickers [{'#' * 30}] 100%  5 rows\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pairs", "BTC-USDT,XRP-USDT", "--kind", "trades"), "unknown pair 'XRP-USDT' on okx"),
        (("--pairs", "BTC-USDT", "--kind", "candles", "--timeframe", "7m"), "unknown timeframe '7m'"),
        (("--pairs", "BTC-USDT", "--kind", "candles"), "export --kind candles needs --timeframe"),
        (("--pairs", "BTC-USDT", "--kind", "trades", "--timeframe", "1m"), "--timeframe applies to candles only"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_and_writes_nothing(
    both: tuple[MarketData, MarketData],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    _, lite = both
    assert _export(lite, tmp_path / "out", *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_reversed_range_exits_2(
    both: tuple[MarketData, MarketData], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lite = both
    argv = ["export", "--database-url", _url(lite), "--pairs", "BTC-USDT", "--kind", "trades"]
    assert main([*argv, "--from", TO, "--to", FROM, "--out", str(tmp_path)]) == 2
    assert "empty or reversed range" in capsys.readouterr().err
    assert list(tmp_path.glob("*.csv")) == []
