"""The endpoint's own rules: /health answers 503 while the collector's event loop is blocked (the server runs in
a thread of its own), /ready's reasons, a port already taken is a configuration error, unknown paths 404."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import threading
import time
import urllib.request
from urllib.error import HTTPError

import pytest
from sqlalchemy import Engine

from collectors.config import OpsConfig
from collectors.errors import ConfigError
from collectors.live.health import ChannelHealth, PairHealth
from collectors.ops.readiness import not_ready_reasons
from collectors.ops.server import OpsServer, serve_ops
from collectors.ops.snapshot import Snapshot
from collectors.storage.writer_options import WriterStats
from tests.ops.ops_helpers import free_port

WRITER = WriterStats(
    pending_rows=0, spilled_rows=0, written_rows=10, unchanged_rows=0, dead_rows=0, retries=0,
    healthy=True, failed=False, lag_ms=0, last_error=None,
)  # fmt: skip


def pair(inst: str, state: str, error: str | None = None) -> PairHealth:
    channel = ChannelHealth(
        channel="trades-all",
        state="live",
        last_message_age_ms=100,
        messages=5,
        messages_per_s=0.5,
        rejected=0,
    )
    return PairHealth(
        inst_id=inst, state=state, channels=(channel,), reconnects=0, trades_stored=5, duplicates=0,
        gaps_found=0, gaps_filled=0, gaps_unrecoverable=0, gaps_open=0, rest_trades=0, rejected=0,
        revision_requests=0, frontier_id=5, error=error,
    )  # fmt: skip


def snapshot(*pairs: PairHealth, writer: WriterStats = WRITER) -> Snapshot:
    return Snapshot(
        collector_id="c1", now_ms=0, pairs=pairs, revisions={}, writer=writer, rest_requests={},
        rest_rate_limited={},
    )  # fmt: skip


class FixedProbe:
    collector_id = "c1"

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def snapshot(self) -> Snapshot:
        return self.snap


def test_ready_needs_the_database_and_every_trade_stream_live_or_catching_up() -> None:
    assert not_ready_reasons(snapshot(pair("A", "live"), pair("B", "catching_up")), None) == []
    assert not_ready_reasons(snapshot(pair("A", "down"), pair("B", "failed", "4001 login")), "gone") == [
        "database unreachable: gone",
        "A: trade stream down",
        "B: trade stream failed (4001 login)",
    ]
    failed = dataclasses.replace(WRITER, failed=True, last_error="IntegrityError: bad row")
    assert not_ready_reasons(snapshot(pair("A", "live"), writer=failed), None) == [
        "writer failed: IntegrityError: bad row"
    ]
    assert not_ready_reasons(snapshot(), None) == ["no pair configured"]


def _get(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


async def test_health_is_503_while_the_event_loop_is_blocked_and_200_again_after(pg_engine: Engine) -> None:
    server = OpsServer(
        host="127.0.0.1",
        port=0,
        probe=FixedProbe(snapshot(pair("A", "live"))),
        db=pg_engine,
        loop_timeout_s=1.0,
    )  # type: ignore[arg-type]
    server.start()
    beat = asyncio.create_task(server.heartbeat())
    try:
        assert await asyncio.to_thread(_get, server.port, "/health") == (
            200, {"status": "ok", "collector_id": "c1", "loop_lag_s": pytest.approx(0, abs=0.5)},
        )  # fmt: skip
        answer: list[tuple[int, dict[str, object]]] = []

        def probe_later() -> None:
            time.sleep(0.3)  # asked while the loop is blocked below
            answer.append(_get(server.port, "/health"))

        asker = threading.Thread(target=probe_later)
        asker.start()
        time.sleep(2.5)  # noqa: ASYNC251  the loop is blocked (a bug, a huge batch); the thread still answers
        asker.join()
        ((status, body),) = answer
        assert status == 503 and str(body["reason"]).startswith("event loop unresponsive (last heartbeat")
        assert (await asyncio.to_thread(_get, server.port, "/health"))[0] == 200
        assert await asyncio.to_thread(_get, server.port, "/ready") == (200, {"ready": True, "reasons": []})
        assert (await asyncio.to_thread(_get, server.port, "/nope"))[0] == 404
    finally:
        beat.cancel()
        await server.stop()


async def test_a_port_already_taken_is_a_configuration_error(pg_engine: Engine) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(ConfigError, match=f"ops.metrics_port: cannot serve on 127.0.0.1:{port}"):
            async with serve_ops(OpsConfig(metrics_port=port), FixedProbe(snapshot()), pg_engine):  # type: ignore[arg-type]
                pass


async def test_port_0_serves_nothing(pg_engine: Engine) -> None:
    async with serve_ops(OpsConfig(), FixedProbe(snapshot()), pg_engine) as server:  # type: ignore[arg-type]
        assert server is None
