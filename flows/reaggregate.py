"""The ``reaggregate`` flow: rebuild candles from stored trades through the candle engine, ad hoc.

The range is widened to whole candles of every timeframe and cut into chunks (a day by default); one task per
chunk (:func:`tasks.reaggregate.reaggregate_chunk_task`) recomputes, compares and upserts the candles that
differ. A table artifact per pair lists the changed candles (key ``reaggregate-<pair>``) and a markdown summary
(key ``reaggregate-summary``) gives the counts. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from collectors.config import load_config
from collectors.errors import ConfigError
from collectors.quality.findings import iso
from collectors.quality.plan import empty_policy, pair_checks, parse_instant
from collectors.quality.reaggregate import DAY_MS, ChunkResult, plan_chunks
from collectors.settings import load_settings
from tasks.reaggregate import change_rows, counts, reaggregate_chunk_task
from tasks.validate import artifact_key

__all__ = ["reaggregate"]

_TABLE_ROWS = 500  # changed candles listed per pair in its artifact


@flow(name="reaggregate")
async def reaggregate(
    pairs: list[str] | None = None,
    timeframes: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    dry_run: bool = False,
    chunk_hours: int = 24,
) -> dict[str, Any]:
    """Rebuild candles of a range from stored trades and upsert the ones that differ from what is stored.

    Args:
        pairs: instIds; empty or null for every pair of the collectors config.
        timeframes: our timeframes (1m, 5m, ... 1d); empty or null for each pair's configured ones.
        start: ISO 8601 start (UTC unless an offset is given), widened to whole candles; null for a day before end.
        end: ISO 8601 end, widened to whole candles; null for now (candles still open are left alone).
        dry_run: report the differences without writing.
        chunk_hours: hours of trades per task (rounded up to whole candles of the coarsest timeframe).
    """
    log = get_run_logger()
    if chunk_hours < 1:
        raise ConfigError(f"chunk_hours must be at least 1, got {chunk_hours}")
    now = time.time_ns() // 1_000_000
    end_ms = parse_instant(end) if end else now
    start_ms = parse_instant(start) if start else end_ms - DAY_MS
    config = load_config(load_settings().collector_config)
    checks = pair_checks(
        config, pairs=pairs or None, start_ms=start_ms, end_ms=end_ms, now_ms=now, freshness=False
    )
    by_pair: dict[str, list[ChunkResult]] = {}
    for check in checks:
        frames = list(timeframes) if timeframes else list(check.timeframes)
        for chunk_start, chunk_end in plan_chunks(start_ms, end_ms, frames, chunk_ms=chunk_hours * 3_600_000):
            result = await reaggregate_chunk_task(
                inst_id=check.inst_id, timeframes=frames, start_ms=chunk_start, end_ms=chunk_end, now_ms=now,
                empty_policy=empty_policy(config), dry_run=dry_run, exchange=check.exchange,
            )  # fmt: skip
            by_pair.setdefault(check.inst_id, []).append(result)
    totals = {pair: counts(results) for pair, results in by_pair.items()}
    for pair, results in by_pair.items():
        rows = change_rows(results)
        await acreate_table_artifact(
            table=rows[:_TABLE_ROWS] or [{"pair": pair, "kind": "none"}],
            key=artifact_key("reaggregate", pair),
            description=f"{pair}: {len(rows)} candles differ ({'dry run' if dry_run else 'upserted'})",
        )
    header = (
        "| pair | trades | candles | new | changed | unbacked | written |\n|---|---|---|---|---|---|---|\n"
    )
    lines = "".join(
        f"| {p} | {t['trades']} | {t['candles']} | {t['new']} | {t['changed']} | {t['unbacked']} | {t['written']} |\n"
        for p, t in totals.items()
    )
    await acreate_markdown_artifact(
        markdown=f"# Re-aggregation {iso(start_ms)} .. {iso(end_ms)}{' (dry run)' if dry_run else ''}\n\n{header}{lines}",
        key="reaggregate-summary",
    )
    log.info("reaggregate %s .. %s: %s", iso(start_ms), iso(end_ms), totals)
    return {"start": iso(start_ms), "end": iso(end_ms), "pairs": totals}
