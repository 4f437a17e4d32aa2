"""Frames for the live-collector tests, built from the real recorded OKX frames of tests/fixtures/okx.

A trades-all push is the real BTC-USDT row of ``ws_trades_all.jsonl`` with its id, time (and optionally price or
side) moved; books5 frames are the 2026 recording's own.
"""

from __future__ import annotations

import json
from typing import Any

from collectors.candles import CandleEngine, EngineConfig
from collectors.exchanges.okx.events import Event
from collectors.exchanges.okx.parse import parse_frame
from collectors.live.archive import Archive
from collectors.live.core import CoreSettings, PairCore
from collectors.model import Trade
from tests.builders import FIXTURES
from tests.exchanges.okx_frames import compact, recorded_2026

_REAL_ROW: dict[str, Any] = json.loads((FIXTURES / "ws_trades_all.jsonl").read_text().splitlines()[0])
T0 = 1_786_613_160_000  # a minute boundary near the 2026 recording


def trades_all_text(trade_id: int, ts_ms: int, **fields: str) -> str:
    frame = json.loads(json.dumps(_REAL_ROW))
    frame["data"][0].update(tradeId=str(trade_id), ts=str(ts_ms), **fields)
    return compact(frame)


def push(text: str, recv_ms: int) -> tuple[Event, str]:
    return parse_frame(text, recv_ms=recv_ms), text


def real_trade(trade_id: int, ts_ms: int, recv_ms: int | None = None) -> Trade:
    """The trade the real row becomes with this id and time (what REST would return for it)."""
    event = parse_frame(trades_all_text(trade_id, ts_ms), recv_ms=recv_ms or ts_ms)
    trade = event.trades[0]  # type: ignore[union-attr]
    return trade


def books5_texts(inst_id: str) -> list[str]:
    return [
        t
        for t in recorded_2026()
        if '"channel":"books5"' in t and f'"instId":"{inst_id}"' in t and "data" in t
    ]


def make_core(now_ms: int, *, resume: Trade | None = None, raw: str = "all", **settings: Any) -> PairCore:
    engine = CandleEngine(exchange="okx", inst_id="BTC-USDT", config=EngineConfig(timeframes=("1m",)))
    archive = Archive(collector_id="c1", exchange="okx", mode=raw, trade_channels=frozenset({"trades-all"}))  # type: ignore[arg-type]
    return PairCore(
        exchange="okx",
        inst_id="BTC-USDT",
        engine=engine,
        archive=archive,
        settings=CoreSettings(**settings),
        now_ms=now_ms,
        resume=resume,
    )
