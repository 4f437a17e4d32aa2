"""Build the live collectors of one exchange entry from the config, the settings and the injected I/O.

Channels of the config map to OKX channels here (``trades`` -> ``trades-all`` or ``trades`` by
``live.trades_mode``, ``candles`` -> ``candle1m``, ``full_depth_book`` adds ``books``); the endpoint of each comes
from ``protocol.endpoint_for``. Each pair resumes from its last stored trade, and its candle engine is restarted
as docs/candles.md says: seeded with the close before the coarsest open bucket and fed the stored trades since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy import Engine

from collectors.candles import CandleEngine, EmptyPolicy, EngineConfig
from collectors.config import CollectorsConfig
from collectors.exchanges.okx.protocol import ChannelArg, endpoint_for
from collectors.live.archive import Archive
from collectors.live.core import CoreSettings, PairCore
from collectors.live.resume import uncovered_from
from collectors.live.runner import (
    CollectorManager,
    EventSource,
    PairCollector,
    RecordSink,
    Subscription,
    TradeHistory,
)
from collectors.model import Timeframe, Trade
from collectors.storage import reads

__all__ = ["build_manager", "okx_channels"]

_EXCHANGE: Final = "okx"
HOLE_LOOKBACK_MS: Final = (
    24 * 3_600_000
)  # stored ids checked for holes a killed session left, before the last
_MAX_REPLAY_TRADES: Final = 2_000_000  # stored trades fed to a restarted engine (the coarsest open bucket)


def okx_channels(config: CollectorsConfig, channels: Sequence[str]) -> list[str]:
    """OKX channel names for the config's channel names of one pair."""
    live = config.live
    names = {
        "trades": "trades" if live.trades_mode == "aggregated" else "trades-all",
        "books5": "books5",
        "tickers": "tickers",
        "candles": "candle1m",
    }
    out = [names[c] for c in channels]
    if live.full_depth_book:
        out.append("books")
    return out


async def _engine(
    config: CollectorsConfig,
    db: Engine,
    inst_id: str,
    timeframes: Sequence[str],
    last: Trade | None,
    holes: Sequence[tuple[int, int, int, int]],
) -> CandleEngine:
    engine = CandleEngine(
        exchange=_EXCHANGE,
        inst_id=inst_id,
        config=EngineConfig(
            timeframes=tuple(timeframes),
            allowed_lateness_ms=config.candles.allowed_lateness_ms,
            empty_policy=EmptyPolicy(config.candles.empty_intervals),
            emit_updates=False,  # the core reads open-candle updates on its tick (engine.updates())
        ),
    )
    if last is None:
        return engine
    coarsest = max((Timeframe.parse(t) for t in timeframes), key=lambda tf: tf.duration_ms)
    # from the coarsest open bucket, or earlier when a hole left by a killed session lies before it: the
    # engine must hold the candles its REST fill revises
    from_ms = coarsest.bucket_start_ms(min([last.ts_ms, *(h[2] for h in holes)]))
    close = await asyncio.to_thread(
        reads.close_before, db, exchange=_EXCHANGE, inst_id=inst_id, before_ms=from_ms
    )
    if close is not None:
        engine.seed_close(close, from_ms)
    stored = await asyncio.to_thread(
        reads.trades_from, db, exchange=_EXCHANGE, inst_id=inst_id, from_ms=from_ms, limit=_MAX_REPLAY_TRADES
    )
    engine.on_trades(stored)  # the stored candles already hold these: the events are not written again
    return engine


async def build_manager(
    *,
    config: CollectorsConfig,
    db: Engine,
    sink: RecordSink,
    history: TradeHistory,
    make_source: Callable[[str], EventSource],
    clock: Callable[[], int],
    collector_id: str,
    pairs: Sequence[str] | None = None,
    core_settings: CoreSettings | None = None,
    tick_s: float = 0.2,
) -> CollectorManager:
    """A manager for the ``okx`` entry of ``config`` (``pairs`` narrows it). ``make_source(endpoint)`` builds
    the session of ``"public"`` or ``"business"`` (an ``OkxWebSocket`` on the settings' URL)."""
    entry = config.exchanges[_EXCHANGE]
    live = config.live
    trade_channel = "trades" if live.trades_mode == "aggregated" else "trades-all"
    base = core_settings or CoreSettings()
    settings = CoreSettings(
        **{
            **{f: getattr(base, f) for f in base.__dataclass_fields__},
            "trades_channel": trade_channel,
            "book_interval_ms": live.book_snapshot_interval_ms,
            "full_depth_levels": live.full_depth_levels if live.full_depth_book else None,
        }
    )
    archive = Archive(
        collector_id=collector_id,
        exchange=_EXCHANGE,
        mode=live.raw_archive,
        trade_channels=frozenset({trade_channel}),
    )
    collectors: list[PairCollector] = []
    subscriptions: list[Subscription] = []
    for pair in entry.pairs:
        if pairs is not None and pair.inst_id not in pairs:
            continue
        last = await asyncio.to_thread(reads.last_trade, db, exchange=_EXCHANGE, inst_id=pair.inst_id)
        holes: list[tuple[int, int, int, int]] = []
        if last is not None and trade_channel == "trades-all":  # aggregated ids step by count: no such check
            holes = await asyncio.to_thread(
                reads.stored_holes,
                db,
                exchange=_EXCHANGE,
                inst_id=pair.inst_id,
                from_ms=last.ts_ms - HOLE_LOOKBACK_MS,
            )
        uncovered = None
        if last is not None and trade_channel == "trades-all":  # the span stored_holes checked
            uncovered = await asyncio.to_thread(
                uncovered_from,
                db,
                exchange=_EXCHANGE,
                inst_id=pair.inst_id,
                since_ms=last.ts_ms - HOLE_LOOKBACK_MS,
            )
        engine = await _engine(config, db, pair.inst_id, entry.timeframes_for(pair), last, holes)
        core = PairCore(
            exchange=_EXCHANGE,
            inst_id=pair.inst_id,
            engine=engine,
            archive=archive,
            settings=settings,
            now_ms=clock(),
            resume=last,
            resume_holes=holes,
            resume_uncovered_ms=uncovered,
        )
        collectors.append(PairCollector(core=core, history=history, clock=clock))
        for channel in okx_channels(config, entry.channels_for(pair)):
            arg = ChannelArg(channel=channel, inst_id=pair.inst_id)
            subscriptions.append(Subscription(source=endpoint_for(channel).value, arg=arg))
    names = sorted({s.source for s in subscriptions})
    return CollectorManager(
        pairs=collectors,
        sources=[make_source(name) for name in names],
        subscriptions=subscriptions,
        archive=archive,
        sink=sink,
        clock=clock,
        tick_s=tick_s,
    )
