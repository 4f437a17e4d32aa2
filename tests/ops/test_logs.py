"""Logs: one line per event worth a human's attention, in the chosen format, never per message; secrets masked.

The formats are checked on records with values; then ``okx-collector --log-format json collect`` runs for some
seconds at a few hundred messages a second against the simulator through a drop: every stderr line is one JSON
object, and there are only a handful of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import pytest

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


# An OKX passphrase is chosen by the user: quotes, backslashes, '+', '/', '%', spaces and non-ASCII happen.
AWKWARD = 'pa"ss\\w+rd/%20 é'


def test_a_secret_with_quotes_and_backslashes_is_masked_in_json_and_kv_after_their_escaping() -> None:
    """json and kv escape '"' and '\\': the escaped secret must not be left on the line."""
    for name in ("text", "json", "kv"):
        line = formatter(name, [AWKWARD]).format(_record("login with %s failed", AWKWARD, exc=False))
        assert "pa" not in line.replace("parse", ""), (name, line)
        assert "***" in line, (name, line)
        if name == "json":
            assert json.loads(line)["msg"] == "login with *** failed"


def test_a_secret_url_encoded_or_inside_a_repr_is_masked() -> None:
    from urllib.parse import quote, quote_plus

    for shown in (quote(AWKWARD, safe=""), quote_plus(AWKWARD), quote(AWKWARD), repr(AWKWARD)):
        for name in ("text", "json", "kv"):
            line = formatter(name, [AWKWARD]).format(_record("GET /login?p=%s", shown))
            assert "***" in line and "ss" not in line.split("p=", 1)[1], (name, shown, line)


def test_a_secret_in_an_exception_repr_inside_a_traceback_is_masked() -> None:
    try:
        raise RuntimeError({"passphrase": AWKWARD})  # the dict's repr escapes the backslash
    except RuntimeError as error:
        exc_info = (type(error), error, error.__traceback__)
    record = logging.LogRecord("collectors.x", logging.ERROR, __file__, 1, "login failed", (), exc_info)
    for name in ("text", "json", "kv"):
        line = formatter(name, [AWKWARD]).format(record)
        assert "RuntimeError: {'passphrase': '***'}" in (
            json.loads(line)["exc"] if name == "json" else line
        ), (
            name,
            line,
        )


def test_a_json_line_stays_one_valid_object_for_newlines_quotes_and_a_traceback() -> None:
    record = _record('a "quoted"\nsecond line\r\n\ttab \x00 nul', exc=True)
    line = formatter("json").format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["msg"] == 'a "quoted"\nsecond line\r\n\ttab \x00 nul'
    assert body["exc"].startswith("Traceback") and body["exc"].endswith(f"ValueError: boom with {SECRET}")


def test_kv_values_with_equals_quotes_or_empty_are_quoted_and_parse_back() -> None:
    import shlex

    line = formatter("kv").format(_record('k=v "q" \\ end'))
    assert "\n" not in line
    fields = dict(part.split("=", 1) for part in shlex.split(line, posix=True))
    assert fields["msg"] == 'k=v "q" \\ end', line
    empty = formatter("kv").format(_record(""))
    assert empty.endswith('msg=""'), empty


def test_stack_info_is_kept_on_the_events_line() -> None:
    record = _record("where am I")
    record.stack_info = "Stack (most recent call last):\n  File x, line 1"
    assert json.loads(formatter("json").format(record))["stack"] == record.stack_info
    assert formatter("text").format(record).endswith("\n" + record.stack_info)


def _stores_trades(db_url: str) -> bool:
    """Whether the collector writing ``db_url`` (SQLite) has stored a trade of every pair yet."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1)) as conn:
            found = {row[0] for row in conn.execute("SELECT DISTINCT inst_id FROM trades")}
    except sqlite3.Error:  # not created yet, or locked by the writer
        return False
    return set(PAIRS) <= found


