"""One pair collector: its sans-I/O core and the task that serves the core's REST requests.

The core (``core.py``) asks for trades by id (hole fills, catch-up polls, the latest trades); a
:class:`PairCollector` answers one request at a time through the shared :class:`TradeHistory`
(``OkxRestClient``: retries and the rate budget live there) and feeds the answer back. A request that still
fails is logged once per outage (WARNING), its recovery once (INFO), and handed back to the core, which retries
a hole a few times and then records it as unrecoverable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from collectors.errors import CollectorError
from collectors.live.core import FillRequest, PairCore
from collectors.model import Trade

__all__ = ["PairCollector", "TradeHistory"]

log = logging.getLogger(__name__)


class TradeRangeLike(Protocol):
    @property
    def trades(self) -> tuple[Trade, ...]: ...

    @property
    def unrecoverable(self) -> tuple[int, int] | None: ...

    @property
    def rejected(self) -> Sequence[RejectedRowLike]: ...


class RejectedRowLike(Protocol):
    @property
    def reason(self) -> str: ...

    @property
    def text(self) -> str: ...


class TradeHistory(Protocol):
    """REST trades (``OkxRestClient``): retries and the rate budget live there."""

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]: ...

    async def trades_between(
        self, inst_id: str, *, after_id: int, before_id: int | None = None
    ) -> TradeRangeLike: ...


class PairCollector:
    """One pair: its core, and a task running its REST requests one at a time."""

    def __init__(self, *, core: PairCore, history: TradeHistory, clock: Callable[[], int]) -> None:
        self.core, self.history, self.clock = core, history, clock
        self._wake = asyncio.Event()
        self._failures = (
            0  # REST requests failed in a row: the first is logged, the recovery too, not each poll
        )

    @property
    def inst_id(self) -> str:
        return self.core.inst_id

    def poke(self) -> None:
        self._wake.set()

    async def run_requests(self) -> None:
        """Serve the core's REST requests until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for request in self.core.take_requests():
                await self._serve(request)

    async def _serve(self, request: FillRequest) -> None:
        inst = self.core.inst_id
        try:
            if request.kind == "recent":
                trades = await self.history.recent_trades(inst)
                self._answered(inst)
                self.core.on_fill(request, trades, None, self.clock())
                return
            answer = await self.history.trades_between(
                inst, after_id=request.after_id, before_id=request.before_id
            )
        except CollectorError as exc:  # the client already retried what can be retried
            self._failures += 1
            log.log(
                logging.WARNING if self._failures == 1 else logging.DEBUG,
                "%s: REST %s after %s failed: %s%s",
                inst,
                request.kind,
                request.after_id,
                exc,
                " (not logged again until REST answers)" if self._failures == 1 else "",
            )
            self.core.fill_failed(request, str(exc), self.clock())
            return
        self._answered(inst)
        now = self.clock()
        if answer.rejected:
            self.core.rest_rejected([(row.reason, row.text) for row in answer.rejected], now)
        self.core.on_fill(request, list(answer.trades), answer.unrecoverable, now)

    def _answered(self, inst: str) -> None:
        if self._failures:
            log.info("%s: REST answers again after %d failed requests", inst, self._failures)
            self._failures = 0
