"""What OKX's REST answers mean, without I/O: the envelope's ``data``, instrument and trade rows as model
records, and the bookkeeping of paging /market/history-trades by trade id (:class:`TradeRange`).

:class:`~collectors.exchanges.okx.rest.OkxRestClient` sends the requests and retries; everything here is pure
(the receive time is a parameter), so it is tested on recorded answers. Facts about OKX: shared/okx/API.md 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson

from collectors.errors import ApiError, InvalidRecord, ParseError, RateLimited
from collectors.exchanges.okx.codes import error_from_envelope
from collectors.exchanges.okx.messages import OkxTradeRow
from collectors.exchanges.okx.rows import build_trade, decimal_field, digits_field
from collectors.model import Instrument, Trade

__all__ = [
    "RejectedRow",
    "TradePager",
    "TradeRange",
    "envelope_data",
    "instrument_from_row",
    "trades_from_rows",
]


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


def envelope_data(response: httpx.Response, path: str, inst_id: str | None) -> list[Any]:
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


def instrument_from_row(raw: object) -> Instrument:
    """A model instrument from one /public/instruments row (strings, API.md 2.3); ParseError if it is not one."""
    row = _object(raw)
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


def trades_from_rows(
    data: Sequence[Any], inst_id: str, recv_ms: int
) -> tuple[list[Trade], list[RejectedRow]]:
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


class TradePager:
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
