"""Closing a writer while its database is away says how many rows are kept in the spill directory, whether they
were spilled during the outage or at the close (the line was missing when the outage had spilled them all)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import trade
from tests.storage.test_audit_defects import SwitchedSink

OPTIONS = dict(flush_interval_s=0.01, retry_initial_s=0.01, retry_max_s=0.05, close_timeout_s=0.3)


def _closing_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("closing without the database")
    ]


async def test_rows_spilled_during_the_outage_are_named_at_the_close(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    sink = SwitchedSink(open_sink(engine))
    sink.down = True
    spill = tmp_path / "spill"
    writer = BatchWriter(sink, options=WriterOptions(spill_dir=spill, **OPTIONS))  # type: ignore[arg-type]
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 11))
    for _ in range(3_000):  # up to 30 s: the outage spills every row, nothing stays in memory
        stats = writer.stats()
        if stats.pending_rows == 0 and stats.spilled_rows == 10:
            break
        await asyncio.sleep(0.01)
    assert (writer.stats().pending_rows, writer.stats().spilled_rows) == (0, 10)
    await writer.aclose()
    assert _closing_lines(caplog) == [f"closing without the database; 10 rows kept in {spill}"]


async def test_rows_still_in_memory_at_the_close_are_spilled_and_named(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    sink = SwitchedSink(open_sink(engine))
    sink.down = True
    spill = tmp_path / "spill"
    options = WriterOptions(spill_dir=spill, **{**OPTIONS, "flush_interval_s": 60.0})  # type: ignore[arg-type]
    writer = BatchWriter(sink, options=options)
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 6))
    await writer.aclose()
    assert _closing_lines(caplog) == [f"closing without the database; 5 rows kept in {spill}"]


async def test_a_healthy_close_says_nothing_of_the_kind(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    async with BatchWriter(open_sink(engine), options=WriterOptions(**OPTIONS)) as writer:  # type: ignore[arg-type]
        await writer.put_many(trade(i) for i in range(1, 6))
    assert _closing_lines(caplog) == []
