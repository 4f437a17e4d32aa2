"""The batched writer against real databases: batching, back-pressure, outages, spill and replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.storage.engine import make_engine
from collectors.storage.records import RawMessage
from collectors.storage.schema import RawMessageRow
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.builders import FakeClock, trade
from tests.storage.helpers import count_trades, stored_trades


async def test_writes_everything_in_batches(engine: Engine) -> None:
    options = WriterOptions(max_batch_rows=1_000, max_pending_rows=5_000, flush_interval_s=0.05)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        await writer.put_many(trade(i) for i in range(1, 12_346))
        await writer.flush()
        stats = writer.stats()
    assert (stats.written_rows, stats.pending_rows, stats.unchanged_rows) == (12_345, 0, 0)
    assert [r.trade_id for r in stored_trades(engine)] == list(range(1, 12_346))


async def test_flushes_on_interval_without_being_asked(engine: Engine) -> None:
    options = WriterOptions(max_batch_rows=1_000, flush_interval_s=0.05)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        for i in range(1, 4):
            await writer.put(trade(i))
        # up to 30 s (was 2 s): on a loaded machine the first flush may take seconds
        for _ in range(1_500):
            if writer.stats().written_rows == 3:
                break
            await asyncio.sleep(0.02)
        assert writer.stats().written_rows == 3
        assert count_trades(engine) == 3


async def test_replaying_the_same_records_adds_nothing(engine: Engine) -> None:
    async with BatchWriter(open_sink(engine)) as writer:
        await writer.put_many(trade(i) for i in range(1, 501))
        await writer.flush()
        await writer.put_many(trade(i) for i in range(1, 601))
        await writer.flush()
        stats = writer.stats()
    assert (stats.written_rows, stats.unchanged_rows) == (600, 500)
    assert count_trades(engine) == 600


async def test_bad_rows_are_dead_lettered_and_the_rest_written(engine: Engine, tmp_path: Path) -> None:
    good = [
        RawMessage(collector_id="c1", seq=i, exchange="okx", channel="trades", inst_id="BTC-USDT", recv_ms=i,
                   payload=f'{{"n":{i}}}')
        for i in range(1, 101)
    ]  # fmt: skip
    bad = RawMessage(collector_id="c1", seq=50_000, exchange="okx", channel="trades", inst_id=None, recv_ms=1,
                     payload=None)  # type: ignore[arg-type]  # fmt: skip
    options = WriterOptions(spill_dir=tmp_path / "spill")
    async with BatchWriter(open_sink(engine), options=options) as writer:
        await writer.put_many([*good[:40], bad, *good[40:]])
        await writer.flush()
        stats = writer.stats()
    assert (stats.written_rows, stats.dead_rows) == (100, 1)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(RawMessageRow)) == 100
    (line,) = (tmp_path / "spill" / "dead-letters.jsonl").read_text().splitlines()
    dead = json.loads(line)
    assert dead["t"] == "raw_messages" and dead["r"][1] == 50_000
    assert "null" in dead["error"].lower() or "not null" in dead["error"].lower()


async def test_outage_spills_to_disk_and_a_restart_replays_it(db_url: str, tmp_path: Path) -> None:
    """A writer that cannot reach its database keeps bounded memory, spills, and loses nothing."""
    spill = tmp_path / "spill"
    clock = FakeClock()
    if db_url.startswith("postgresql"):
        down = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    else:
        down = make_engine(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
        (tmp_path / "gone").rmdir()  # a file where the folder was: "unable to open", even for root
        (tmp_path / "gone").write_text("")
    options = WriterOptions(
        max_batch_rows=50, max_pending_rows=100, flush_interval_s=0.01, spill_dir=spill,
        retry_initial_s=0.01, retry_max_s=0.05, close_timeout_s=0.2,
    )  # fmt: skip
    writer = BatchWriter(open_sink(down), options=options, clock=clock)
    await writer.start()
    await writer.put_many(trade(i) for i in range(1, 41))
    # wait (up to 30 s; was 2 s) until the first failed flush marks the database unhealthy
    for _ in range(3_000):
        if not writer.stats().healthy:
            break
        await asyncio.sleep(0.01)
    clock.now_ms += 5_000
    await writer.put_many(trade(i) for i in range(41, 501))
    stats = writer.stats()
    assert not stats.healthy and stats.retries >= 1 and stats.last_error
    assert stats.pending_rows <= 100 and stats.spilled_rows >= 400
    assert stats.pending_rows + stats.spilled_rows == 500
    assert stats.lag_ms >= 5_000
    await writer.aclose()  # cannot write: spills the rest
    down.dispose()
    assert sum(1 for f in spill.glob("*.jsonl") for _ in f.open()) == 500

    up = make_engine(db_url)
    async with BatchWriter(open_sink(up), options=options) as replayer:
        assert replayer.stats().spilled_rows == 500
        await replayer.flush()
        assert replayer.stats().spilled_rows == 0 and replayer.stats().written_rows == 500
    assert [r.trade_id for r in stored_trades(up)] == list(range(1, 501))
    assert not list(spill.glob("*.jsonl"))
    up.dispose()


async def test_back_pressure_while_the_database_is_slow(pg_engine: Engine) -> None:
    """A locked table stalls writes; put() then waits instead of growing memory, and resumes after."""
    engine = pg_engine
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    locker = psycopg.connect(url)
    locker.execute("LOCK TABLE trades IN ACCESS EXCLUSIVE MODE")
    options = WriterOptions(max_batch_rows=100, max_pending_rows=200, flush_interval_s=0.01)
    async with BatchWriter(open_sink(engine), options=options) as writer:
        producer = asyncio.create_task(writer.put_many(trade(i) for i in range(1, 1_001)))
        await asyncio.sleep(0.5)
        assert not producer.done()
        assert writer.stats().pending_rows <= 200
        locker.rollback()
        await asyncio.wait_for(producer, timeout=30)
        await writer.flush()
    locker.close()
    assert count_trades(engine) == 1_000
