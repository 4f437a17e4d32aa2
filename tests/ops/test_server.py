"""The endpoint's own rules: /health answers 503 while the collector's event loop is blocked (the server runs in
a thread of its own), /ready's reasons, a port already taken is a configuration error, unknown paths 404."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import select
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


def _sqlite_engine() -> Engine:
    from sqlalchemy import create_engine

    return create_engine("sqlite://")


class SlowProbe(FixedProbe):
    """Takes ``delay_s`` on the collector's loop per reading (a big collector; here a sleep)."""

    def __init__(self, snap: Snapshot, delay_s: float) -> None:
        super().__init__(snap)
        self.delay_s = delay_s

    def snapshot(self) -> Snapshot:
        time.sleep(self.delay_s)
        return self.snap


def _closed_now(socks: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has closed (readable at end of file, or reset) by now."""
    readable, _, _ = select.select(socks, [], [], 0)
    closed = []
    for sock in readable:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed.append(sock)
        except ConnectionResetError:
            closed.append(sock)
    return closed


async def test_idle_connections_are_closed_after_the_timeout_and_capped_and_do_not_slow_the_loop() -> None:
    """Slowloris: connections that send half a request hold a thread each; they are closed after
    ``idle_timeout_s``, at most ``max_connections`` are served at once (the rest closed at once), and the
    collector's loop keeps its pace meanwhile."""
    server = OpsServer(
        host="127.0.0.1", port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=_sqlite_engine(),
        idle_timeout_s=1.5, max_connections=8,
    )  # type: ignore[arg-type]  # fmt: skip
    server.start()
    beat = asyncio.create_task(server.heartbeat())
    lags: list[float] = []

    async def pace() -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - started - 0.01)

    pacer = asyncio.create_task(pace())
    threads_before = threading.active_count()
    socks: list[socket.socket] = []
    try:

        def open_slow(n: int) -> None:
            for _ in range(n):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                socks.append(sock)

        await asyncio.to_thread(open_slow, 40)
        await asyncio.sleep(0.5)
        assert threading.active_count() - threads_before <= 8
        # beyond the cap: closed at once, not queued (whichever 32 the server accepted last)
        assert len(_closed_now(socks)) == 32
        # the eight served: closed by the server once idle for 1.5 s
        await asyncio.sleep(2.5)
        assert len(_closed_now(socks)) == 40
        assert await asyncio.to_thread(_get, server.port, "/health") == (
            200, {"status": "ok", "collector_id": "c1", "loop_lag_s": pytest.approx(0, abs=0.5)},
        )  # fmt: skip
        assert max(lags) < 0.5, max(lags)
    finally:
        pacer.cancel()
        beat.cancel()
        for sock in socks:
            sock.close()
        await server.stop()


