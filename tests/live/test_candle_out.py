"""CandleOut keeps the newest update per candle and builds a candle only for the row it writes."""

from __future__ import annotations

from collectors.candles import CandleEngine, CandleUpdated
from tests.builders import BTC, MINUTE, MONDAY_MS, grid_trade


def test_superseded_updates_are_never_built_and_the_written_rows_are_the_newest_state() -> None:
    from collectors.live.candle_out import CandleOut

    engine = CandleEngine(exchange="okx", inst_id=BTC.inst_id)
    out = CandleOut(update_interval_ms=1_000)
    start = MONDAY_MS + 5 * MINUTE
    updates: list[CandleUpdated] = []
    written = []
    for frame in range(5):  # five frames of ten trades within one second: one row per candle, the last state
        trades = [
            grid_trade(BTC, frame * 10 + i + 1, start + frame * 100 + i, 100 + i, 1, True) for i in range(10)
        ]
        events = engine.on_trades(trades)
        updates += [e for e in events if isinstance(e, CandleUpdated)]
        written += out.take(events, now_ms=0 if frame == 0 else 500)
    # the first frame's rows are written at once (never written before); later frames only replace the pending state
    assert len(written) == 6 and all(c.trade_count == 10 for c in written)
    newest = out.flush()
    assert sorted((c.timeframe, c.trade_count) for c in newest) == sorted(
        (tf, 50) for tf in ("1m", "5m", "15m", "1h", "4h", "1d")
    )
    superseded = updates[6:-6]  # frames 2-4 before the last: replaced in CandleOut before anyone read them
    assert len(superseded) == 18 and all(e._candle is None for e in superseded)
