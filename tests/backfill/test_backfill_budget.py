"""Two backfills at once on one IP, each with its own limiter: with half the budget each the simulator (which
enforces OKX's 20 history-trades requests per 2 s per IP, fixed windows) answers no 429; with the whole budget
each it does (so the test can see a violation), and the REST client's backoff (patient enough) loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from backfill_sim import backfill, cut, sim_stats, store
from sqlalchemy import Engine

from collectors.backfill import Request
from collectors.backoff import backoff
from okx_simulator import SimulatorServer
from tests.live.sim_run import PAIRS, short_backoff, simulator, stored, true_tape, values


def patient_backoff() -> Iterator[float]:
    return backoff(initial_s=0.5, max_s=2.0)


async def two_at_once(
    sim: SimulatorServer,
    db: Engine,
    share: float,
    rest_backoff: Callable[[], Iterator[float]] = short_backoff,
) -> int:
    """Cut each pair's stored tape down to its two ends, backfill both at once; returns the 429s answered."""
    tapes = {p: await true_tape(sim, p) for p in PAIRS}
    for inst_id, tape in tapes.items():
        await store(db, tape)
        cut(db, inst_id, tape[1].trade_id, tape[-2].trade_id)
    before = (await sim_stats(sim))["http_429"]
    runs = [
        backfill(
            sim,
            db,
            Request(pairs=(p,), mode="gaps"),
            share=share,
            timeframes=("1m",),
            exchange_candles=False,
            rest_backoff=rest_backoff,
        )
        for p in PAIRS
    ]
    summaries = await asyncio.gather(*runs)
    after = (await sim_stats(sim))["http_429"]
    for (inst_id, tape), summary in zip(tapes.items(), summaries, strict=True):
        assert summary.ok and summary.pairs[0].trades == len(tape) - 2
        assert stored(db, inst_id) == [values(t) for t in tape]
    return int(after - before)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_backfills_with_half_the_budget_each_get_no_429(engine: Engine) -> None:
    async with simulator(history_hours=0.2) as sim:
        assert await two_at_once(sim, engine, share=0.5) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_backfills_with_the_whole_budget_each_are_refused_and_lose_nothing(engine: Engine) -> None:
    async with simulator(history_hours=0.2) as sim:
        assert await two_at_once(sim, engine, share=1.0, rest_backoff=patient_backoff) > 0