async def test_garbage_a_huge_header_and_other_methods_get_4xx_without_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    server = OpsServer(
        host="127.0.0.1", port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=_sqlite_engine()
    )  # type: ignore[arg-type]
    server.start()

    def send(raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            return answer

    try:
        garbage = await asyncio.to_thread(send, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
        huge = await asyncio.to_thread(send, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n")
        post = await asyncio.to_thread(send, b"POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
    finally:
        await server.stop()
    assert b"Error code: 400" in garbage, garbage  # no version understood: an HTTP/0.9 answer (body only)
    assert huge.startswith(b"HTTP/1.0 431 "), huge
    assert post.startswith(b"HTTP/1.0 501 "), post
    assert capfd.readouterr().err == ""


async def test_a_client_gone_before_the_answer_writes_no_traceback(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A scraper that times out and resets its connection while the reading is taken: socketserver's default
    prints a BrokenPipe/ConnectionReset traceback to stderr, past the log format and the secret mask."""
    server = OpsServer(
        host="127.0.0.1", port=0, probe=SlowProbe(snapshot(pair("A", "live")), 0.3), db=_sqlite_engine()
    )  # type: ignore[arg-type]
    server.start()

    def impatient() -> None:
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST

    try:
        with caplog.at_level(logging.INFO, logger="collectors.ops.server"):
            for _ in range(5):
                await asyncio.to_thread(impatient)
            await asyncio.sleep(3.0)
    finally:
        await server.stop()
    assert capfd.readouterr().err == ""
    assert [r for r in caplog.records if r.levelno >= logging.INFO and "serving" not in r.getMessage()] == []


def test_a_reading_cancelled_by_the_loops_end_answers_503_not_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The collector stops (asyncio.run cancels what is left on its loop) while a scrape waits for a reading."""
    server = OpsServer(
        host="127.0.0.1", port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=_sqlite_engine(),
        loop_timeout_s=10.0,
    )  # type: ignore[arg-type]  # fmt: skip
    answers: list[tuple[int, dict[str, object]]] = []
    asker = threading.Thread(target=lambda: answers.append(_get(server.port, "/health")))

    async def collector() -> None:
        server.start()
        asker.start()
        # busy (the loop blocked) until the scrape's reading waits on it; then the collector ends. A fixed sleep
        # let a slow CI machine's scrape arrive after the loop had closed (a 503 for another reason)
        deadline = time.monotonic() + 10.0
        while server._reading is None and time.monotonic() < deadline:
            time.sleep(0.01)  # noqa: ASYNC251
        assert server._reading is not None

    try:
        asyncio.run(collector())
        asker.join(timeout=15)
    finally:
        server._http.shutdown()
        server._http.server_close()
    assert answers == [(503, {"status": "unhealthy", "reason": "the collector's event loop stopped"})]
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("host", "warned"), [("127.0.0.1", False), ("localhost", False), ("::1", False), ("0.0.0.0", True)]
)
async def test_a_host_other_than_loopback_is_served_with_a_warning(
    host: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = OpsServer(host=host, port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=_sqlite_engine())  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="collectors.ops.server"):
        server.start()
    await server.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == (
        [
            f"ops.metrics_host {host}: the endpoint (no authentication) is reachable from other hosts; keep it "
            "behind a firewall, or bind 127.0.0.1"
        ]
        if warned
        else []
    )


async def test_ready_against_a_database_that_never_answers_keeps_one_check_in_flight() -> None:
    """A database host that accepts TCP and then says nothing (a hung server, a half-open firewall): each
    ``SELECT 1`` hangs. /ready answers 503 after ``db_timeout_s`` every time, and probes do not pile up hung
    threads (each holding one of the collector's pool connections): one check at a time, the others wait on it."""
    from sqlalchemy import create_engine

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        hung = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/x")
        server = OpsServer(
            host="127.0.0.1", port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=hung, db_timeout_s=0.3
        )  # type: ignore[arg-type]
        server.start()
        try:
            for _ in range(6):
                status, body = await asyncio.to_thread(_get, server.port, "/ready")
                assert (status, body) == (
                    503, {"ready": False, "reasons": ["database unreachable: no answer to SELECT 1 within 0.3 s"]},
                )  # fmt: skip
            checks = [t for t in threading.enumerate() if t.name == "ops-db-check"]
            assert len(checks) == 1, checks
        finally:
            await server.stop()
            hung.dispose()


def _exposition(snap: Snapshot) -> str:
    from prometheus_client import generate_latest

    from collectors.ops.metrics import registry_for

    return generate_latest(registry_for(lambda: snap)).decode()


def test_hostile_label_values_are_escaped_and_parse_back_exactly() -> None:
    """Pair names are validated as BASE-QUOTE by the config, but the exposition must not trust that: a name,
    channel, state, REST path or collector id with quotes, backslashes and newlines stays one label value."""
    from prometheus_client.parser import text_string_to_metric_families

    hostile = 'A"} 1\nokx_collector_info{collector_id="x\\'
    channel = dataclasses.replace(pair(hostile, "live").channels[0], channel='tr"ades\n')
    snap = dataclasses.replace(
        snapshot(dataclasses.replace(pair(hostile, 'li"ve\\'), channels=(channel,))),
        collector_id='c"1\n',
        rest_requests={'/api/v5/x"\n': 3},
        rest_rate_limited={'/api/v5/x"\n': 1},
    )
    families = {f.name: f for f in text_string_to_metric_families(_exposition(snap))}
    (info,) = families["okx_collector_info"].samples
    assert info.labels == {"collector_id": 'c"1\n'} and info.value == 1
    (state,) = families["okx_collector_pair_state"].samples
    assert state.labels == {"pair": hostile, "state": 'li"ve\\'}
    (messages,) = families["okx_collector_messages"].samples
    assert messages.labels == {"pair": hostile, "channel": 'tr"ades\n'} and messages.value == 5
    (limited,) = families["okx_collector_rest_rate_limited"].samples
    assert limited.labels == {"endpoint": '/api/v5/x"\n'} and limited.value == 1


def test_series_per_scrape_depend_on_the_configuration_not_on_what_happened() -> None:
    """Cardinality: a state is one series per pair (its current one), so a pair flapping between states does
    not add series; the count is fixed by pairs, channels and REST endpoints."""
    from prometheus_client.parser import text_string_to_metric_families

    def series(snap: Snapshot) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {
            (s.name, tuple(sorted(s.labels.items())))
            for f in text_string_to_metric_families(_exposition(snap))
            for s in f.samples
        }

    nine = [f"P{i}-USDT" for i in range(9)]
    counts = {
        len(series(snapshot(*(pair(p, state) for p in nine)))) for state in ("live", "down", "catching_up")
    }
    assert len(counts) == 1
    (count,) = counts
    # info 1; per pair: state, trades, revisions, gaps_open + 8 counters = 12; per channel 5; writer 7
    assert count == 1 + 9 * 12 + 9 * 5 + 7


async def test_once_the_heartbeat_is_older_than_the_timeout_health_answers_503_at_once() -> None:
    """A liveness probe with a short timeout (Kubernetes' default is 1 s) must get its 503, not a timeout: the
    first probe into a blocked loop waits ``loop_timeout_s``; later ones see the stale heartbeat and answer
    at once (and leave no reading queued on the blocked loop)."""
    server = OpsServer(
        host="127.0.0.1", port=0, probe=FixedProbe(snapshot(pair("A", "live"))), db=_sqlite_engine(),
        loop_timeout_s=1.0,
    )  # type: ignore[arg-type]  # fmt: skip
    server.start()
    beat = asyncio.create_task(server.heartbeat())
    await asyncio.sleep(0.3)
    answers: list[tuple[float, int, dict[str, object]]] = []

    def probe_at(delay_s: float) -> None:
        time.sleep(delay_s)
        started = time.monotonic()
        status, body = _get(server.port, "/health")
        answers.append((time.monotonic() - started, status, body))

    try:
        askers = [threading.Thread(target=probe_at, args=(d,)) for d in (0.2, 1.8, 2.2)]
        for asker in askers:
            asker.start()
        time.sleep(3.0)  # noqa: ASYNC251  the loop is blocked
        for asker in askers:
            asker.join()
        assert (await asyncio.to_thread(_get, server.port, "/health"))[0] == 200
    finally:
        beat.cancel()
        await server.stop()
    first, *later = sorted(answers, key=lambda a: -a[0])
    assert first[1] == 503 and 0.9 <= first[0] < 2.0, first
    for took, status, body in later:
        assert status == 503 and took < 0.5, (took, body)
        assert str(body["reason"]).startswith("event loop unresponsive (last heartbeat")
