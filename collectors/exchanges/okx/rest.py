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

After ``max_attempts`` attempts the last error is raised. Facts about OKX: shared/okx/API.md section 2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, cast

import httpx
import orjson

from collectors.backoff import backoff as default_backoff
from collectors.errors import (
    ApiError,
    ExchangeError,
    InvalidRecord,
    ParseError,
    RateLimited,
    TransportError,
    is_retryable,
)
from collectors.exchanges.okx.codes import error_from_envelope
from collectors.exchanges.okx.limits import CANDLES, HISTORY_CANDLES, HISTORY_TRADES, INSTRUMENTS, TRADES
from collectors.exchanges.okx.messages import OkxTradeRow, parse_candles
from collectors.exchanges.okx.rows import build_trade, decimal_field, digits_field
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


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedRow:
    """A REST trade row refused by a domain rule (``collectors.validation``): never stored, always reported.

    ``trade_id`` is the row's id, ``reason`` the check's message (naming the field), ``text`` the row as JSON.
    """

    trade_id: int
    reason: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRange:
    """What REST returned for the ids strictly between ``after_id`` and ``before_id``.

    Every id of that span is in exactly one of: ``trades`` (valid, ascending, unique), ``rejected`` (a row failed
    a domain rule), ``unrecoverable`` (inclusive span below the oldest row REST still keeps: paging reached an
    empty page above ``after_id + 1``) or ``gaps`` (inclusive spans inside what REST returned that no row
    covered: REST rows are one per fill on OKX as far as anyone has seen, so a gap means OKX aggregated fills or
    lost some; the caller decides, it is never hidden). ``requests`` counts HTTP attempts, retries included.
    """

    trades: tuple[Trade, ...]
    unrecoverable: tuple[int, int] | None
    requests: int
    gaps: tuple[tuple[int, int], ...] = ()
    rejected: tuple[RejectedRow, ...] = ()


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
        return [_instrument(_object(row)) for row in data]

    async def recent_trades(self, inst_id: str, *, limit: int = 500) -> list[Trade]:
        """The newest ``limit`` (<= 500) trades, ascending by trade id, each id once.

        A row failing a domain rule is logged and left out (its id then shows as a gap that
        :meth:`trades_between` reports); a row not in OKX's wire form raises ParseError.
        """
        data = await self.get(TRADES, {"instId": inst_id, "limit": str(limit)})
        trades, rejected = _trades(data, inst_id, self._clock())
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
        pager = _Pager(after_id=after_id, before_id=before_id)
        requests_before = self.requests
        cursor = before_id
        while not pager.done:
            params = {"instId": inst_id, "type": "1", "limit": str(HISTORY_PAGE)}
            if cursor is not None:
                params["after"] = str(cursor)
            data = await self.get(HISTORY_TRADES, params)
            trades, rejected = _trades(data, inst_id, self._clock())
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
            try:
                return await self._once(path, params)
            except ExchangeError as exc:
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
        return _data(response, path, inst_id)


