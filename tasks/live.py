"""Adapters of the ``live-collection`` flow: the collectors of issue 9 narrowed to a run's parameters.

Nothing here is a ``@task``: the live path runs for hours and handles thousands of frames a second, and a task
per message would cost milliseconds and kilobytes each (docs/operations.md). The flow calls
:func:`collect_live`, which is :func:`collectors.live.app.run_collectors` on the settings' database and
endpoints; :class:`MinuteSummary` turns the collectors' status reports into one log record per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.config import CollectorsConfig, load_config, parse_config
from collectors.errors import ConfigError
from collectors.live.app import Endpoints, LiveOptions, RunResult, process_limiter, run_collectors
from collectors.live.health import PairHealth
from collectors.ops.options import with_settings
from collectors.settings import Settings
from collectors.storage.engine import make_engine
from collectors.storage.migrate import require_current_schema
from tasks.rest_budget import ensure_budget_limit, rest_budget

__all__ = ["MinuteSummary", "collect_live", "narrow_config", "result_rows"]

_EXCHANGE = "okx"


def narrow_config(
    config: CollectorsConfig, *, pairs: Sequence[str] | None, channels: Sequence[str] | None
) -> CollectorsConfig:
    """The config's ``okx`` entry cut to ``pairs`` (None: all configured), every kept pair on ``channels``
    (None: each pair's configured channels). Raises :class:`ConfigError` for a pair the config lacks or a
    channel the exchange does not serve (the config's own validation names it)."""
    if _EXCHANGE not in config.exchanges:
        raise ConfigError(f"the config has no {_EXCHANGE!r} exchange entry")
    entry = config.exchanges[_EXCHANGE]
    known = [p.inst_id for p in entry.pairs]
    if pairs is not None:
        if not pairs:
            raise ConfigError("pairs: an empty list collects nothing; leave it out for every configured pair")
        unknown = sorted(set(pairs) - set(known))
        if unknown:
            raise ConfigError(
                f"pairs: {', '.join(unknown)} not in the config (configured: {', '.join(known)})"
            )
    data = config.model_dump(mode="json")
    kept = [p for p in data["exchanges"][_EXCHANGE]["pairs"] if pairs is None or p["inst_id"] in pairs]
    if channels is not None:
        if not channels:
            raise ConfigError(
                "channels: an empty list collects nothing; leave it out for the configured ones"
            )
        data["exchanges"][_EXCHANGE]["channels"] = list(channels)
        kept = [{**p, "channels": None} for p in kept]
    data["exchanges"] = {_EXCHANGE: {**data["exchanges"][_EXCHANGE], "pairs": kept}}
    return parse_config(data, source="live-collection parameters")


@dataclass(slots=True)
class MinuteSummary:
    """Status reports in, one summary record per ``interval_s`` out (never a line per frame).

    ``monotonic_s`` is the clock; ``emit`` gets the text (the flow passes its run logger's ``info``).
    """

    emit: Callable[[str], None]
    monotonic_s: Callable[[], float]
    interval_s: float = 60.0
    latest: list[PairHealth] = field(default_factory=list)
    _since_s: float | None = None
    _trades_then: int = 0
    _reconnects_then: int = 0

    def __call__(self, health: list[PairHealth]) -> None:
        self.latest = health
        now = self.monotonic_s()
        if self._since_s is None:
            self._since_s = now
            return
        if now - self._since_s >= self.interval_s:
            self.emit(self.line(health, now - self._since_s))
            self._since_s = now

    def line(self, health: Sequence[PairHealth], elapsed_s: float) -> str:
        """``9 pairs (live 8, catching_up 1); +1234 trades in 60 s (20.6/s); ...`` (and resets the deltas)."""
        trades = sum(h.trades_stored for h in health)
        reconnects = sum(h.reconnects for h in health)
        states: dict[str, int] = {}
        for h in health:
            states[h.state] = states.get(h.state, 0) + 1
        new_trades, self._trades_then = trades - self._trades_then, trades
        new_reconnects, self._reconnects_then = reconnects - self._reconnects_then, reconnects
        shown_states = ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
        lags = [h.writer_lag_ms for h in health if h.writer_lag_ms is not None]
        lag = "-" if not lags else f"{max(lags) / 1000:.1f} s"
        return (
            f"{len(health)} pairs ({shown_states}); +{new_trades} trades in {elapsed_s:.0f} s "
            f"({new_trades / elapsed_s if elapsed_s > 0 else 0.0:.1f}/s), {trades} this run; "
            f"gaps open {sum(h.gaps_open for h in health)}, filled {sum(h.gaps_filled for h in health)}, "
            f"unrecoverable {sum(h.gaps_unrecoverable for h in health)}; "
            f"+{new_reconnects} reconnects; rejected {sum(h.rejected for h in health)}; writer lag {lag}"
        )


async def collect_live(
    *,
    settings: Settings,
    pairs: Sequence[str] | None,
    channels: Sequence[str] | None,
    max_runtime_s: float | None,
    stop: asyncio.Event,
    on_status: Callable[[list[PairHealth]], None],
    options: LiveOptions | None = None,
    collector_id: str | None = None,
    budget_limit: str | None = None,
) -> RunResult:
    """Run the configured collectors (narrowed) into the settings' database until ``stop``, ``max_runtime_s``
    or cancellation; every buffer is flushed and the coverage recorded before this returns or re-raises.

    ``budget_limit``: the Prefect global concurrency limit of the processes sharing this IP's OKX REST budget
    (``tasks.rest_budget``); the run's limiter takes ``1 / members`` of OKX's quotas, and holds a slot only
    while it sends REST requests (on demand). None: the whole budget (the only process on its IP)."""
    loaded = with_settings(load_config(settings.collector_config), settings)  # COLLECTOR_METRICS_PORT
    config = narrow_config(loaded, pairs=pairs, channels=channels)
    engine = make_engine(settings.database_url, create=False)
    try:
        shown = settings.masked()["DATABASE_URL"]
        await asyncio.to_thread(require_current_schema, engine, shown_url=shown)
        limiter = process_limiter()
        async with contextlib.AsyncExitStack() as stack:
            if budget_limit is not None:
                await ensure_budget_limit(budget_limit)
                # a member only while it sends REST requests: an idle live run takes no share from a backfill
                await stack.enter_async_context(rest_budget(limiter, name=budget_limit, on_demand=True))
            return await run_collectors(
                config=config,
                db=engine,
                endpoints=Endpoints.from_settings(settings),
                duration_s=max_runtime_s,
                options=options,
                collector_id=collector_id,
                on_status=on_status,
                stop=stop,
                limiter=limiter,
            )
    finally:
        engine.dispose()


def result_rows(health: Sequence[PairHealth]) -> list[Mapping[str, Any]]:
    """One row per pair for the run's table artifact."""
    return [
        {
            "pair": h.inst_id,
            "state": h.state,
            "trades": h.trades_stored,
            "from_rest": h.rest_trades,
            "duplicates_dropped": h.duplicates,
            "gaps_found": h.gaps_found,
            "gaps_filled": h.gaps_filled,
            "gaps_unrecoverable": h.gaps_unrecoverable,
            "rejected": h.rejected,
            "reconnects": h.reconnects,
        }
        for h in health
    ]
