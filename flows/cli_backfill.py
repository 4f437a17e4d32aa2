"""``okx-collector backfill``: the backfill without a Prefect server (docs/backfill.md).

``--from ISO [--to ISO]`` a range, ``--since 7d`` the last duration, ``--gaps`` (the default) every open gap. A
progress bar on a terminal (plain lines otherwise), a summary table at the end; exit 0 when every chunk
succeeded, 1 when a chunk failed after its retries (its span is recorded unrecoverable), 2 for a usage error.
Several backfills on one IP split OKX's REST budget with ``--rest-share`` (each takes that part; the Prefect
flow sizes its share by itself).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

from collectors.backfill.run import Progress

__all__ = ["ProgressBar", "add_backfill"]


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def add_backfill(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``backfill`` subcommand."""
    cmd = sub.add_parser(
        "backfill", help="fill holes of the stored trades from OKX REST history (no Prefect)"
    )
    cmd.add_argument("--pairs", help="comma-separated instIds (default: every pair of the config)")
    what = cmd.add_mutually_exclusive_group()
    what.add_argument("--from", dest="start", metavar="ISO", help="range start, e.g. 2026-11-20T10:00Z (UTC)")
    what.add_argument("--since", metavar="DURATION", help="the last duration back from now: 7d, 12h, 30m")
    what.add_argument("--gaps", action="store_true", help="every open gap of the coverage ledger (default)")
    cmd.add_argument("--to", dest="end", metavar="ISO", help="range end (default: now); needs --from")
    cmd.add_argument("--lookback-hours", type=float, default=24.0, help="--gaps: how far back to look (24)")
    cmd.add_argument(
        "--rest-share", type=_share, default=1.0, help="this run's part of OKX's REST budget (1.0)"
    )
    cmd.add_argument("--chunk-ids", type=_positive, default=10_000, help="trade ids per chunk (10000)")
    cmd.add_argument("--concurrency", type=_positive, default=4, help="chunks fetched at once (4)")
    cmd.add_argument("--no-exchange-candles", action="store_true", help="do not store OKX's history-candles")
    cmd.add_argument("--database-url", help="override DATABASE_URL")
    cmd.set_defaults(handler=_backfill)


class ProgressBar:
    """Chunks done of all: redrawn in place on a tty, else a plain line at every tenth (and the last)."""

    def __init__(self, out: TextIO, *, width: int = 30) -> None:
        self.out, self.width, self.tty = out, width, out.isatty()
        self._shown_tenth = -1

    def __call__(self, progress: Progress) -> None:
        total = max(progress.total, 1)
        share = progress.done / total
        text = f"{progress.done}/{progress.total} chunks, {progress.trades} trades stored"
        if self.tty:
            filled = round(share * self.width)
            self.out.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {text}")
            if progress.done == progress.total:
                self.out.write("\n")
        else:
            tenth = int(share * 10)
            if tenth == self._shown_tenth and progress.done != progress.total:
                return
            self._shown_tenth = tenth
            self.out.write(f"backfill: {text}\n")
        self.out.flush()


def _backfill(args: argparse.Namespace) -> int:
    from collectors.backfill import RunSummary, open_backfill, run_backfill, settings_from_config
    from collectors.backfill.finish import SUMMARY_COLUMNS
    from collectors.backfill.request import build_request, chosen_pairs
    from collectors.config import load_config
    from collectors.errors import ConfigError
    from collectors.exchanges.okx.limits import OKX_REST_QUOTAS
    from collectors.live.status import table
    from collectors.ratelimit import RateLimiter
    from flows.cli import _database, _require_schema

    if args.end is not None and args.start is None:
        raise ConfigError("--to needs --from")
    with _database(args) as (settings, engine):
        config = load_config(settings.collector_config)
        known = [p.inst_id for p in config.exchanges["okx"].pairs]
        try:
            pairs = chosen_pairs(args.pairs.split(",") if args.pairs else None, known)
        except ValueError as exc:
            raise ConfigError(f"--pairs: {exc} ({settings.collector_config})") from exc
        try:
            request = build_request(
                pairs, start=args.start, end=args.end, since=args.since, now_ms=time.time_ns() // 1_000_000
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        _require_schema(engine, settings)
        bf_settings = settings_from_config(
            config,
            chunk_ids=args.chunk_ids,
            gaps_lookback_ms=int(args.lookback_hours * 3_600_000),
            exchange_candles=not args.no_exchange_candles,
        )
        limiter = RateLimiter(quotas=OKX_REST_QUOTAS, share=args.rest_share)

        async def main() -> RunSummary:
            async with open_backfill(
                db=engine, rest_url=settings.okx_rest_url, limiter=limiter, settings=bf_settings
            ) as bf:
                return await run_backfill(
                    bf, request, concurrency=args.concurrency, on_progress=ProgressBar(sys.stdout)
                )

        started = time.monotonic()
        summary = asyncio.run(main())
    rows = [[p.row()[c] for c in SUMMARY_COLUMNS] for p in summary.pairs]
    print(table(SUMMARY_COLUMNS, rows))
    print(
        f"backfill ({request.mode}) done in {time.monotonic() - started:.1f} s: {summary.trades} trades stored, "
        f"{summary.failed_chunks} chunks failed"
    )
    return 0 if summary.ok else 1
