"""``okx-collector demo`` as a user runs it (a subprocess, a fresh PREFECT_HOME, no PREFECT_API_URL): the live
collection through faults, then the hole it cuts reported by a validation, filled by a backfill, gone in the next
validation, and a re-aggregation, all as flow runs of Prefect's ephemeral mode; then ``prefect server start`` on
the same PREFECT_HOME serves those four runs and their artifacts, as the UI would show them.

It needs no ``prefect_harness``: the runs belong to the demo's own Prefect, which is the point of the test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from collectors.quality.plan import parse_instant
from collectors.storage.engine import make_engine
from collectors.storage.schema import TradeRow

REPO = Path(__file__).resolve().parents[2]
PAIRS = ("BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT", "TON-USDT", "ETH-USDC", "BTC-USDC", "UNI-USDT",
         "PEPE-USDT")  # fmt: skip
_PREFECT_ENV = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "PREFECT_LOGGING_LEVEL")


def _table(lines: list[str], title: str) -> list[dict[str, str]]:
    """The rows of the text table printed after the line starting with ``title`` (cells cut by the rule line)."""
    at = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
    header, rule = lines[at], lines[at + 1]
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    names = [header[a:b].strip() if i else header[: b + 1].strip() for i, (a, b) in enumerate(spans)]
    rows = []
    for line in lines[at + 2 :]:
        if not line.strip():
            break
        cells = [
            line[a : (spans[i + 1][0] if i + 1 < len(spans) else None)].strip()
            for i, (a, _) in enumerate(spans)
        ]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def _stored_between(db: Path, pair: str, start_ms: int, end_ms: int) -> int:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(
                TradeRow.inst_id == pair, TradeRow.ts >= start_ms, TradeRow.ts < end_ms
            )
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_run(tmp_path: Path) -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, str], Path]]:
    env = {k: v for k, v in os.environ.items() if k not in _PREFECT_ENV}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    # 62 s: the collection crosses a minute boundary, so the hole is cut after it (see collectors/live/demo.py)
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo", "--duration", "62", "--db", str(tmp_path / "demo.db")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=400,
    )  # fmt: skip
    yield done, env, tmp_path / "demo.db"


def test_demo_runs_validate_backfill_validate_reaggregate_as_flow_runs_the_ui_shows(
    demo_run: tuple[subprocess.CompletedProcess[str], dict[str, str], Path],
) -> None:
    done, env, db = demo_run
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # the collection: every pair's stored trades equal the simulator's tape (after the backfill)
    truth = {r["pair"]: r for r in _table(lines, "stored trades against the simulator's tape")}
    assert set(truth) == set(PAIRS)
    for row in truth.values():
        assert (row["missing"], row["duplicated"], row["wrong"]) == ("0", "0", "0"), row
        assert row["stored"] == row["truth"] and int(row["stored"]) > 0, row
    assert "disconnect" in done.stdout and "stall" in done.stdout and "malformed" in done.stdout
    (line,) = [line for line in lines if line.startswith("rejected_messages:")]
    stored_count, sent = (int(word.rstrip(";")) for word in line.split() if word.rstrip(";").isdigit())
    assert stored_count == sent > 0, line
    assert lines[-1] == "every pair: 0 missing, 0 duplicated, 0 wrong"

    cut = re.search(
        r"hole cut: (\d+) stored trades of (\S+) deleted \(ids (\d+)-(\d+), (\S+) \.\. (\S+)\)", done.stdout
    )
    assert cut is not None, done.stdout
    count, pair, first, last = int(cut[1]), cut[2], int(cut[3]), int(cut[4])
    hole_ms = (parse_instant(cut[5]), parse_instant(cut[6]))
    assert pair == "BTC-USDT" and count == last - first + 1 > 0
    # before: exactly the hole; after: nothing
    assert any(
        line.startswith("validate before the backfill") and "Failed, 1 findings" in line for line in lines
    )
    (gap,) = _table(lines, "validate before the backfill")
    assert (gap["pair"], gap["kind"], gap["detail"]) == (
        pair,
        "trade_gap",
        f"trade ids {first}-{last} missing ({count})",
    )
    assert "validate after the backfill: Completed, 0 findings" in lines
    # the backfill: one hole on the cut pair, its trades, nothing unrecoverable, no other pair touched
    (filled,) = _table(
        lines, "backfill (every open gap of the last hour): Completed, 1 of 9 pairs had a hole"
    )
    assert (filled["pair"], filled["holes"], filled["ids"], filled["trades"], filled["unrecoverable"]) == (
        pair, "1", str(count), str(count), "0"
    )  # fmt: skip
    # the re-aggregation: nothing new, at most the hole's candle the stopped collector left open is closed
    (redone,) = _table(lines, f"reaggregate {pair} 1m over the hole")
    assert redone["pair"] == pair and redone["new"] == "0" and redone["unbacked"] == "0"
    minutes = (hole_ms[0] // 60_000 * 60_000, (hole_ms[1] // 60_000 + 1) * 60_000)
    assert int(redone["trades"]) == _stored_between(db, pair, *minutes) >= count
    changes = _table(lines, "changed candles") if int(redone["changed"]) else []
    assert len(changes) == int(redone["changed"]) == int(redone["written"])
    assert all((c["kind"], c["fields"]) == ("changed", "is_closed") for c in changes), changes
    assert "prefect server start" in done.stdout and "http://127.0.0.1:4200" in done.stdout
    assert str(Path(env["PREFECT_HOME"]) / "prefect.db") in done.stdout
    _assert_the_server_shows_the_runs(env, pair)


def _assert_the_server_shows_the_runs(env: dict[str, str], pair: str) -> None:
    """``prefect server start`` with the demo's PREFECT_HOME reads the database the runs went to."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"},
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        with httpx.Client(base_url=api, timeout=10) as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "prefect server did not start"
                time.sleep(0.5)
            flows = {f["id"]: f["name"] for f in http.post("/flows/filter", json={}).json()}
            runs = http.post("/flow_runs/filter", json={"sort": "START_TIME_ASC"}).json()
            seen = [(flows[r["flow_id"]], r["state_type"]) for r in runs]
            assert seen == [
                ("validate", "FAILED"), ("backfill", "COMPLETED"), ("validate", "COMPLETED"), ("reaggregate", "COMPLETED")
            ]  # fmt: skip
            keys = {a["key"] for a in http.post("/artifacts/filter", json={}).json()}
            slug = pair.lower()
            assert {
                f"validation-{slug}",
                "backfill-summary",
                f"reaggregate-{slug}",
                "reaggregate-summary",
            } <= keys
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
