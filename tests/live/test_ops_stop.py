"""A stop while the database is away says what it waits for, and keeps every row in the spill dir.

PostgreSQL is reached through a TCP relay the test cuts (the shared server keeps running for everyone else):
to the collector the database is gone, connections reset and refused. Before: SIGTERM during such an outage
printed nothing while the writer retried for its close timeout, and ``collect`` never passed the config's
``batching.spill_dir`` to the writer, so the rows were not kept either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from collectors.config import parse_config
from collectors.live.app import LiveOptions, writer_options
from collectors.storage.engine import make_engine
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter, WriterOptions
from tests.live.sim_run import FAST, PAIRS, live_config, simulator, stored, true_tape, values
from tests.live.test_ops_health import collecting


class Relay:
    """Forwards TCP connections to ``port`` until :meth:`cut`: then every relayed connection is reset and the
    listening socket is closed (new connections are refused)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.port)
        self._writers += [client_w, server_w]
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()

    def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()


def test_the_writer_keeps_rows_in_the_configs_spill_dir_unless_told_otherwise(tmp_path: Path) -> None:
    config = parse_config(
        {"exchanges": {"okx": {"pairs": ["BTC-USDT"]}}, "batching": {"spill_dir": str(tmp_path)}}
    )
    assert writer_options(config, LiveOptions()).spill_dir == tmp_path  # before: None (rows not kept)
    own = WriterOptions(flush_interval_s=0.1)
    assert writer_options(config, LiveOptions(writer=own)) is own


async def test_a_stop_waiting_for_a_database_that_is_down_says_so_and_spills_every_row(
    pg_database: str, pg_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collectors")
    relay = Relay(5432)
    port = await relay.start()
    assert ":5432/" in pg_database
    db = make_engine(pg_database.replace(":5432/", f":{port}/"))
    spill = tmp_path / "spill"
    options = dataclasses.replace(
        FAST,
        writer=dataclasses.replace(FAST.writer or WriterOptions(), spill_dir=spill, close_timeout_s=3.0),
        stop_log_interval_s=0.5,
    )
    try:
        async with simulator() as sim, collecting(sim, db, live_config(), options) as run:
            await run.until(lambda h: h.state == "live" and h.trades_stored > 0)
            await asyncio.sleep(0.5)
            relay.cut()
            await asyncio.sleep(1.0)  # trades go on arriving; the writer cannot write them
            result = await run.finish()  # as SIGTERM does in ``collect``
            tapes = {p: await true_tape(sim, p) for p in PAIRS}
    finally:
        db.dispose()
    waits = [r for r in caplog.records if r.getMessage().startswith("stopping: waiting to write")]
    assert len(waits) >= 2, [r.getMessage() for r in caplog.records]  # about every 0.5 s of the 3 s close
    for record in waits:
        message = record.getMessage()
        rows = int(re.findall(r"waiting to write (\d+) rows", message)[0])
        assert record.levelno == logging.WARNING and rows > 0 and f"spilled to {spill}" in message, message
    assert any(r.getMessage().startswith("closing without the database") for r in caplog.records)
    assert {h.state for h in result.health} == {"stopped"}
    assert list(spill.glob("*")), "nothing was spilled"
    # the spilled rows are the rest of the tape: replayed, every pair is exact from its first stored trade on
    async with BatchWriter(open_sink(pg_engine), options=WriterOptions(spill_dir=spill)) as writer:
        await writer.flush()
    for inst_id in PAIRS:
        rows = stored(pg_engine, inst_id)
        assert len(rows) >= result.health[PAIRS.index(inst_id)].trades_stored > 0
        assert rows == [values(t) for t in tapes[inst_id] if rows[0][0] <= t.trade_id <= rows[-1][0]]
