"""The OKX WebSocket frames of tests/fixtures/okx, as received text (read once per test session)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okx"
RECV_2026_MS = 1_786_613_175_500  # a receive time near the 2026 recording
RECV_2022_MS = 1_652_459_225_500  # the 2022 recording's first second


def compact(frame: object) -> str:
    """A frame as OKX sends it: compact JSON, key order kept."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


@cache
def recorded_2026() -> tuple[str, ...]:
    """Every server frame of the 2026 ccxt recording (acks, tickers, candle1m, trades, books5)."""
    lines = (FIXTURES / "okx_ws_recorded_messages.jsonl").read_text().splitlines()
    return tuple(compact(m) for line in lines for m in json.loads(line)["messages"])


@cache
def recorded_2022() -> tuple[str, ...]:
    """Every server frame of the 2022 cryptofeed recording, verbatim (acks, tickers, trades, books)."""
    frames = []
    for line in (FIXTURES / "cryptofeed_OKX.ws.1.0").read_text().splitlines():
        if " <- " in line or ": {" not in line:
            continue  # our requests and the connect line
        frames.append(line.split(": ", 1)[1])
    return tuple(frames)


@cache
def doc_examples() -> tuple[str, ...]:
    """OKX docs example pushes (ws_*.json, re-compacted) and the trades-all lines."""
    texts = [compact(json.loads(p.read_text())) for p in sorted(FIXTURES.glob("ws_*.json"))]
    texts += (FIXTURES / "ws_trades_all.jsonl").read_text().splitlines()
    return tuple(texts)


def all_frames() -> tuple[str, ...]:
    return recorded_2026() + recorded_2022() + doc_examples()
