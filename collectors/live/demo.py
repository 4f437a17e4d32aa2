"""The ``demo`` command's library part: faults injected into a running simulator, and the stored tape checked
against the simulator's truth.

It talks to the simulator only over its HTTP control endpoints (``POST /sim/faults``, ``GET /sim/tape``), so
``collectors`` never imports ``okx_simulator``; the command starts the simulator. After the collection the demo
cuts a hole (:func:`cut_hole` deletes a span of one pair's stored trades, as a lost write or a restore from an
old backup would) for the quality flows to find and fill (``flows/demo.py`` runs them; Prefect stays out of here).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import httpx
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from collectors.errors import CollectorError
from collectors.exchanges.okx.rows import build_trade
from collectors.live.health import PairHealth
from collectors.live.status import table
from collectors.model import Timeframe
from collectors.storage import reads
from collectors.storage.engine import storage_error
from collectors.storage.schema import TradeRow, ValidationFindingRow

__all__ = [
    "DemoRow",
    "Hole",
    "collected_span",
    "compare_with_truth",
    "cut_hole",
    "demo_faults",
    "demo_table",
    "findings_of",
    "inject_faults",
    "rejected_totals",
    "rows_table",
]

_EXCHANGE: Final = "okx"
_MINUTE: Final = Timeframe.parse("1m")
_HEADER: Final = (
    "pair",
    "stored",
    "truth",
    "missing",
    "duplicated",
    "wrong",
    "gaps found",
    "filled",
    "rejected",
    "candles",
)


def demo_faults(duration_s: float) -> list[tuple[float, str, dict[str, Any]]]:
    """``(seconds after the start, label, /sim/faults body)``: a disconnect, a stall, a burst of malformed frames.

    The burst is narrowed to ``trades-all``: the simulator's ``missing_field`` on a ticker drops ``instType``,
    which the parser does not need, so such a ticker is stored, not rejected, and the totals would differ.
    """
    stall_s = round(max(2.0, min(8.0, duration_s * 0.12)), 1)
    burst_s = round(max(1.5, min(5.0, duration_s * 0.06)), 1)
    return [
        (round(duration_s * 0.3, 1), "disconnect (every WebSocket dropped)", {"kind": "drop"}),
        (
            round(duration_s * 0.45, 1),
            f"stall {stall_s} s (nothing sent)",
            {"kind": "stall", "seconds": stall_s},
        ),
        (
            round(duration_s * 0.65, 1),
            f"malformed trade frames for {burst_s} s (30 % of trades-all pushes)",
            {"kind": "malformed", "rate": 0.3, "seconds": burst_s, "channel": "trades-all"},
        ),
    ]


async def inject_faults(control_url: str, faults: Sequence[tuple[float, str, dict[str, Any]]]) -> list[str]:
    """POST each fault at its time (seconds from now); returns what was injected, for the report."""
    done: list[str] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with httpx.AsyncClient(timeout=10) as http:
        for at_s, label, body in faults:
            await asyncio.sleep(max(0.0, start + at_s - loop.time()))
            response = await http.post(f"{control_url}/faults", json=body)
            response.raise_for_status()
            done.append(f"{at_s:>5.1f} s  {label}")
    return done


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRow:
    """One pair: stored trades against the simulator's tape over the stored id range."""

    inst_id: str
    stored: int
    truth: int
    missing: int
    duplicated: int
    wrong: int
    gaps_found: int
    gaps_filled: int
    rejected: int
    candles: int


async def _tape(
    http: httpx.AsyncClient, control_url: str, inst_id: str, from_ms: int, to_ms: int
) -> list[Any]:
    response = await http.get(
        f"{control_url}/tape", params={"instId": inst_id, "from": str(from_ms), "to": str(to_ms)}
    )
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


def _values(row: Any, inst_id: str) -> tuple[int, int, Decimal, Decimal, str]:
    trade, _ = build_trade(row, inst_id, int(row["ts"]), 1)
    return (trade.trade_id, trade.ts_ms, trade.price, trade.size, trade.side.value)


async def _row(http: httpx.AsyncClient, control_url: str, db: Engine, health: PairHealth) -> DemoRow:
    inst = health.inst_id
    stored = await asyncio.to_thread(reads.trade_values, db, exchange=_EXCHANGE, inst_id=inst)
    candles = await asyncio.to_thread(reads.candle_count, db, exchange=_EXCHANGE, inst_id=inst)
    ours = {i: (i, ts, Decimal(p), Decimal(s), side) for i, ts, p, s, side in stored}
    truth: dict[int, tuple[int, int, Decimal, Decimal, str]] = {}
    if stored:
        first, last = stored[0][0], stored[-1][0]
        rows = await _tape(http, control_url, inst, min(r[1] for r in stored), max(r[1] for r in stored) + 1)
        truth = {v[0]: v for v in (_values(r, inst) for r in rows) if first <= v[0] <= last}
    return DemoRow(
        inst_id=inst,
        stored=len(stored),
        truth=len(truth),
        missing=len(truth.keys() - ours.keys()),
        duplicated=len(stored) - len(ours),
        wrong=sum(1 for i, v in ours.items() if truth.get(i) != v),
        gaps_found=health.gaps_found,
        gaps_filled=health.gaps_filled,
        rejected=health.rejected,
        candles=candles,
    )


