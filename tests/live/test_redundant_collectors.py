"""Redundant collectors: two ``okx-collector collect`` processes on the same pairs write into one PostgreSQL.

The fault hits one of them only: its WebSocket goes through a TCP relay the test controls, and the relay
cuts that collector's connections (a network fault between one host and OKX; the simulator's own faults
hit every connection); it reconnects and catches up from REST while the other one goes on. Then both stop (SIGTERM, at different times). Afterwards ``trades`` equals
``/sim/tape`` over the stored range, nothing twice; each collector's coverage spans are in the ledger (the
unique key does not merge two collectors' spans); and each one's frames are archived under its own id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from collectors.storage.schema import CoverageRow, RawMessageRow, TradeRow
from tests.live.sim_run import PAIRS, simulator, stored, true_tape, values

ROOT = Path(__file__).resolve().parents[2]


class Relay:
    """A TCP relay to the simulator; :meth:`cut` aborts every connection relayed so far (new ones pass)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.live: list[asyncio.StreamWriter] = []
        self.cuts = 0

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        self.cut()

    @property
    def bound(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    def cut(self) -> None:
        for writer in self.live:
            writer.transport.abort()
        self.cuts += len(self.live)
        self.live.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.live += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _config(tmp: Path) -> Path:
    path = tmp / "collectors.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "exchanges": {"okx": {"channels": ["trades"], "timeframes": ["1m"], "pairs": list(PAIRS)}},
                "live": {"raw_archive": "trades"},
                "batching": {"flush_interval_s": 0.2, "max_batch_rows": 500, "max_pending_rows": 10_000},
            }
        )
    )
    return path


async def _collector(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flows.cli",
        "collect",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _archived_by(db: Engine) -> dict[str, int]:
    with Session(db) as session:
        rows = session.execute(
            select(RawMessageRow.collector_id, func.count()).group_by(RawMessageRow.collector_id)
        )
        return {cid: int(n) for cid, n in rows}


def _last_received_by(db: Engine) -> dict[str, int]:
    with Session(db) as session:
        rows = session.execute(
            select(RawMessageRow.collector_id, func.max(RawMessageRow.recv_time)).group_by(
                RawMessageRow.collector_id
            )
        )
        return {cid: int(t) for cid, t in rows}


async def _until(ok: object, wait_s: float) -> None:
    for _ in range(int(wait_s / 0.2)):
        if callable(ok) and ok():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached within {wait_s} s")


async def _stop(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def _reconnects(summary: str) -> dict[str, int]:
    """The ``reconnects`` column (the last) of ``collect``'s summary table, per pair."""
    rows = {}
    for line in summary.splitlines():
        cells = line.split()
        if cells and cells[0] in PAIRS and re.fullmatch(r"\d+", cells[-1]):
            rows[cells[0]] = int(cells[-1])
    return rows


async def test_two_collectors_on_the_same_pairs_one_faulted_store_the_tape_once(
    pg_engine: Engine, tmp_path: Path
) -> None:
    async with simulator(trade_rate=10.0) as sim, Relay(urlsplit(sim.ws_business_url).port or 0) as relay:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "COLLECTOR_CONFIG": str(_config(tmp_path)),
            "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
            "OKX_REST_URL": sim.rest_url,
            "OKX_WS_PUBLIC_URL": sim.ws_public_url,
            "OKX_WS_BUSINESS_URL": sim.ws_business_url,
        }
        relayed = urlsplit(sim.ws_business_url)._replace(netloc=f"127.0.0.1:{relay.bound}").geturl()
        steady, faulted = await _collector(env), await _collector({**env, "OKX_WS_BUSINESS_URL": relayed})
        try:
            # both are collecting: each has archived trade frames under its own collector id
            await _until(lambda: len(_archived_by(pg_engine)) == 2, 90)
            relay.cut()
            cut_ms = time.time_ns() // 1_000_000
            at_cut = {p: (await true_tape(sim, p))[-1].trade_id for p in PAIRS}
            # the database reaches the tape as it was at the cut, and both collectors archive frames received
            # after it (counting archived rows is not enough: frames buffered before the cut land after it)
            await _until(lambda: all(stored(pg_engine, p)[-1][0] >= at_cut[p] for p in PAIRS), 60)
            await _until(lambda: all(t > cut_ms for t in _last_received_by(pg_engine).values()), 60)
        except BaseException:
            for process in (faulted, steady):
                if process.returncode is None:
                    process.kill()
            raise
        assert relay.cuts >= 2  # the faulted collector's business connection (both directions)
        faulted_out = await _stop(faulted)
        first_stop_ms = time.time_ns() // 1_000_000
        # the steady one stops 3 s later; its span ends after the faulted one's by more than the 1 s the check
        # asks (a span ends at the last instant the collector vouched for, which lags a busy machine's clock)
        await asyncio.sleep(3.0)
        steady_out = await _stop(steady)
        tapes = {p: await true_tape(sim, p) for p in PAIRS}
    for inst_id in PAIRS:
        rows = stored(pg_engine, inst_id)
        first, last = rows[0][0], rows[-1][0]
        assert rows == [values(t) for t in tapes[inst_id] if first <= t.trade_id <= last], inst_id
        with Session(pg_engine) as session:
            count = session.scalar(select(func.count()).where(TradeRow.inst_id == inst_id))
        assert count == len({r[0] for r in rows}) == len(rows)  # nothing twice
    # the faulted collector saw its stream break: it reconnected (the steady one did not need to)
    reconnects = _reconnects(faulted_out)
    assert all(n >= 1 for n in reconnects.values()) and len(reconnects) == 2, faulted_out
    assert len(_reconnects(steady_out)) == 2
    with Session(pg_engine) as session:
        spans = session.scalars(select(CoverageRow).where(CoverageRow.status == "collected")).all()
    for inst_id in PAIRS:
        ends = sorted(s.end_time for s in spans if s.inst_id == inst_id)
        # each collector's last span is kept: one ends at the faulted one's stop, one at the steady one's
        assert any(e < first_stop_ms for e in ends), (inst_id, ends, first_stop_ms)
        assert any(e > first_stop_ms + 1_000 for e in ends), (inst_id, ends, first_stop_ms)
