"""REST trade rows (pure): one row per fill by default, or one row per taker order and price when the
UNVERIFIED ``rest_trades_aggregated`` switch is on (tradeId = the order's last fill id, sz = the sum).

Aggregated pages hold only whole orders: an order cut by the ``after`` cursor or by the page's lower edge is
left out, so paging with ``after=<oldest tradeId>`` never splits or repeats an order.
"""

from __future__ import annotations

from typing import Any, Final

from okx_simulator.instruments import InstrumentSpec
from okx_simulator.tape import Fill, Tape
from okx_simulator.wire import aggregate, rest_trade

__all__ = ["aggregated_rows"]

_MAX_ORDER_FILLS: Final = 20  # Tape never makes bigger taker orders


def aggregated_rows(
    tape: Tape,
    spec: InstrumentSpec,
    *,
    below: int | None,
    above: int | None,
    before_ts: int | None,
    limit: int,
    now_ms: int,
) -> list[dict[str, Any]]:
    """Up to ``limit`` aggregated rows, newest first: ids below ``below``, tradeId above ``above``, or
    (``before_ts``) orders with ``ts < before_ts``."""
    want = (limit + 1) * _MAX_ORDER_FILLS
    if before_ts is not None:
        fills = tape.newest_before_ts(before_ms=before_ts, limit=want)
    else:
        fills = tape.newest_by_id(below=below, above=None, limit=want, now_ms=now_ms)
    groups = aggregate(list(reversed(fills)))
    if groups and len(fills) == want:
        groups = groups[1:]  # the oldest order may continue below the fetched fills
    if groups and below is not None and _continues(tape, groups[-1][-1]):
        groups = groups[:-1]  # the newest order continues at or above the cursor: its tradeId is not < below
    if above is not None:
        groups = [g for g in groups if g[-1].trade_id > above]
    return [_row(spec, g) for g in reversed(groups)][:limit]


def _continues(tape: Tape, fill: Fill) -> bool:
    """True if the fill after ``fill`` belongs to the same taker order (same chunk: an order shares one ts)."""
    return any(
        f.trade_id == fill.trade_id + 1 and f.order == fill.order
        for f in tape.fills(tape.chunk_of(fill.ts_ms))
    )


def _row(spec: InstrumentSpec, group: list[Fill]) -> dict[str, Any]:
    row = rest_trade(spec, group[-1])
    row["sz"] = spec.size(sum(f.sz for f in group))
    return row
