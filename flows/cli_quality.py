"""``okx-collector validate`` and ``okx-collector reaggregate``: the quality operations without a Prefect server.

Both run the library code of :mod:`collectors.quality` directly on the configured database. ``validate`` exits 1
when the findings exceed ``--tolerance`` (0 by default), ``reaggregate`` prints how many candles changed and
which. Registered by one line in :func:`flows.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from collectors.quality.findings import DEFAULT_MAX_STALENESS_S, DEFAULT_TOLERANCE, iso

__all__ = ["add_commands"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_commands(sub: Any) -> None:
    """Add ``validate`` and ``reaggregate`` to the ``okx-collector`` subparsers ``sub``."""
    validate = sub.add_parser(
        "validate", help="check completeness and candles of pairs over a range (exit 1 beyond tolerance)"
    )
    validate.add_argument(
        "--pairs", type=_csv, help="comma-separated instIds (default: every configured pair)"
    )
    validate.add_argument(
        "--from",
        dest="start",
        help="ISO date-time, UTC unless an offset is given (default: an hour before --to)",
    )
    validate.add_argument(
        "--to", dest="end", help="ISO date-time (default: now, and then stream freshness is checked)"
    )
    validate.add_argument(
        "--tolerance",
        type=_count,
        default=DEFAULT_TOLERANCE,
        help=f"findings allowed (default {DEFAULT_TOLERANCE})",
    )
    validate.add_argument(
        "--max-staleness", type=float, default=DEFAULT_MAX_STALENESS_S,
        help=f"seconds after which a live stream is stale (default {DEFAULT_MAX_STALENESS_S:g})",
    )  # fmt: skip
    validate.add_argument("--json", action="store_true", help="print the run and every finding as JSON")
    validate.add_argument("--database-url", help="override DATABASE_URL")
    validate.set_defaults(handler=_validate)

    reaggregate = sub.add_parser(
        "reaggregate", help="rebuild candles from stored trades and upsert what differs"
    )
    reaggregate.add_argument(
        "--pairs", type=_csv, help="comma-separated instIds (default: every configured pair)"
    )
    reaggregate.add_argument(
        "--timeframes", type=_csv, help="comma-separated (default: each pair's configured ones)"
    )
    reaggregate.add_argument(
        "--from", dest="start", required=True, help="ISO date-time (widened to whole candles)"
    )
    reaggregate.add_argument(
        "--to", dest="end", required=True, help="ISO date-time (widened to whole candles)"
    )
    reaggregate.add_argument("--dry-run", action="store_true", help="report the differences, write nothing")
    reaggregate.add_argument("--json", action="store_true", help="print every changed candle as JSON")
    reaggregate.add_argument("--database-url", help="override DATABASE_URL")
    reaggregate.set_defaults(handler=_reaggregate)


def _validate(args: argparse.Namespace) -> int:
    from collectors.config import load_config
    from collectors.quality.plan import pair_checks, parse_instant, validation_range
    from collectors.quality.runs import by_pair, run_checks
    from flows.cli import _database, _require_schema

    now = _now_ms()
    start, end = validation_range(
        now,
        start_ms=parse_instant(args.start) if args.start else None,
        end_ms=parse_instant(args.end) if args.end else None,
    )
    with _database(args) as (settings, engine):
        _require_schema(engine, settings)
        checks = pair_checks(
            load_config(settings.collector_config), pairs=args.pairs, start_ms=start, end_ms=end, now_ms=now,
            freshness=args.end is None, max_staleness_s=args.max_staleness,
        )  # fmt: skip
        run = run_checks(engine, checks, tolerance=args.tolerance, started_ms=now, finished_ms=_now_ms)
    if args.json:
        print(json.dumps({
            "run_id": run.run_id, "status": run.status, "tolerance": run.tolerance,
            "start": iso(run.start_ms), "end": iso(run.end_ms), "pairs": list(run.pairs),
            "findings": [f.to_json() for f in run.findings],
        }, indent=2))  # fmt: skip
    else:
        print(f"validation {run.run_id}: {iso(run.start_ms)} .. {iso(run.end_ms)}")
        for pair, findings in by_pair(run.findings, run.pairs).items():
            print(f"{pair}: {len(findings)} finding{'s' * (len(findings) != 1)}")
            for f in findings:
                where = "/".join(x for x in (f.timeframe, f.field) if x)
                print(f"  {f.kind.value:16} {iso(f.start_ms)} .. {iso(f.end_ms)} {where} {f.detail}")
        print(f"{run.status}: {len(run.findings)} findings, tolerance {run.tolerance}")
    return 1 if run.failed else 0


def _reaggregate(args: argparse.Namespace) -> int:
    from collectors.config import load_config
    from collectors.quality.compare import ChangeKind
    from collectors.quality.plan import empty_policy, exchange_config, pair_checks, parse_instant
    from collectors.quality.reaggregate import reaggregate_range
    from flows.cli import _database, _require_schema

    start, end, now = parse_instant(args.start), parse_instant(args.end), _now_ms()
    with _database(args) as (settings, engine):
        _require_schema(engine, settings)
        config = load_config(settings.collector_config)
        exchange_config(config)
        checks = pair_checks(
            config, pairs=args.pairs, start_ms=start, end_ms=end, now_ms=now, freshness=False
        )
        report: list[dict[str, Any]] = []
        for check in checks:
            timeframes = args.timeframes or list(check.timeframes)
            results = asyncio.run(
                reaggregate_range(
                    engine, exchange=check.exchange, inst_id=check.inst_id, timeframes=timeframes,
                    start_ms=start, end_ms=end, now_ms=now, empty_policy=empty_policy(config), dry_run=args.dry_run,
                )
            )  # fmt: skip
            for r in results:
                counts = {k.value: r.count(k) for k in ChangeKind}
                report.append({
                    "pair": r.inst_id, "start": iso(r.start_ms), "end": iso(r.end_ms), "trades": r.trades,
                    "candles": r.candles, "written": r.written, **counts,
                    "changes": [
                        {"timeframe": c.timeframe, "open_time": iso(c.open_time_ms), "kind": c.kind.value,
                         "fields": list(c.fields)}
                        for c in r.changes
                    ],
                })  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for chunk in report:
        changed = len(chunk["changes"])
        print(
            f"{chunk['pair']} {chunk['start']} .. {chunk['end']}: {chunk['trades']} trades, {chunk['candles']} candles,"
            f" {changed} differ, {chunk['written']} written"
        )
        for c in chunk["changes"][:20]:
            print(f"  {c['timeframe']:4} {c['open_time']} {c['kind']:8} {','.join(c['fields'])}")
        if changed > 20:
            print(f"  ... {changed - 20} more (--json lists all)")
    return 0
