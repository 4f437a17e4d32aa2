"""Text that came from the wire (an exchange's error message, a channel name, an endpoint's document) is shown by
``okx-collector status`` and ``collect``'s summary with its control characters escaped: it cannot clear the
terminal, move the cursor or forge a line."""

from __future__ import annotations

import dataclasses

from collectors.live.status import status_line, summary_table
from collectors.ops.snapshot import snapshot_json
from flows.cli_status import live_table
from tests.ops.test_server import pair, snapshot

HOSTILE = "60018 \x1b[2J\x1b[1;1Hwiped\rBTC-USDT live\x07\x9b31m\n\x00"


def _no_controls(text: str) -> None:
    controls = {c for c in text if not c.isprintable() and c != "\n"}
    assert controls == set(), sorted(map(hex, map(ord, controls)))


def test_status_escapes_control_characters_of_an_endpoints_document() -> None:
    hostile = pair("ETH-USDT", "failed", error=HOSTILE)
    hostile = dataclasses.replace(
        hostile, channels=(dataclasses.replace(hostile.channels[0], channel="trades\x1b[31m-all"),)
    )
    text = live_table(snapshot_json(snapshot(pair("BTC-USDT", "live"), hostile)))
    _no_controls(text)
    assert (
        "ETH-USDT: failed (60018 \\u001b[2J\\u001b[1;1Hwiped\\rBTC-USDT live\\u0007\\u009b31m\\n\\u0000)"
        in text
    )
    assert "trades\\u001b[31m-all" in text
    assert text.count("\n") == 6  # header, rule, two rows, the writer's line, two pair lines


def test_collects_summary_and_status_lines_escape_an_error_text() -> None:
    health = [pair("BTC-USDT", "live"), pair("ETH-USDT", "failed", error=HOSTILE)]
    table = summary_table(health)
    _no_controls(table)
    assert table.splitlines()[-1] == (
        "ETH-USDT failed: 60018 \\u001b[2J\\u001b[1;1Hwiped\\rBTC-USDT live\\u0007\\u009b31m\\n\\u0000"
    )
    for h in health:
        line = status_line(h)
        _no_controls(line)
        assert "\n" not in line
