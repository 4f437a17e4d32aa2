"""Audit of ``okx-collector export`` (issue 11): a hostile user's arguments and a failing disk.

Each case ends with a one-line message and the documented exit code (2 bad input, 1 a failure of the
database or of the disk), never a traceback, and never a file left behind that looks complete.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.errors import QueryError, StorageError
from collectors.model import Side, Trade
from collectors.read import MarketData
from collectors.read.export import export_path, load_export
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from flows.cli import main
from tests.read.fill import HOUR, T0, assert_exact, everything, write

ROOT = Path(__file__).resolve().parents[2]
SPAN = ("--from", "2024-01-01T00:00:00Z", "--to", "2024-01-02T00:00:00Z")


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _export(url: str, out: Path, *args: str) -> int:
    return main(["export", "--database-url", url, *SPAN, "--out", str(out), *args])


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    assert err.startswith("okx-collector: ") and err.count("\n") == 1, err
    return err


def test_out_naming_an_existing_file_exits_1_with_a_message(
    both: tuple[MarketData, MarketData], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It raised FileExistsError from mkdir: a traceback."""
    taken = tmp_path / "taken"
    taken.write_text("mine\n")
    for md in both:
        assert _export(_url(md.engine), taken, "--pairs", "BTC-USDT", "--kind", "trades") == 1
        err = _one_line_error(capsys.readouterr().err)
        assert f"{taken}" in err and "not a folder" in err
        assert taken.read_text() == "mine\n"


def _big_pg(pg_engine: Engine) -> str:
    crowd = [
        Trade(
            exchange="okx", inst_id="BTC-USDT", trade_id=2**53 + i, ts_ms=T0 + 5 * HOUR + i,
            price=Decimal("43210.123456789"), size=Decimal("0.00000001"), side=Side.SELL, source=None,
            recv_ms=None,
        )
        for i in range(6000)
    ]  # fmt: skip
    write(pg_engine, [*everything(), *crowd])
    return _url(pg_engine)


