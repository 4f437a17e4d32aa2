"""Text that came from the wire (an exchange's error message, a channel name, an endpoint's document) is shown by
``okx-collector status`` and ``collect``'s summary with its control characters escaped: it cannot clear the
terminal, move the cursor or forge a line."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from pathlib import Path

import pytest

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


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Something listening where a collector's endpoint should be, answering with control characters."""

    def do_GET(self) -> None:
        if self.path == "/status":
            status, body = 200, snapshot_json(snapshot(pair("BTC-USDT", "live")))
            body["collector_id"] = "c\x1b]0;owned\x07\ud800"
            data = json.dumps(body).encode()
        else:
            status, data = 500, "boom \x1b[2J\x9b".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_status_escapes_the_collector_id_and_an_error_answer_of_an_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from collectors.storage.engine import make_engine
    from collectors.storage.migrate import upgrade
    from flows import cli_status
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert main(["status", "--database-url", url, "--endpoint", f"127.0.0.1:{port}"]) == 0
        out = capsys.readouterr().out
        _no_controls(out)
        assert f"collector c\\u001b]0;owned\\u0007\\ud800 (http://127.0.0.1:{port}/status)" in out
        # an endpoint answering 500 (the /status path refused): its body shown escaped
        monkeypatch.setattr(cli_status, "status_url", lambda host, p: f"http://{host}:{p}/other")
        assert main(["status", "--database-url", url, "--endpoint", f"127.0.0.1:{port}"]) == 0
        out = capsys.readouterr().out
        _no_controls(out)
        assert "answered 500: boom \\u001b[2J\\u009b" in out
    finally:
        server.shutdown()
        server.server_close()


def test_a_commands_error_text_on_stderr_is_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from flows.cli import main

    path = tmp_path / "x\x1b[31m" / "db.sqlite"
    assert main(["status", "--database-url", f"sqlite:///{path}"]) == 1
    err = capsys.readouterr().err
    _no_controls(err)
    assert "x\\u001b[31m" in err