async def test_a_reconnect_storm_of_20_seconds_logs_a_bounded_number_of_lines(tmp_path: Path) -> None:
    """The simulator resets every new connection (WebSocket and REST) for 20 s after a drop: the collector
    retries with backoff the whole time; its log says so in a bounded number of lines, not one per attempt
    storm-long, and every line is one JSON object (12 lines seen: 6 connect retries with a growing backoff,
    REST failing and answering again per pair, the stop)."""
    import asyncio

    db_url = f"sqlite:///{tmp_path / 'storm.db'}"
    config = write_config(tmp_path / "collectors.json", PAIRS)
    async with SimulatorServer(config=SimulatorConfig(seed=7, pairs=list(PAIRS), **SIM)) as sim:
        upgraded = await collect_cli(sim, "db", "upgrade", database_url=db_url, config=config)
        assert upgraded[0] == 0, upgraded

        async def storm_later() -> None:
            # once the collector stores trades (up to 60 s; a fixed 3 s could fire the storm before a slow
            # child had even connected), and not before 3 s as before
            await asyncio.sleep(3.0)
            for _ in range(600):
                if await asyncio.to_thread(_stores_trades, db_url):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the collector stored no trade of some pair within 60 s")
            await add_fault(sim, {"kind": "refuse", "seconds": 20})
            await add_fault(sim, {"kind": "drop"})

        storm = asyncio.create_task(storm_later())
        code, _, err = await collect_cli(
            sim, "--log-format", "json", "collect", "--duration", "30", database_url=db_url, config=config
        )
        await storm
    assert code == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    storm_lines = len(records)
    assert 2 <= storm_lines <= 30, "\n".join(r["msg"] for r in records)


def test_kv_escapes_control_characters_even_without_spaces() -> None:
    """A message from the wire (an error text naming a frame) may carry ESC or NUL: raw, it would drive the
    operator's terminal or cut the line for a parser."""
    line = formatter("kv").format(_record("bad\x1b[31mframe\x00end\x7f"))
    assert line.endswith('msg="bad\\u001b[31mframe\\u0000end\\u007f"'), line
    assert all(c.isprintable() for c in line)


def test_json_and_text_escape_terminal_controls_and_json_still_parses_back() -> None:
    record = _record("bad\x1b[31mframe\x00end\x7f\x9b")
    line = formatter("json").format(record)
    assert all(c.isprintable() for c in line), line
    assert json.loads(line)["msg"] == "bad\x1b[31mframe\x00end\x7f\x9b"
    text = formatter("text").format(_record("bad\x1b[31mframe\nsecond\tline"))
    assert text.endswith("bad\\u001b[31mframe\nsecond\tline"), text


def test_a_call_with_arguments_not_matching_its_format_is_one_masked_line_not_a_logging_error(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``log.warning("login %d", secret)``: logging's own error path prints the arguments raw to stderr
    ("--- Logging error --- ... Arguments: ('<secret>',)"), past every format and the mask."""
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("json", stream=out, secrets=[AWKWARD])
        logging.getLogger("collectors.x").warning("login for %d failed", AWKWARD)
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    captured = capfd.readouterr()
    assert "Logging error" not in captured.err and "ss\\\\w" not in captured.err, captured.err
    (line,) = out.getvalue().splitlines()
    body = json.loads(line)
    assert body["level"] == "WARNING" and AWKWARD not in line and "ss\\\\w" not in line, line
    assert body["msg"] == (
        "login for %d failed (arguments not matching the format: TypeError: %d format: a real number is "
        "required, not str; arguments: ('***',))"
    ), body


def test_the_default_stream_is_stderr_as_it_is_at_each_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # a harness (pytest's capture) or a daemon swaps sys.stderr: a handler bound to the stderr of its setup time
    # wrote "--- Logging error --- ValueError: I/O operation on closed file" for every later record
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("text")
        first.close()
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        logging.getLogger("collectors.test").warning("after the swap")
        assert "Logging error" not in second.getvalue()
        assert [line for line in second.getvalue().splitlines() if "after the swap" in line] != []
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
