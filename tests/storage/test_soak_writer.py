"""Soak: a long write with repeated outages (``make soak``; kept out of ``make test``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import trade
from tests.storage.helpers import stored_trades, terminate_connections

pytestmark = pytest.mark.soak

TOTAL, CHUNK = 400_000, 2_000


async def _kill_connections(engine: Engine, every_s: float, stop: asyncio.Event) -> int:
    kills = 0
    while not stop.is_set():
        await asyncio.sleep(every_s)
        kills += terminate_connections(engine)
    return kills


async def test_long_write_with_repeated_connection_kills(pg_engine: Engine, tmp_path: Path) -> None:
    options = WriterOptions(
        max_batch_rows=5_000, max_pending_rows=20_000, flush_interval_s=0.05, spill_dir=tmp_path / "spill",
        retry_initial_s=0.05, retry_max_s=0.5,
    )  # fmt: skip
    stop = asyncio.Event()
    killer = asyncio.create_task(_kill_connections(pg_engine, 0.7, stop))
    async with BatchWriter(open_sink(pg_engine), options=options) as writer:
        for start in range(1, TOTAL + 1, CHUNK):
            await writer.put_many(trade(i) for i in range(start, start + CHUNK))
            await asyncio.sleep(0)
        await writer.drain(timeout_s=120)
        stop.set()
        kills = await killer
        await writer.drain(timeout_s=120)
    assert kills >= 1, os.environ.get("CI")
    ids = [r.trade_id for r in stored_trades(pg_engine)]
    assert ids == list(range(1, TOTAL + 1))