def _data(response: httpx.Response, path: str, inst_id: str | None) -> list[Any]:
    """The ``data`` of an OKX envelope, or our error for the answer."""
    status = response.status_code
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if code is not None and str(code) != "0":
        msg = body.get("msg") if isinstance(body, dict) else None
        raise error_from_envelope(
            code, str(msg or ""), endpoint=path, inst_id=inst_id, retry_after_s=_retry_after(response)
        )
    if status == 429:
        retry_after_s = _retry_after(response)
        raise RateLimited(
            f"OKX {path}: HTTP 429", retry_after_s=retry_after_s, endpoint=path, inst_id=inst_id
        )
    if status != 200:
        message = f"OKX {path}: HTTP {status}: {response.text[:200]!r}"
        raise ApiError(
            message, code=f"http-{status}", transient=status >= 500, endpoint=path, inst_id=inst_id
        )
    data = body.get("data") if isinstance(body, dict) else None
    if code is None or not isinstance(data, list):
        raise ParseError(f"OKX {path}: not an envelope with a data list: {response.text[:200]!r}")
    return data


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds, when present and numeric (OKX sending it is unverified)."""
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _object(row: object) -> Mapping[str, Any]:
    if not isinstance(row, dict):
        raise ParseError(f"OKX row must be an object: {row!r:.200}")
    return row


def _instrument(row: Mapping[str, Any]) -> Instrument:
    """A model instrument from one /public/instruments row (strings, API.md 2.3)."""
    keys = ("instId", "instType", "baseCcy", "quoteCcy", "state")
    texts: dict[str, str] = {k: v for k in keys if type(v := row.get(k)) is str}
    bad = [k for k in keys if k not in texts]
    if bad:
        raise ParseError(f"OKX instrument row: {', '.join(bad)} must be strings: {row!r:.300}")
    steps = {k: decimal_field(row, k) for k in ("tickSz", "lotSz", "minSz")}
    if any(v <= 0 for v in steps.values()):
        raise ParseError(f"OKX instrument row: tickSz, lotSz and minSz must be > 0: {row!r:.300}")
    return Instrument(
        exchange="okx",
        inst_id=texts["instId"],
        base_ccy=texts["baseCcy"],
        quote_ccy=texts["quoteCcy"],
        tick_size=steps["tickSz"],
        lot_size=steps["lotSz"],
        min_size=steps["minSz"],
        inst_type=texts["instType"],
        state=texts["state"],
        list_time_ms=digits_field(row, "listTime") if row.get("listTime") else None,
    )


def _trades(data: Sequence[Any], inst_id: str, recv_ms: int) -> tuple[list[Trade], list[RejectedRow]]:
    """Trades of a REST page in page order, and the rows a domain rule refused.

    A row not in OKX's wire form (not an object, missing or mistyped field, another instrument) raises
    ParseError: the page as a whole cannot be trusted.
    """
    trades: list[Trade] = []
    rejected: list[RejectedRow] = []
    for row in data:
        fields = _object(row)
        if fields.get("instId") != inst_id:
            raise ParseError(f"OKX trade row for {fields.get('instId')!r}, asked for {inst_id!r}")
        try:
            trade, _count = build_trade(cast(OkxTradeRow, fields), inst_id, recv_ms, 1)
        except InvalidRecord as exc:
            trade_id = digits_field(fields, "tradeId")
            rejected.append(RejectedRow(trade_id=trade_id, reason=str(exc), text=orjson.dumps(row).decode()))
            continue
        trades.append(trade)
    return trades, rejected


def _trade_id(trade: Trade) -> int:
    return trade.trade_id


def _open_time(candle: ExchangeCandle) -> int:
    return candle.open_time_ms


class _Pager:
    """The pure bookkeeping of :meth:`OkxRestClient.trades_between`: pages in, next cursor and result out."""

    def __init__(self, *, after_id: int, before_id: int | None) -> None:
        self.after_id = after_id
        self.before_id = before_id
        self.trades: dict[int, Trade] = {}
        self.rejected: dict[int, RejectedRow] = {}
        self.lowest: int | None = None  # oldest id REST returned
        self.highest: int | None = None
        self.reached_edge = False
        self.done = before_id is not None and before_id <= after_id + 1

    def _wanted(self, trade_id: int) -> bool:
        return trade_id > self.after_id and (self.before_id is None or trade_id < self.before_id)

    def add(self, trades: list[Trade], rejected: list[RejectedRow], *, cursor: int | None) -> int | None:
        """Take one page (newest first); return the next ``after`` cursor."""
        ids = [t.trade_id for t in trades] + [r.trade_id for r in rejected]
        if not ids:
            self.reached_edge = True
            self.done = True
            return cursor
        oldest = min(ids)
        if cursor is not None and oldest >= cursor:
            raise ParseError(
                f"OKX history-trades page did not move below the cursor {cursor}: oldest {oldest}"
            )
        for trade in trades:  # the first copy of an id wins (REST caches can repeat a row)
            if self._wanted(trade.trade_id):
                self.trades.setdefault(trade.trade_id, trade)
        self.rejected.update((r.trade_id, r) for r in rejected if self._wanted(r.trade_id))
        wanted = [i for i in ids if self._wanted(i)]
        if wanted:
            self.lowest = min(wanted) if self.lowest is None else min(self.lowest, *wanted)
            self.highest = max(wanted) if self.highest is None else max(self.highest, *wanted)
        self.done = oldest <= self.after_id + 1
        return oldest

    def result(self, *, requests: int) -> TradeRange:
        top = self.before_id - 1 if self.before_id is not None else self.highest
        bottom = self.lowest if self.reached_edge else self.after_id + 1
        unrecoverable: tuple[int, int] | None = None
        if self.reached_edge and top is not None:
            edge = (self.lowest if self.lowest is not None else top + 1) - 1
            unrecoverable = (self.after_id + 1, edge) if edge >= self.after_id + 1 else None
        covered = set(self.trades) | set(self.rejected)
        gaps = _spans(covered, bottom, top) if bottom is not None and top is not None else ()
        return TradeRange(
            trades=tuple(self.trades[i] for i in sorted(self.trades)),
            unrecoverable=unrecoverable,
            requests=requests,
            gaps=gaps,
            rejected=tuple(self.rejected[i] for i in sorted(self.rejected)),
        )


def _spans(present: set[int], bottom: int, top: int) -> tuple[tuple[int, int], ...]:
    """Inclusive spans of ``bottom..top`` missing from ``present``."""
    spans: list[tuple[int, int]] = []
    start = bottom
    for i in sorted(i for i in present if bottom <= i <= top):
        if i > start:
            spans.append((start, i - 1))
        start = i + 1
    if start <= top:
        spans.append((start, top))
    return tuple(spans)
