"""PostgreSQL going away in the middle of writes: every row is there exactly once afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import trade
from tests.storage.helpers import stored_trades, terminate_connections

N_CHUNKS, CHUNK = 60, 500
_HAS_CLUSTERS = os.path.isdir("/etc/postgresql")


def _options(tmp_path: Path) -> WriterOptions:
    return WriterOptions(
        max_batch_rows=400, max_pending_rows=4_000, flush_interval_s=0.02, spill_dir=tmp_path / "spill",
        retry_initial_s=0.05, retry_max_s=0.5,
    )  # fmt: skip


async def _produce(writer: BatchWriter, disrupt_after: int, disrupt: asyncio.Event) -> None:
    for chunk in range(N_CHUNKS):
        await writer.put_many(trade(chunk * CHUNK + i) for i in range(1, CHUNK + 1))
        if chunk == disrupt_after:
            disrupt.set()
        await asyncio.sleep(0.01)


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
    return [versions[-1], "main"]


async def test_rows_survive_a_server_restart_mid_write(pg_engine: Engine, tmp_path: Path) -> None:
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0 or not _HAS_CLUSTERS:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must be able to restart the local PostgreSQL (pg_ctlcluster as root)")
        pytest.skip("needs pg_ctlcluster as root to restart the local PostgreSQL")
    disrupt = asyncio.Event()
    async with BatchWriter(open_sink(pg_engine), options=_options(tmp_path)) as writer:
        producer = asyncio.create_task(_produce(writer, 10, disrupt))
        await disrupt.wait()
        restart = await asyncio.create_subprocess_exec(
            "pg_ctlcluster", "--skip-systemctl-redirect", *_cluster(), "restart", "-m", "fast",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await restart.communicate()
        assert restart.returncode == 0, err.decode()
        await producer
        await writer.drain(timeout_s=60)
        stats = writer.stats()
    assert stats.retries >= 1, "the restart should have interrupted at least one write"
    ids = [r.trade_id for r in stored_trades(pg_engine)]
    assert len(ids) == N_CHUNKS * CHUNK
    assert ids == list(range(1, N_CHUNKS * CHUNK + 1))


async def test_rows_survive_killed_connections(pg_engine: Engine, tmp_path: Path) -> None:
    disrupt = asyncio.Event()
    async with BatchWriter(open_sink(pg_engine), options=_options(tmp_path)) as writer:
        producer = asyncio.create_task(_produce(writer, 5, disrupt))
        await disrupt.wait()
        assert terminate_connections(pg_engine) >= 1
        await producer
        await writer.drain(timeout_s=60)
    ids = [r.trade_id for r in stored_trades(pg_engine)]
    assert ids == list(range(1, N_CHUNKS * CHUNK + 1))
