"""One reading of a running collector: every pair's health, candle revisions, the writer and the REST client.

:class:`Probe` holds references to the objects :func:`collectors.live.app.run_collectors` built and reads their
existing counters when asked (a scrape), never per message. It must be called on the collector's event loop
(the objects are not thread-safe); :mod:`collectors.ops.server` hops onto that loop for each request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from collectors.live.health import PairHealth
from collectors.live.runner import CollectorManager
from collectors.storage.writer_options import WriterStats

__all__ = ["Probe", "Snapshot", "snapshot_json"]


class _Writer(Protocol):
    def stats(self) -> WriterStats: ...


class _Rest(Protocol):
    requests_by_path: dict[str, int]
    rate_limited_by_path: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """``revisions``: closed candles changed by late trades (``CandleRevised``) per pair;
    ``rest_requests`` / ``rest_rate_limited``: HTTP attempts and those refused for rate (HTTP 429 or code
    50011) per endpoint path, retries included."""

    collector_id: str
    now_ms: int
    pairs: tuple[PairHealth, ...]
    revisions: Mapping[str, int]
    writer: WriterStats
    rest_requests: Mapping[str, int]
    rest_rate_limited: Mapping[str, int]


class Probe:
    """Reads a collector's health objects into a :class:`Snapshot` (on the collector's loop)."""

    def __init__(
        self,
        *,
        collector_id: str,
        manager: CollectorManager,
        writer: _Writer,
        rest: _Rest,
        clock: Callable[[], int],
    ) -> None:
        self.collector_id = collector_id
        self._manager, self._writer, self._rest, self._clock = manager, writer, rest, clock

    def _revisions(self) -> dict[str, int]:
        """Candle revisions per pair: the candle engine's own counter (``EngineStats.revisions``)."""
        return {inst: p.core.candles.engine.stats.revisions for inst, p in self._manager.pairs.items()}

    def snapshot(self) -> Snapshot:
        writer = self._writer.stats()
        return Snapshot(
            collector_id=self.collector_id,
            now_ms=self._clock(),
            pairs=tuple(self._manager.health(writer_lag_ms=writer.lag_ms)),
            revisions=self._revisions(),
            writer=writer,
            rest_requests=dict(self._rest.requests_by_path),
            rest_rate_limited=dict(self._rest.rate_limited_by_path),
        )


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The ``/status`` document: the snapshot as plain JSON values (``okx-collector status`` reads it)."""
    return {
        "collector_id": snap.collector_id,
        "now_ms": snap.now_ms,
        "pairs": [{**asdict(p), "candle_revisions": snap.revisions.get(p.inst_id, 0)} for p in snap.pairs],
        "writer": asdict(snap.writer),
        "rest": {
            path: {"requests": n, "rate_limited": snap.rest_rate_limited.get(path, 0)}
            for path, n in sorted(snap.rest_requests.items())
        },
    }