def _limited(argv: list[str], limit_bytes: int) -> subprocess.CompletedProcess[str]:
    """``okx-collector`` in a child whose files may not grow past ``limit_bytes`` (``ulimit -f``): a write
    beyond it fails with EFBIG, as a full disk fails with ENOSPC. Python ignores SIGXFSZ, so the write raises."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv],
        cwd=ROOT, env=env, preexec_fn=limit, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_disk_that_fills_up_exits_1_and_keeps_the_last_complete_file(
    pg_engine: Engine, tmp_path: Path, fmt: str
) -> None:
    url = _big_pg(pg_engine)
    out = tmp_path / "out"
    argv = ["export", "--database-url", url, *SPAN, "--out", str(out), "--pairs", "BTC-USDT"]
    argv += ["--kind", "trades", "--format", fmt, "--chunk-rows", "500"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    path = out / f"BTC-USDT_trades.{fmt}"
    complete = path.read_bytes()
    assert len(complete) > 64 * 1024
    failed = _limited(argv, 16 * 1024)
    assert failed.returncode == 1
    err = _one_line_error(failed.stderr)
    assert f"{path}" in err and "File too large" in err
    assert sorted(p.name for p in out.iterdir()) == [path.name]  # no .partial left
    assert path.read_bytes() == complete  # the file of the complete run, untouched


def test_no_pair_in_pairs_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--pairs ,`` exported nothing and exited 0."""
    with pytest.raises(SystemExit) as stop:
        _export(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, "--pairs", " , ", "--kind", "trades")
    assert stop.value.code == 2
    assert "argument --pairs: no pair given in ' , '" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_sqlite_database_is_reported_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in the path made an empty database file (and its folder), then said it was not migrated."""
    missing = tmp_path / "typo" / "market.db"
    url = f"sqlite:///{missing}"
    assert _export(url, tmp_path / "out", "--pairs", "BTC-USDT", "--kind", "trades") == 1
    err = _one_line_error(capsys.readouterr().err)
    assert f"no SQLite database at {missing}" in err
    assert not (tmp_path / "typo").exists() and not (tmp_path / "out").exists()
    with pytest.raises(StorageError, match="no SQLite database at"):
        MarketData(url)
    assert not (tmp_path / "typo").exists()


def test_a_database_at_an_older_schema_revision_exits_1_saying_how_to_fix_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(old, "0001")
    old.dispose()
    assert (
        _export(
            f"sqlite:///{tmp_path / 'old.db'}", tmp_path / "out", "--pairs", "BTC-USDT", "--kind", "trades"
        )
        == 1
    )
    err = _one_line_error(capsys.readouterr().err)
    assert "is not migrated (is at revision 0001, not 0002): run `okx-collector db upgrade` first" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("pair", ["../x", "a/b", "..", ".hidden", "BTC\x00"])
def test_a_file_name_is_never_a_path(tmp_path: Path, pair: str) -> None:
    with pytest.raises(QueryError, match="cannot name a file"):
        export_path(tmp_path, pair, "trades", "csv")


def test_one_second_candles_export_the_stored_ones(
    both: tuple[MarketData, MarketData], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It ended in a ZeroDivisionError traceback (1m candles rolled up into 1s)."""
    for md in both:
        args = ("--pairs", "BTC-USDT", "--kind", "candles", "--timeframe", "1s")
        assert _export(_url(md.engine), tmp_path, *args) == 0
        assert capsys.readouterr().out == f"{tmp_path}/BTC-USDT_candles_1s.csv: 0 rows (stored)\n"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ids_past_2_53_and_long_decimals_round_trip_exactly(
    both: tuple[MarketData, MarketData], tmp_path: Path, fmt: str
) -> None:
    rows = [
        Trade(
            exchange="okx", inst_id="DOGE-USDT", trade_id=2**63 - 1 - i, ts_ms=T0 + 7 * HOUR + i // 3,
            price=Decimal(price), size=Decimal("1E+3") if i == 0 else Decimal("0.000000000000000001"),
            side=Side.BUY, source="1", recv_ms=None,
        )
        for i, price in enumerate(("98765432109876543210.123456789012345678", "0.000100", "1E-18", "7"))
    ]  # fmt: skip
    files = []
    for md, name in zip(both, ("pg", "lite"), strict=True):
        write(md.engine, rows)
        assert (
            _export(
                _url(md.engine), tmp_path / name, "--pairs", "DOGE-USDT", "--kind", "trades", "--format", fmt
            )
            == 0
        )
        path = tmp_path / name / f"DOGE-USDT_trades.{fmt}"
        api = md.trades("DOGE-USDT", T0 + 7 * HOUR, T0 + 8 * HOUR)
        assert api["trade_id"].tolist() == [2**63 - 3, 2**63 - 2, 2**63 - 1, 2**63 - 4]  # by (ts, id)
        back = load_export(path, "trades")
        assert_exact(back[back["ts"] >= api["ts"].iloc[0]].reset_index(drop=True), api)
        files.append(path.read_bytes())
    if fmt == "csv":
        assert files[0] == files[1]
        text = files[0].decode()
        assert "98765432109876543210.123456789012345678" in text and ",0.000000000000000001," in text
        assert "9223372036854775807" in text and "1E" not in text


def test_another_exports_partial_file_is_left_alone(
    both: tuple[MarketData, MarketData], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two exports of one pair into one folder both wrote (and truncated) ``<name>.partial``: one could rename
    the other's half-written bytes into place. Each export now writes a partial file of its own."""
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / "BTC-USDT_trades.csv.partial"
    theirs.write_text("another export, still writing\n")
    pg, _ = both
    assert _export(_url(pg.engine), out, "--pairs", "BTC-USDT", "--kind", "trades") == 0
    assert theirs.read_text() == "another export, still writing\n"
    assert_exact(
        load_export(out / "BTC-USDT_trades.csv", "trades"), pg.trades("BTC-USDT", T0, T0 + 24 * HOUR)
    )
    assert sorted(p.name for p in out.iterdir()) == ["BTC-USDT_trades.csv", theirs.name]
    assert (out / "BTC-USDT_trades.csv").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
