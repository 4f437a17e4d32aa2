"""kill -9 during a real outage loses at most one flush interval of rows (issue 8).

A child process writes through a database URL nobody answers (a closed port); with memory far from full it
must still move every row to the spill dir within a flush interval. It is killed with SIGKILL, and a restart
against the real database replays every spilled row exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import Engine

from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.storage.helpers import stored_trades

REPO = Path(__file__).resolve().parents[2]
CHUNKS, CHUNK = 4, 500


async def _run_and_kill(spill: Path) -> list[str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.storage.crash_child", str(spill), str(CHUNKS),
        cwd=REPO, env={**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert child.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("put"):
            line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
            assert line, f"the child ended early after {lines}"
            lines.append(line.decode().strip())
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    return lines


async def test_kill_9_during_an_outage_loses_at_most_one_flush_interval(
    engine: Engine, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    lines = await _run_and_kill(spill)
    assert lines == [*(f"spilled {n * CHUNK}" for n in range(1, CHUNKS + 1)), f"put {(CHUNKS + 1) * CHUNK}"]
    async with BatchWriter(open_sink(engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.flush()
        assert writer.stats().spilled_rows == 0
    ids = [t.trade_id for t in stored_trades(engine)]
    # every row spilled before the kill is back, once; the last chunk (put within the last interval) may not be
    assert ids[: CHUNKS * CHUNK] == list(range(1, CHUNKS * CHUNK + 1))
    assert ids == list(range(1, len(ids) + 1)) and len(ids) <= (CHUNKS + 1) * CHUNK
