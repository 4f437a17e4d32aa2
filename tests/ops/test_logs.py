"""Logs: one line per event worth a human's attention, in the chosen format, never per message; secrets masked.

The formats are checked on records with values; then ``okx-collector --log-format json collect`` runs for some
seconds at a few hundred messages a second against the simulator through a drop: every stderr line is one JSON
object, and there are only a handful of them.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from collectors.logs import configure_logging, formatter
from okx_simulator import SimulatorConfig, SimulatorServer
from tests.live.sim_run import PAIRS, SIM, add_fault
from tests.ops.ops_helpers import collect_cli, write_config

SECRET = "s3cr3t-value"


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"boom with {SECRET}")
        except ValueError as error:
            exc_info = (type(error), error, error.__traceback__)
    record = logging.LogRecord("collectors.live.core", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.created, record.msecs = 1_764_000_000.25, 250.0
    return record


def test_json_is_one_object_a_line_with_utc_time_level_logger_and_message() -> None:
    line = formatter("json").format(_record("%s: trade ids %s unrecoverable", "BTC-USDT", "5-7"))
    assert json.loads(line) == {
        "ts": "2025-11-24T16:00:00.250Z", "level": "WARNING", "logger": "collectors.live.core",
        "msg": "BTC-USDT: trade ids 5-7 unrecoverable",
    }  # fmt: skip


def test_kv_quotes_values_with_spaces_and_keeps_a_traceback_on_the_line() -> None:
    line = formatter("kv").format(_record("lost %d rows", 3, exc=True))
    assert line.startswith(
        'ts=2025-11-24T16:00:00.250Z level=WARNING logger=collectors.live.core msg="lost 3 rows" exc="Traceback'
    ), line
    assert "\n" not in line


def test_text_is_the_readable_form() -> None:
    line = formatter("text").format(_record("stopping: %d rows", 4))
    assert line == "2025-11-24T16:00:00.250Z WARNING collectors.live.core: stopping: 4 rows"


def test_a_configured_secret_is_masked_in_the_message_the_arguments_and_the_traceback() -> None:
    for name in ("text", "json", "kv"):
        line = formatter(name, [SECRET]).format(_record(f"key {SECRET} and %s", SECRET, exc=True))
        assert SECRET not in line and line.count("***") == 3, (name, line)


def test_configure_logging_routes_every_logger_through_one_handler() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("json", stream=out, secrets=[SECRET])
        logging.getLogger("collectors.x").info("hello %s", SECRET)
        logging.getLogger("httpx").info("one line per request")  # quiet unless verbose
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    lines = out.getvalue().splitlines()
    assert [json.loads(x)["msg"] for x in lines] == ["hello ***"]


async def test_a_collector_at_hundreds_of_messages_a_second_logs_a_handful_of_lines(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'logs.db'}"
    config = write_config(tmp_path / "collectors.json", PAIRS)
    sim_config = SimulatorConfig(seed=7, pairs=list(PAIRS), **{**SIM, "trade_rate": 150.0})
    async with SimulatorServer(config=sim_config) as sim:
        upgraded = await collect_cli(sim, "db", "upgrade", database_url=db_url, config=config)
        assert upgraded[0] == 0, upgraded
        import asyncio

        async def drop_later() -> None:
            await asyncio.sleep(4.0)
            await add_fault(sim, {"kind": "drop"})

        dropper = asyncio.create_task(drop_later())
        code, out, err = await collect_cli(
            sim, "--log-format", "json", "collect", "--duration", "8", database_url=db_url, config=config
        )
        await dropper
    assert code == 0, err
    lines = err.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    summary = {row.split()[0]: row.split() for row in out.splitlines()[-3:] if row.strip()}
    trades = sum(int(summary[p][2]) for p in PAIRS)
    assert trades >= 8 * 150, out  # a few hundred trade messages a second went through
    assert 1 <= len(records) <= 25, (
        lines
    )  # connects, the drop and its reconnects, the stop: never per message
    assert {r["level"] for r in records} <= {"INFO", "WARNING"}, records
