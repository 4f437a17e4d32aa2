"""``okx-collector validate`` and ``reaggregate`` on SQLite and PostgreSQL: the JSON lists each finding with pair,
kind, start, end and detail; the exit status is 1 beyond the tolerance and 0 within it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from quality_helpers import DAY_START, HOUR, MINUTE, collected, live_candles, store, tape
from sqlalchemy import Engine, delete

from collectors.quality.findings import iso
from collectors.storage.schema import CandleRow, TradeRow
from flows.cli import main

START, END = DAY_START, DAY_START + 3 * HOUR


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "collectors.yaml"
    path.write_text(
        "exchanges:\n  okx:\n    channels: [trades]\n    timeframes: [1m, 1h]\n    pairs: [BTC-USDT]\n"
    )
    monkeypatch.setenv("COLLECTOR_CONFIG", str(path))


def _run(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> tuple[int, object]:
    code = main([*args, "--json", "--database-url", db_url])
    return code, json.loads(capsys.readouterr().out)


async def test_validate_json_and_exit_status(
    engine: Engine, db_url: str, config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    trades = tape()
    await store(engine, [*trades, *live_candles(trades, START, END), collected("BTC-USDT", START, END)])
    with engine.begin() as conn:
        conn.execute(delete(TradeRow).where(TradeRow.trade_id == 1200))
    args = ("validate", "--pairs", "BTC-USDT", "--from", iso(START), "--to", iso(END))
    code, out = _run(capsys, db_url, *args)
    assert code == 1
    assert isinstance(out, dict) and out["status"] == "failed"
    gap = {"pair": "BTC-USDT", "kind": "trade_gap", "start": iso(trades[199].ts_ms), "end": iso(trades[201].ts_ms),
           "timeframe": None, "field": None, "detail": "trade ids 1200-1200 missing (1)"}  # fmt: skip
    assert out["findings"][0] == gap
    assert {f["kind"] for f in out["findings"][1:]} == {"candle_mismatch"}
    code, out = _run(capsys, db_url, *args, "--tolerance", str(len(out["findings"])))
    assert code == 0 and isinstance(out, dict) and out["status"] == "passed"
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--tolerance", "-1"])
    assert exit_info.value.code == 2


def test_reaggregate_json_lists_the_changed_candles_then_nothing(
    engine: Engine, db_url: str, config: None, capsys: pytest.CaptureFixture[str]
) -> None:
    trades = tape()
    records = [*trades, *live_candles(trades, START, END), collected("BTC-USDT", START, END)]
    asyncio.run(store(engine, records))  # the CLI runs its own loop
    gone = START + HOUR + 3 * MINUTE
    with engine.begin() as conn:
        conn.execute(delete(CandleRow).where(CandleRow.timeframe == "1m", CandleRow.open_time == gone))
    args = ("reaggregate", "--pairs", "BTC-USDT", "--from", iso(START), "--to", iso(END))
    code, out = _run(capsys, db_url, *args, "--dry-run")
    assert code == 0 and isinstance(out, list)
    assert [(c["pair"], c["trades"], c["written"], c["changes"]) for c in out] == [
        ("BTC-USDT", 3000, 0, [{"timeframe": "1m", "open_time": iso(gone), "kind": "new", "fields": []}])
    ]
    code, out = _run(capsys, db_url, *args)
    assert isinstance(out, list) and [c["written"] for c in out] == [1]
    code, out = _run(capsys, db_url, *args)
    assert isinstance(out, list) and [(c["written"], c["changes"]) for c in out] == [(0, [])]
