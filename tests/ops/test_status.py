"""``okx-collector status``: the last 24 h of coverage from the database (exact seconds per kind, no collector
running), and a running collector's streams read from its endpoint."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from sqlalchemy import Engine

from collectors.model import DataType
from collectors.ops.coverage import DAY_MS, breakdown
from collectors.storage.records import CoverageSpan, CoverageStatus
from collectors.storage.sinks import open_sink
from collectors.storage.writer import BatchWriter
from tests.builders import trade
from tests.live.sim_run import FAST, PAIRS, simulator, start
from tests.ops.ops_helpers import collect_cli, free_port, own_database, write_config
from tests.ops.test_metrics_sim import ops_config

M = 60_000
S = 1_000


def span(start: int, end: int, status: CoverageStatus, inst: str = "BTC-USDT") -> CoverageSpan:
    return CoverageSpan(
        exchange="okx", inst_id=inst, data_type=DataType.TRADES, start_ms=start, end_ms=end, status=status
    )


def ledger(base: int) -> list[CoverageSpan]:
    """Ten collected minutes from ``base`` with a filled hole, an open gap and unrecoverable ids in them, then a
    two-minute catch-up from REST."""
    return [
        span(base, base + 10 * M, CoverageStatus.COLLECTED),
        span(base + 3 * M + 10 * S, base + 3 * M + 20 * S, CoverageStatus.GAP),
        span(base + 3 * M + 10 * S, base + 3 * M + 20 * S, CoverageStatus.BACKFILLED),
        span(base + 5 * M, base + 5 * M + 30 * S, CoverageStatus.GAP),
        span(base + 6 * M, base + 6 * M + 15 * S, CoverageStatus.GAP),
        span(base + 6 * M, base + 6 * M + 15 * S, CoverageStatus.UNRECOVERABLE),
        span(base + 10 * M, base + 12 * M, CoverageStatus.BACKFILLED),
    ]


# trades in minutes 0-7 and 10 (after the open gap's and the lost ids' seconds): 8, 9 and 11 are quiet
TRADED = [0, 1, 2, 3, 4, 5, 6, 7, 10]
EXPECTED_S = {
    "collected": 600 - 120 - 10 - 30 - 15,  # ten minutes less the quiet ones, the filled hole, gap, lost ids
    "backfilled": 10 + 60,
    "quiet": 120 + 60,
    "unrecoverable": 15,
    "gap": 30,
}


def test_the_breakdown_splits_the_window_into_kinds_that_add_up() -> None:
    base = 1_764_000_000_000 // M * M
    ms = breakdown(ledger(base), [base + m * M for m in TRADED], base - M, base + 20 * M)
    assert {k: v / 1000 for k, v in ms.items()} == {**EXPECTED_S, "unwatched": 60 + 8 * 60}


async def store(db: Engine, base: int) -> None:
    trades = [trade(i + 1, ts_ms=base + m * M + 40 * S) for i, m in enumerate(TRADED)]
    async with BatchWriter(open_sink(db)) as writer:
        await writer.put_many([*trades, *ledger(base)])


async def test_status_without_a_collector_gives_the_coverage_of_the_last_24_hours(tmp_path: Path) -> None:
    port = free_port()  # configured, nobody listening
    config = write_config(tmp_path / "c.json", PAIRS, ops={"metrics_port": port})
    base = (time.time_ns() // 1_000_000 - 3 * 3_600_000) // M * M
    with own_database() as (_, db):
        await store(db, base)
        url = db.url.render_as_string(hide_password=False)
        async with simulator() as sim:
            code, out, err = await collect_cli(sim, "status", "--json", database_url=url, config=config)
            text_code, text, _ = await collect_cli(sim, "status", database_url=url, config=config)
    assert code == 0 and text_code == 0, err
    doc = json.loads(out)
    source = f"http://127.0.0.1:{port}/status"
    assert doc["collectors"] == [
        {"source": source, "status": None, "error": f"no collector answering at {source}: ConnectError"}
    ]
    coverage = {c["pair"]: c for c in doc["coverage"]}
    btc = coverage["BTC-USDT"]["seconds"]
    assert btc == {**EXPECTED_S, "unwatched": DAY_MS / 1000 - sum(EXPECTED_S.values())}
    assert coverage["BTC-USDT"]["percent"]["collected"] == round(100 * 425 / 86_400, 3)
    assert coverage["ETH-USDT"]["seconds"] == {**dict.fromkeys(EXPECTED_S, 0), "unwatched": 86_400}
    assert "no collector answering" in text
    (btc_row,) = [line for line in text.splitlines() if line.startswith("BTC-USDT")]
    assert btc_row.split()[1:3] == ["425", "s"], btc_row


async def test_status_reads_a_running_collectors_streams_from_its_endpoint(tmp_path: Path) -> None:
    port = free_port()
    config_file = write_config(tmp_path / "c.json", PAIRS)
    with own_database() as (_, db):
        url = db.url.render_as_string(hide_password=False)
        async with simulator() as sim:
            run = start(sim, db, ops_config(port, tmp_path / "spill"), options=dataclasses.replace(FAST))
            try:
                await run.until(lambda h: h.state == "live" and h.trades_stored > 0)
                env = {"COLLECTOR_METRICS_PORT": str(port)}  # the environment names the port
                health = dict(run.health)
                code, out, err = await collect_cli(
                    sim, "status", "--json", database_url=url, config=config_file, env=env
                )
                dead = free_port()
                endpoints = (
                    "--endpoint",
                    f"127.0.0.1:{port}",
                    "--endpoint",
                    str(dead),
                )  # two collectors asked
                text_code, text, _ = await collect_cli(
                    sim, "status", *endpoints, database_url=url, config=config_file, env=env
                )
            finally:
                await run.stop()
    assert code == 0 and text_code == 0, err
    doc = json.loads(out)
    (collector,) = doc["collectors"]
    assert collector["source"] == f"http://127.0.0.1:{port}/status" and collector["error"] is None
    live = collector["status"]
    assert live["collector_id"] == "t"
    assert {p["inst_id"]: p["state"] for p in live["pairs"]} == dict.fromkeys(PAIRS, "live")
    for p in live["pairs"]:
        (channel,) = p["channels"]
        assert channel["channel"] == "trades-all" and channel["state"] == "live"
        assert 0 <= channel["last_message_age_ms"] < 5_000 and channel["messages"] > 0
        assert p["reconnects"] >= health[p["inst_id"]].reconnects  # 0 unless a loaded machine missed a pong
        assert p["gaps_unrecoverable"] == 0 and p["rejected"] == 0  # no fault injected
        assert p["trades_stored"] >= health[p["inst_id"]].trades_stored  # read after that report
    assert live["writer"]["healthy"] is True and live["writer"]["dead_rows"] == 0
    assert f"collector t ({collector['source']})" in text and "writer: lag" in text
    assert f"no collector answering at http://127.0.0.1:{dead}/status: ConnectError" in text  # the second
    rows = [line.split() for line in text.splitlines() if line.startswith(PAIRS)]
    assert {(r[0], r[1], r[2]) for r in rows if len(r) > 3} >= {(p, "trades-all", "live") for p in PAIRS}


class _Impostor:
    """An HTTP server on a free port answering ``/status`` with ``body`` (something else listening there, an
    older collector, a proxy's error page)."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: object) -> None:
                """quiet"""

        self.body, self.status = body, status
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.http.server_address[1])
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def _status_cli(url: str, config: Path, *args: str) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys

    from tests.ops.ops_helpers import REPO

    env = {**os.environ, "DATABASE_URL": url, "COLLECTOR_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "status", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


_NOT_A_STATUS = {
    b"[]": "a JSON array, not an object",
    b'"text"': "a JSON string, not an object",
    b"null": "a JSON null, not an object",
    b'{"collector_id": "c1"}': "no 'pairs'",
    b'{"collector_id": "c1", "pairs": [{"inst_id": "A"}], "writer": {}}': "pairs[0] has no 'state'",
    b'{"collector_id": "c1", "pairs": "A", "writer": {}}': "'pairs' is not a list",
}


def test_status_reports_an_endpoint_answering_something_else_without_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.json", ["BTC-USDT"])
    with own_database() as (_, db):
        url = db.url.render_as_string(hide_password=False)
        for body, why in _NOT_A_STATUS.items():
            impostor = _Impostor(body)
            try:
                where = f"http://127.0.0.1:{impostor.port}/status"
                code, out, err = _status_cli(url, config, "--endpoint", str(impostor.port))
                json_code, json_out, json_err = _status_cli(
                    url, config, "--endpoint", str(impostor.port), "--json"
                )
            finally:
                impostor.close()
            expected = f"{where} answered JSON that is not a collector's status ({why})"
            assert (code, json_code) == (0, 0), (body, err, json_err)
            assert "Traceback" not in err + json_err, (body, err, json_err)
            assert out.splitlines()[0] == expected, (body, out)
            assert json.loads(json_out)["collectors"] == [
                {"source": where, "status": None, "error": expected}
            ]


def test_status_on_an_empty_or_old_database_says_to_upgrade_and_exits_1(tmp_path: Path) -> None:
    from collectors.storage.migrate import upgrade

    config = write_config(tmp_path / "c.json", ["BTC-USDT"])
    with own_database() as (_, db):
        url = db.url.render_as_string(hide_password=False)
        with db.begin() as conn:  # back to nothing: an empty database
            from sqlalchemy import text

            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        empty = _status_cli(url, config)
        upgrade(db, "0001")
        old = _status_cli(url, config)
    shown = url.split("://", 1)[1]
    assert empty[0] == 1 and "Traceback" not in empty[2], empty
    assert f"{shown} is not migrated (has no schema): run `okx-collector db upgrade` first" in empty[2]
    assert old[0] == 1 and "Traceback" not in old[2], old
    assert "is not migrated (is at revision 0001, not " in old[2] and "okx-collector db upgrade" in old[2]


def test_the_endpoint_url_brackets_ipv6_and_dials_loopback_for_a_wildcard_bind() -> None:
    """``ops.metrics_host`` is where the collector binds; status dials it: ``::1`` needs brackets in a URL, and a
    wildcard bind (``0.0.0.0``, ``::``) is reached on loopback."""
    from flows.cli_status import status_url

    assert status_url("127.0.0.1", 9464) == "http://127.0.0.1:9464/status"
    assert status_url("::1", 9464) == "http://[::1]:9464/status"
    assert status_url("0.0.0.0", 9464) == "http://127.0.0.1:9464/status"
    assert status_url("::", 9464) == "http://[::1]:9464/status"
    assert status_url("collector.local", 9464) == "http://collector.local:9464/status"


def test_status_reads_an_ipv6_endpoint(tmp_path: Path) -> None:
    import http.server
    import socket
    import threading

    class V6(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    body = json.dumps(
        {"collector_id": "c6", "pairs": [], "writer": {"lag_ms": 0, "pending_rows": 0, "spilled_rows": 0,
         "written_rows": 0, "dead_rows": 0, "healthy": True}}
    ).encode()  # fmt: skip

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """quiet"""

    try:
        server = V6(("::1", 0), Handler)
    except OSError as exc:
        import pytest

        pytest.skip(f"no IPv6 loopback: {exc}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = write_config(
        tmp_path / "c.json",
        ["BTC-USDT"],
        ops={"metrics_port": server.server_address[1], "metrics_host": "::1"},
    )
    try:
        with own_database() as (_, db):
            code, out, err = _status_cli(db.url.render_as_string(hide_password=False), config, "--json")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, err
    (collector,) = json.loads(out)["collectors"]
    assert collector["source"] == f"http://[::1]:{server.server_address[1]}/status"
    assert collector["error"] is None and collector["status"]["collector_id"] == "c6"
