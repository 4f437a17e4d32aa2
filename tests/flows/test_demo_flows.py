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
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from collectors.errors import CollectorError
from collectors.live.demo import Hole, cut_hole
from collectors.quality.findings import iso
from collectors.quality.plan import parse_instant
from collectors.storage import reads
from collectors.storage.engine import make_engine
from collectors.storage.schema import TradeRow
from flows.demo import QualityDemo, Validation, problems

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
        if not line.strip() or line.startswith(" "):  # the end, or a note under the table
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
    assert any(line.startswith("validate before the backfill") and ": Failed, " in line for line in lines)
    found = _table(lines, "validate before the backfill")
    (gap,) = [f for f in found if f["kind"] == "trade_gap"]
    # in a minute the collector watched whole (rare in 62 s) the hole's candles differ too, nothing else
    assert all((f["pair"], f["kind"]) == (pair, "candle_mismatch") for f in found if f is not gap), found
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
    # the re-aggregation: nothing new, at most the flags of the hole's candle (closed, complete) change
    (redone,) = _table(lines, f"reaggregate {pair} 1m over the hole")
    assert redone["pair"] == pair and redone["new"] == "0" and redone["unbacked"] == "0"
    minutes = (hole_ms[0] // 60_000 * 60_000, (hole_ms[1] // 60_000 + 1) * 60_000)
    assert int(redone["trades"]) == _stored_between(db, pair, *minutes) >= count
    if redone["candles"] == "0":  # the hole's minute had not ended: nothing compared, and the demo says so
        assert any(
            line.startswith("  (no candle compared: the hole's minute had not ended") for line in lines
        )
    changes = _table(lines, "changed candles") if int(redone["changed"]) else []
    assert len(changes) == int(redone["changed"]) == int(redone["written"])
    assert all(c["kind"] == "changed" and c["timeframe"] == "1m" for c in changes), changes
    assert all(set(c["fields"].split(",")) <= {"is_closed", "is_complete"} for c in changes), changes
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


# the demo's pieces without the subprocess: the hole on both databases, and the verdict on the flow runs


sys.path.insert(0, str(Path(__file__).parents[1] / "quality"))
from quality_helpers import DAY_START, MINUTE, store, tape  # noqa: E402


@pytest.mark.parametrize(
    ("end_s", "lo_s", "hi_s"), [(140, 60, 120), (100, 60, 100)], ids=["a-whole-minute", "after-the-boundary"]
)
async def test_cut_hole_deletes_a_contiguous_span_of_a_minute_after_the_first(
    engine: Engine, end_s: int, lo_s: int, hi_s: int
) -> None:
    trades = tape(start_ms=DAY_START + 20_000, end_ms=DAY_START + end_s * 1000, count=300)
    await store(engine, trades)
    hole = cut_hole(engine, "BTC-USDT")
    later = [t for t in trades if DAY_START + lo_s * 1000 <= t.ts_ms < DAY_START + hi_s * 1000]
    cut = later[int(len(later) * 0.4) : int(len(later) * 0.6)]
    assert (hole.first_id, hole.last_id, hole.trades) == (cut[0].trade_id, cut[-1].trade_id, len(cut))
    assert (hole.start_ms, hole.end_ms) == (cut[0].ts_ms, cut[-1].ts_ms)
    left = [row[0] for row in reads.trade_values(engine, exchange="okx", inst_id="BTC-USDT")]
    assert left == [t.trade_id for t in trades if not hole.first_id <= t.trade_id <= hole.last_id]


async def test_cut_hole_inside_one_minute_takes_the_middle_and_refuses_a_tape_too_short(
    engine: Engine,
) -> None:
    trades = tape(start_ms=DAY_START + 1_000, end_ms=DAY_START + 50_000, count=10)
    await store(engine, trades)
    hole = cut_hole(engine, "BTC-USDT")
    assert (hole.first_id, hole.last_id, hole.trades) == (trades[4].trade_id, trades[5].trade_id, 2)
    await store(engine, tape(inst_id="ETH-USDT", count=2))
    with pytest.raises(CollectorError, match="ETH-USDT has 2 stored trades, too few"):
        cut_hole(engine, "ETH-USDT")


def _quality(changes: list[dict[str, Any]], hole_at: int = DAY_START + 61_000) -> QualityDemo:
    hole = Hole(
        inst_id="BTC-USDT", first_id=10, last_id=14, trades=5, start_ms=hole_at, end_ms=hole_at + 4_000
    )
    gap = {"pair": "BTC-USDT", "kind": "trade_gap", "timeframe": None, "field": None, "start_ms": 0, "end_ms": 1,
           "detail": "trade ids 10-14 missing (5)"}  # fmt: skip
    row = {"pair": "BTC-USDT", "holes": 1, "ids": 5, "trades": 5, "requests": 1, "unrecoverable": 0}
    return QualityDemo(
        hole=hole, start_ms=DAY_START + 20_000, end_ms=DAY_START + 2 * MINUTE,
        before=Validation(state="Failed", run_id="a", findings=[gap]),
        backfill_state="Completed", backfill=[row, {**row, "pair": "ETH-USDT", "holes": 0, "ids": 0, "trades": 0}],
        after=Validation(state="Completed", run_id="b", findings=[]),
        reaggregate_state="Completed", reaggregate={"BTC-USDT": {"changed": len(changes)}}, changes=changes,
    )  # fmt: skip


def test_problems_accept_only_the_flags_of_the_holes_candle() -> None:
    minute = iso(DAY_START + MINUTE)
    closed = {
        "pair": "BTC-USDT",
        "timeframe": "1m",
        "open_time": minute,
        "kind": "changed",
        "fields": "is_closed",
    }
    complete = {**closed, "fields": "is_closed,is_complete"}
    assert problems(_quality([])) == [] and problems(_quality([closed, complete])) == []
    volume = {**closed, "fields": "is_closed,volume"}
    elsewhere = {**closed, "open_time": iso(DAY_START)}
    first = {**complete, "open_time": iso(DAY_START)}  # the minute the collection began in: partial
    assert problems(_quality([{**closed, "open_time": iso(DAY_START)}], hole_at=DAY_START + 30_000)) == []
    assert problems(_quality([first], hole_at=DAY_START + 30_000)) != []
    for change in (volume, elsewhere):
        assert problems(_quality([change])) == [
            f"reaggregate changed more than the flags of the hole's candle: {[change]}"
        ]