async def compare_with_truth(db: Engine, control_url: str, health: Sequence[PairHealth]) -> list[DemoRow]:
    """One :class:`DemoRow` per pair of ``health`` (the run's last status)."""
    async with httpx.AsyncClient(timeout=30) as http:
        return [await _row(http, control_url, db, h) for h in health]


def demo_table(rows: Sequence[DemoRow]) -> str:
    return table(
        _HEADER,
        [
            (
                r.inst_id,
                r.stored,
                r.truth,
                r.missing,
                r.duplicated,
                r.wrong,
                r.gaps_found,
                r.gaps_filled,
                r.rejected,
                r.candles,
            )
            for r in rows
        ],
    )


async def rejected_totals(db: Engine, control_url: str) -> tuple[int, int]:
    """``(rejected messages stored, malformed frames the simulator sent)``: equal when none was lost or invented."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{control_url}/faults/log")
        response.raise_for_status()
        sent = len(response.json())
    return await asyncio.to_thread(reads.rejected_count, db, exchange=_EXCHANGE), sent


@dataclass(frozen=True, slots=True, kw_only=True)
class Hole:
    """Trades ``first_id..last_id`` of ``inst_id`` deleted after the collection (``trades`` rows, stored between
    ``start_ms`` and ``end_ms``)."""

    inst_id: str
    first_id: int
    last_id: int
    trades: int
    start_ms: int
    end_ms: int


def cut_hole(db: Engine, inst_id: str, *, share: tuple[float, float] = (0.4, 0.6)) -> Hole:
    """Delete the stored trades of ``inst_id`` between the ``share`` positions of its tape (by id): a hole inside
    the collected time, with stored trades on both sides, that the live collector will never see again.

    The hole lies in the first minute the collector watched whole when at least 3 trades do (a run of 2 minutes
    or more), else after the first minute boundary: the candle of the minute the collector started in is
    partial by nature, and a hole there would mix two stories.
    """
    stored = reads.trade_values(db, exchange=_EXCHANGE, inst_id=inst_id)
    if len(stored) < 3:
        raise CollectorError(f"demo: {inst_id} has {len(stored)} stored trades, too few to cut a hole")
    boundary = _MINUTE.bucket_start_ms(stored[0][1]) + _MINUTE.duration_ms
    whole = [r for r in stored if boundary <= r[1] < boundary + _MINUTE.duration_ms]
    later = [r for r in stored if r[1] >= boundary]
    ends_later = stored[-1][1] >= boundary + _MINUTE.duration_ms
    tape = whole if ends_later and len(whole) >= 3 else later if len(later) >= 3 else stored
    first = max(1, int(len(tape) * share[0]))
    last = min(len(tape) - 2, max(first, int(len(tape) * share[1]) - 1))
    cut = tape[first : last + 1]
    query = delete(TradeRow).where(
        TradeRow.exchange == _EXCHANGE,
        TradeRow.inst_id == inst_id,
        TradeRow.trade_id.between(cut[0][0], cut[-1][0]),
    )
    try:
        with Session(db) as session, session.begin():
            session.execute(query)
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="deleting") from exc
    return Hole(
        inst_id=inst_id,
        first_id=cut[0][0],
        last_id=cut[-1][0],
        trades=len(cut),
        start_ms=min(r[1] for r in cut),
        end_ms=max(r[1] for r in cut),
    )


def collected_span(db: Engine) -> tuple[int, int]:
    """``[first, last + 1)`` ms of every stored trade: the range the demo's validations check."""
    query = select(func.min(TradeRow.ts), func.max(TradeRow.ts)).where(TradeRow.exchange == _EXCHANGE)
    try:
        with Session(db) as session:
            first, last = session.execute(query).one()
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="trades", action="reading") from exc
    if first is None:
        raise CollectorError("demo: no trade stored, nothing to validate")
    return int(first), int(last) + 1


def findings_of(db: Engine, run_id: str) -> list[dict[str, Any]]:
    """The findings a validation run recorded, in order, as ``pair, kind, timeframe, field, start, end, detail``."""
    query = (
        select(ValidationFindingRow)
        .where(ValidationFindingRow.run_id == run_id)
        .order_by(ValidationFindingRow.seq)
    )
    try:
        with Session(db) as session:
            found = session.scalars(query).all()
    except SQLAlchemyError as exc:
        raise storage_error(exc, table="validation_findings", action="reading") from exc
    return [
        {
            "pair": f.inst_id,
            "kind": f.kind,
            "timeframe": f.timeframe,
            "field": f.field,
            "start_ms": f.start_time,
            "end_ms": f.end_time,
            "detail": f.detail,
        }
        for f in found
    ]


def rows_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` (dicts) as the demo's aligned text table of ``columns``."""
    return table(tuple(columns), [tuple("" if r.get(c) is None else r[c] for c in columns) for r in rows])
