"""``okx-collector backfill`` run as a user runs it (a subprocess) against the simulator and a SQLite file."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from backfill_sim import coverage, cut, store

from collectors.backfill.work import settings_from_config
from collectors.config import parse_config
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from tests.live.sim_run import add_fault, simulator, stored, true_tape, values

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    config = tmp_path / "collectors.yaml"
    config.write_text("exchanges:\n  okx:\n    timeframes: [1m, 5m]\n    pairs: [BTC-USDT, ETH-USDT]\n")
    return {**os.environ, "DATABASE_URL": url, "COLLECTOR_CONFIG": str(config)}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "backfill", *args], capture_output=True, text=True, env=env,
        cwd=REPO, timeout=120,
    )  # fmt: skip


async def test_since_fills_a_new_pair_with_plain_progress_lines_and_a_summary(
    cli_env: dict[str, str],
) -> None:
    async with simulator(history_hours=0.1) as sim:
        env = {**cli_env, "OKX_REST_URL": sim.rest_url}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flows.cli", "backfill", "--pairs", "BTC-USDT", "--since", "1h",
            "--rest-share", "0.5", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await child.communicate()
        tape = await true_tape(sim, "BTC-USDT")
    assert child.returncode == 0, err.decode()
    text = out.decode()
    chunks = re.search(r"^backfill: 0/(\d+) chunks, 0 trades stored$", text, re.MULTILINE)  # not a tty: lines
    assert chunks is not None, text
    assert f"backfill: {chunks[1]}/{chunks[1]} chunks" in text and "\r" not in text
    summary = [line.split() for line in text.splitlines() if line.startswith("BTC-USDT")]
    engine = make_engine(env["DATABASE_URL"])
    try:
        rows = stored(engine, "BTC-USDT")
        assert rows == [values(t) for t in tape if t.trade_id <= rows[-1][0]] and len(rows) > 100
        assert int(summary[0][3]) == len(rows)  # the trades column
        statuses = {row[2] for row in coverage(engine, "BTC-USDT")}
        assert statuses == {"backfilled", "unrecoverable"}  # the hour reaches below the simulator's history
        assert stored(engine, "ETH-USDT") == []
    finally:
        engine.dispose()


async def test_a_chunk_failing_exits_1_and_says_how_many_failed(cli_env: dict[str, str]) -> None:
    """OKX refuses every history-trades page (HTTP 400, not retryable): the hole stays, its span is recorded
    unrecoverable, the summary counts the failed chunks and the exit code is 1."""
    engine = make_engine(cli_env["DATABASE_URL"])
    try:
        async with simulator(history_hours=0.1) as sim:
            tape = await true_tape(sim, "BTC-USDT")
            await store(engine, tape)
            first, last = tape[len(tape) // 3].trade_id, tape[len(tape) // 2].trade_id
            cut(engine, "BTC-USDT", first, last)
            await add_fault(
                sim, {"kind": "rest_error", "status": 400, "path": "/api/v5/market/history-trades"}
            )
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flows.cli", "backfill", "--pairs", "BTC-USDT", "--gaps", "--chunk-ids",
                "100", "--no-exchange-candles", cwd=REPO, env={**cli_env, "OKX_REST_URL": sim.rest_url},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await child.communicate()
        chunks = -(-(last - first + 1) // 100)
        assert child.returncode == 1, (out.decode(), err.decode())
        assert f"0 trades stored, {chunks} chunks failed" in out.decode(), out.decode()
        assert len(stored(engine, "BTC-USDT")) == len(tape) - (last - first + 1)
        assert [st for _, _, st, _ in coverage(engine, "BTC-USDT")] == ["unrecoverable"]
    finally:
        engine.dispose()


def test_usage_errors_exit_2_with_the_reason(cli_env: dict[str, str]) -> None:
    for args, reason in (
        (["--to", "2026-11-20T10:00Z"], "--to needs --from"),
        (["--since", "7 days"], "not a duration"),
        (["--pairs", "XRP-USDT", "--gaps"], "XRP-USDT not in the config"),
    ):
        result = cli(*args, env=cli_env)
        assert result.returncode == 2, (args, result.stderr)
        assert reason in result.stderr, (args, result.stderr)


def test_settings_follow_the_config() -> None:
    config = parse_config(
        {
            "exchanges": {
                "okx": {
                    "timeframes": ["1m", "1h"],
                    "pairs": ["BTC-USDT", {"inst_id": "ETH-USDT", "timeframes": ["5m"]}],
                }
            },
            "candles": {"empty_intervals": "carry"},
            "live": {"trades_mode": "aggregated"},
        }
    )
    settings = settings_from_config(config, chunk_ids=500)
    assert settings.timeframes_for("BTC-USDT") == ("1m", "1h")
    assert settings.timeframes_for("ETH-USDT") == ("5m",)
    assert (settings.empty_policy.value, settings.chunk_ids, settings.id_continuity) == ("carry", 500, False)
