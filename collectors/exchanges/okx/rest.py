"""OKX REST client: instruments, trades, history-trades paged by trade id, candles and history-candles.

One retry layer (rule 6 of STYLE 3.7) for every request: each attempt first takes a slot from the shared
:class:`~collectors.ratelimit.RateLimiter` (keyed by endpoint path, quotas in ``limits.py``), so retries are
budgeted like first tries and a 429 storm never turns into a retry storm. What is retried is decided by
:func:`collectors.errors.is_retryable` alone:

* HTTP 429 or code 50011 -> :class:`RateLimited`: the endpoint is paused for every client of the limiter for the
  next backoff delay (or the server's ``Retry-After``, if it ever sends one), then tried again;
* HTTP 5xx and OKX's transient codes (``codes.RETRYABLE_CODES``: 50001, 50004, 50013, 50026) -> transient
  :class:`ApiError`, and connection failures and timeouts -> :class:`TransportError`: retried after a capped,
  jittered backoff delay;
* other codes (51000 bad parameter, 51001 unknown instrument, 50014 missing parameter, a 404) -> permanent
  :class:`ApiError`, raised at once; a body that is not OKX's envelope -> :class:`ParseError`, raised at once.

After ``max_attempts`` attempts the last error is raised. What the answers mean (the envelope, rows as
records, history paging) is ``rest_answers.py``, pure. Facts about OKX: shared/okx/API.md section 2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Self

import httpx

from collectors.backoff import backoff as default_backoff
from collectors.errors import ExchangeError, ParseError, RateLimited, TransportError, is_retryable
from collectors.exchanges.okx.limits import CANDLES, HISTORY_CANDLES, HISTORY_TRADES, INSTRUMENTS, TRADES
from collectors.exchanges.okx.messages import parse_candles
from collectors.exchanges.okx.rest_answers import (
    RejectedRow,
    TradePager,
    TradeRange,
    envelope_data,
    instrument_from_row,
    trades_from_rows,
)
from collectors.model import Instrument, Trade
from collectors.ratelimit import RateLimiter
from collectors.storage.records import ExchangeCandle

__all__ = ["HISTORY_PAGE", "OkxRestClient", "RejectedRow", "TradeRange"]

log = logging.getLogger(__name__)

HISTORY_PAGE: Final = 100  # history-trades' maximum (and default) page size (API.md 2.2)
DEFAULT_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_ATTEMPTS: Final = 6


def wall_clock_ms() -> int:
    """Epoch milliseconds: the default clock for ``recv_ms``."""
    return time.time_ns() // 1_000_000


class OkxRestClient:
    """OKX's public REST market data over an ``httpx.AsyncClient``; use as ``async with``.

    ``base_url`` is the OKX REST origin (``spec.REST_URL`` or the ``OKX_REST_URL`` setting, passed in);
    ``limiter`` the process's shared limiter over ``limits.OKX_REST_QUOTAS``; ``http`` an injected client (closed
    by its owner) or None for one of our own; ``timeout_s`` per attempt; ``backoff`` makes the delays of one
    request (``collectors.backoff.backoff``); ``clock`` gives ``recv_ms`` (epoch ms); ``sleep`` waits seconds.
    """

    def __init__(
        self,
        *,
        base_url: str,
        limiter: RateLimiter,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Callable[[], Iterator[float]] = default_backoff,
        clock: Callable[[], int] = wall_clock_ms,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1 or timeout_s <= 0:
            raise ValueError(f"max_attempts must be >= 1 and timeout_s > 0, got {max_attempts}, {timeout_s}")
        self._base_url = base_url.rstrip("/")
        self._limiter = limiter
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self.requests = 0  # HTTP attempts sent by this client, retries included
        # per endpoint path, read by the metrics endpoint (collectors.ops): attempts, and those refused for rate
        self.requests_by_path: dict[str, int] = {}
        self.rate_limited_by_path: dict[str, int] = {}  # HTTP 429 or code 50011 (RateLimited)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    # -- endpoints ------------------------------------------------------------------------------------
    async def instruments(self, inst_type: str = "SPOT") -> list[Instrument]:
        """Every instrument of ``inst_type``, in OKX's order. Raises ParseError for a row without its fields."""
        data = await self.get(INSTRUMENTS, {"instType": inst_type})
        return [instrument_from_row(row) for row in data]

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]:
        """The newest ``limit`` (<= 500) trades, ascending by trade id, each id once.

        A row failing a domain rule is logged and left out (its id then shows as a gap that
        :meth:`trades_between` reports); a row not in OKX's wire form raises ParseError.
        """
        data = await self.get(TRADES, {"instId": inst_id, "limit": str(limit)})
        trades, rejected = trades_from_rows(data, inst_id, self._clock())
        for row in rejected:
            log.warning("OKX %s %s: row refused: %s: %s", TRADES, inst_id, row.reason, row.text)
        return sorted({t.trade_id: t for t in reversed(trades)}.values(), key=_trade_id)

    async def trades_between(
        self, inst_id: str, *, after_id: int, before_id: int | None = None
    ) -> TradeRange:
        """Every trade with ``after_id < trade_id < before_id`` (None: up to the newest REST has).

        Pages /market/history-trades (type 1, 100 per page) backwards from ``before_id`` with the exclusive
        ``after`` cursor until a page reaches ``after_id`` or comes back empty (the 3-month edge: the span below
        the oldest row is ``unrecoverable``; when REST returns no row at all and ``before_id`` is None there is
        no known upper id, so nothing is reported). Raises the request's errors (see the module docstring).
        """
        pager = TradePager(after_id=after_id, before_id=before_id)
        requests_before = self.requests
        cursor = before_id
        while not pager.done:
            params = {"instId": inst_id, "type": "1", "limit": str(HISTORY_PAGE)}
            if cursor is not None:
                params["after"] = str(cursor)
            data = await self.get(HISTORY_TRADES, params)
            trades, rejected = trades_from_rows(data, inst_id, self._clock())
            cursor = pager.add(trades, rejected, cursor=cursor)
        return pager.result(requests=self.requests - requests_before)

    async def candles(
        self,
        inst_id: str,
        bar: str,
        *,
        after_ms: int | None = None,
        before_ms: int | None = None,
        limit: int = 100,
    ) -> list[ExchangeCandle]:
        """/market/candles (the latest 1,440 bars): bars opening before ``after_ms`` and after ``before_ms``
        (both exclusive, as OKX pages), oldest first, each open time once. The newest can be forming
        (``confirmed`` False). A row that is not a valid candle raises ParseError (InvalidRecord)."""
        return await self._candles(CANDLES, inst_id, bar, after_ms, before_ms, limit)

    async def history_candles(
        self,
        inst_id: str,
        bar: str,
        *,
        after_ms: int | None = None,
        before_ms: int | None = None,
        limit: int = 100,
    ) -> list[ExchangeCandle]:
        """/market/history-candles (recent years), otherwise as :meth:`candles`. Ask for at most 100 per page:
        OKX capped this endpoint at 100 until 2025 (API.md 2.2)."""
        return await self._candles(HISTORY_CANDLES, inst_id, bar, after_ms, before_ms, limit)

    async def _candles(
        self, path: str, inst_id: str, bar: str, after_ms: int | None, before_ms: int | None, limit: int
    ) -> list[ExchangeCandle]:
        params = {"instId": inst_id, "bar": bar, "limit": str(limit)}
        if after_ms is not None:
            params["after"] = str(after_ms)
        if before_ms is not None:
            params["before"] = str(before_ms)
        data = await self.get(path, params)
        if not all(isinstance(row, list) for row in data):
            raise ParseError(f"OKX {path}: candle rows must be arrays: {data!r:.200}")
        candles = parse_candles(data, inst_id=inst_id, bar=bar)
        return sorted({c.open_time_ms: c for c in reversed(candles)}.values(), key=_open_time)

    # -- one request, retried -------------------------------------------------------------------------
    async def get(self, path: str, params: Mapping[str, str]) -> list[Any]:
        """GET ``path`` and return the envelope's ``data``, retrying what can pass (see the module docstring)."""
        delays = self._backoff()
        attempt = 1
        while True:
            await self._limiter.acquire(path)
            self.requests += 1
            self.requests_by_path[path] = self.requests_by_path.get(path, 0) + 1
            try:
                return await self._once(path, params)
            except ExchangeError as exc:
                if isinstance(exc, RateLimited):
                    self.rate_limited_by_path[path] = self.rate_limited_by_path.get(path, 0) + 1
                if not is_retryable(exc) or attempt >= self._max_attempts:
                    raise
                delay = next(delays)
                # DEBUG: an outage retried on every poll would flood the log; the caller logs the final failure
                log.debug("OKX %s attempt %d failed (%s); retry in %.2f s", path, attempt, exc, delay)
                if isinstance(exc, RateLimited):
                    self._limiter.defer(path, max(delay, exc.retry_after_s or 0.0))
                else:
                    await self._sleep(delay)
                attempt += 1

    async def _once(self, path: str, params: Mapping[str, str]) -> list[Any]:
        inst_id = params.get("instId")
        try:
            response = await self._http.get(self._base_url + path, params=params, timeout=self._timeout_s)
        except httpx.TransportError as exc:  # connect refused or reset, timeouts, protocol errors
            raise TransportError(
                f"OKX {path}: {type(exc).__name__}: {exc}", endpoint=path, inst_id=inst_id
            ) from exc
        return envelope_data(response, path, inst_id)


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _open_time(candle: ExchangeCandle) -> int:
    return candle.open_time_ms
