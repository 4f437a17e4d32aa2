"""``okx-collector export``: stored data of some pairs over a range into CSV or Parquet files, one per pair.

The library code is :mod:`collectors.read.export` (values exactly as stored; docs/read.md). A progress bar
goes to stderr when stderr is a terminal or ``--progress`` asks for it; stdout gets one line per file written.
Exit 2 for bad input (unknown pair, kind, timeframe, reversed range), 1 for a database failure. Registered by
one line in :func:`flows.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

__all__ = ["ProgressBar", "add_commands"]

_KINDS = ("trades", "candles", "books", "tickers")


def _pairs(text: str) -> list[str]:
    pairs = [item.strip() for item in text.split(",") if item.strip()]
    if not pairs:
        raise argparse.ArgumentTypeError(f"no pair given in {text!r}")
    return pairs


def _rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_commands(sub: Any) -> None:
    """Add ``export`` to the ``okx-collector`` subparsers ``sub``."""
    export = sub.add_parser(
        "export",
        help="write stored trades, candles, books or tickers of pairs over a range to CSV or Parquet",
    )
    export.add_argument("--pairs", type=_pairs, required=True, help="comma-separated instIds")
    export.add_argument("--kind", choices=_KINDS, required=True, help="what to export")
    export.add_argument(
        "--timeframe", help="candles: a timeframe (stored, or rolled up from 1m when not stored)"
    )
    export.add_argument(
        "--from", dest="start", required=True, help="ISO date-time, UTC unless an offset is given"
    )
    export.add_argument("--to", dest="end", required=True, help="ISO date-time, exclusive")
    export.add_argument("--format", dest="fmt", choices=("csv", "parquet"), default="csv", help="default csv")
    export.add_argument("--out", type=Path, required=True, help="folder for the files (created)")
    export.add_argument(
        "--chunk-rows", type=_rows, default=100_000, help="rows read at a time (default 100000)"
    )
    export.add_argument(
        "--progress", action="store_true", help="draw the progress bar even when stderr is not a terminal"
    )
    export.add_argument("--database-url", help="override DATABASE_URL")
    export.set_defaults(handler=_export)


class ProgressBar:
    """``BTC-USDT trades [########------------]  40%  12,345 rows`` redrawn in place on ``out``."""

    def __init__(self, label: str, *, out: TextIO, width: int = 30, min_interval_s: float = 0.1) -> None:
        self.label, self.out, self.width, self.min_interval_s = label, out, width, min_interval_s
        self._last_draw = -1.0

    def __call__(self, rows: int, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        self.out.write(f"\r{self.label} [{bar}] {fraction:4.0%}  {rows:,} rows")
        if fraction >= 1.0:
            self.out.write("\n")
        self.out.flush()


def _export(args: argparse.Namespace) -> int:
    from collectors.errors import QueryError
    from collectors.read import MarketData
    from collectors.read.export import export
    from flows.cli import _require_schema, _settings

    if args.kind == "candles" and not args.timeframe:
        print("okx-collector: export --kind candles needs --timeframe", file=sys.stderr)
        return 2
    show = args.progress or sys.stderr.isatty()
    settings = _settings(args)
    with MarketData(settings.database_url) as md:  # a missing SQLite file: StorageError, nothing created
        _require_schema(md.engine, settings)
        try:  # every pair's input is checked before the first file is written
            for pair in args.pairs:
                md.iter_kind(args.kind, pair, args.start, args.end, timeframe=args.timeframe)
        except QueryError as exc:
            print(f"okx-collector: {exc}", file=sys.stderr)
            return 2
        for pair in args.pairs:
            progress: Callable[[int, float], None] | None = None
            if show:
                progress = ProgressBar(f"{pair} {args.kind}", out=sys.stderr)
            try:
                result = export(
                    md, pair=pair, kind=args.kind, start=args.start, end=args.end, fmt=args.fmt, out_dir=args.out,
                    timeframe=args.timeframe, chunk_rows=args.chunk_rows, progress=progress,
                )  # fmt: skip
            except QueryError as exc:
                print(f"okx-collector: {exc}", file=sys.stderr)
                return 2
            origin = f" ({result.origin})" if result.origin else ""
            print(f"{result.path}: {result.rows} rows{origin}")
    return 0
