"""Cancellation must not falsify ``stats()`` (an auditor's note), on both databases.

* a flush cancelled while the sink's write ran in the writer's thread: the database committed the batch, but
  ``written_rows`` never counted it (the batch, put back, was later counted as ``unchanged``);
* a replay cancelled while its replayed spill file was being deleted, or while an unreadable one was being
  moved aside as ``.bad``: the file was gone but ``spilled_rows`` kept counting its rows for good.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.storage.sinks import Sink, WriteResult, open_sink
from collectors.storage.spill import SpillDir
from collectors.storage.tables import Row, TableSpec, spec_for
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import BASE_TS, trade
from tests.storage.helpers import stored_trades


class HeldSink:
    """A real sink whose first write waits, in the writer's thread, until the test releases it."""

    def __init__(self, inner: Sink) -> None:
        self._inner = inner
        self.dialect = inner.dialect
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, spec: TableSpec, rows: Sequence[Row]) -> WriteResult:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        return self._inner.write(spec, rows)

    def close(self) -> None:
        self._inner.close()


async def _cancel_when(
    flushing: asyncio.Task[None], started: threading.Event, release: threading.Event
) -> None:
    """Cancel ``flushing`` once the writer's thread is inside ``started``'s work, then let that work finish."""
    assert await asyncio.to_thread(started.wait, 30)
    flushing.cancel()
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await flushing


async def test_a_write_committed_after_its_flush_was_cancelled_is_counted_as_written(engine: Engine) -> None:
    sink = HeldSink(open_sink(engine))
    options = WriterOptions(max_batch_rows=100, max_pending_rows=1_000, flush_interval_s=60)
    async with BatchWriter(sink, options=options) as writer:
        await writer.put_many(trade(i) for i in range(1, 51))
        await _cancel_when(asyncio.create_task(writer.flush()), sink.entered, sink.release)
        assert writer.stats().pending_rows == 50  # cancellation puts the in-flight batch back
        await writer.drain(timeout_s=30)
        stats = writer.stats()
        # the cancelled write committed all 50; writing the batch again found them stored
        assert (stats.written_rows, stats.unchanged_rows, stats.pending_rows) == (50, 50, 0)
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 51))


async def test_a_replay_cancelled_while_deleting_its_file_leaves_no_stale_spilled_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spill = tmp_path / "spill"
    spec = spec_for(trade(1))
    SpillDir(spill).write([(spec, [spec.to_row(trade(i), BASE_TS) for i in range(1, 21)])])
    deleting, release = threading.Event(), threading.Event()
    real_unlink = Path.unlink

    def held_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent == spill and self.suffix == ".jsonl":
            deleting.set()
            release.wait(30)
        real_unlink(self, missing_ok=missing_ok)

    options = WriterOptions(flush_interval_s=60, spill_dir=spill)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        assert writer.stats().spilled_rows == 20
        monkeypatch.setattr(Path, "unlink", held_unlink)
        await _cancel_when(asyncio.create_task(writer.flush()), deleting, release)
        monkeypatch.undo()
        await writer.flush()
        stats = writer.stats()
        assert (stats.spilled_rows, stats.written_rows, stats.lag_ms) == (0, 20, 0)
    assert [t.trade_id for t in stored_trades(engine)] == list(range(1, 21))
    assert list(spill.iterdir()) == []


async def test_a_replay_cancelled_while_quarantining_a_file_leaves_no_stale_spilled_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "000000000001.jsonl").write_text("not json\n" * 3)
    moving, release = threading.Event(), threading.Event()
    real_quarantine = SpillDir.quarantine

    def held_quarantine(self: SpillDir, path: Path) -> Path:
        moving.set()
        release.wait(30)
        return real_quarantine(self, path)

    options = WriterOptions(flush_interval_s=60, spill_dir=spill)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        assert writer.stats().spilled_rows == 3
        monkeypatch.setattr(SpillDir, "quarantine", held_quarantine)
        await _cancel_when(asyncio.create_task(writer.flush()), moving, release)
        monkeypatch.undo()
        await writer.flush()
        stats = writer.stats()
        assert (stats.spilled_rows, stats.dead_rows) == (0, 3)
        assert "unreadable spill file" in (stats.last_error or "")
    assert sorted(p.name for p in spill.iterdir()) == ["000000000001.bad"]
