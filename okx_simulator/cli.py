"""Command-line entry: ``okx-collector simulate`` (flows/cli.py) and ``python -m okx_simulator``.

The first stdout line is one JSON object with the URLs; then the server runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any, Final

from okx_simulator.config import SimulatorConfig
from okx_simulator.instruments import DEFAULT_PAIRS, SPECS
from okx_simulator.server import SimulatorServer

__all__ = ["FIREHOSE_RATE", "add_arguments", "config_from_args", "run"]

FIREHOSE_RATE: Final = 5_000.0  # fills/s per pair: 45 000/s over the nine default pairs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to ``parser``."""
    defaults = SimulatorConfig()
    parser.add_argument("--host", default=defaults.host, help="bind address (default: loopback)")
    parser.add_argument(
        "--control-allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="also answer /sim control requests from this network (repeatable; loopback always may)",
    )
    parser.add_argument(
        "--open-control", action="store_true", help="answer /sim control requests from any address (unsafe)"
    )
    parser.add_argument("--port", type=int, default=defaults.port, help="port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="market seed")
    parser.add_argument(
        "--pairs",
        default=",".join(DEFAULT_PAIRS),
        help=f"comma-separated instIds, a subset of {','.join(SPECS)}",
    )
    parser.add_argument("--trade-rate", type=float, default=defaults.trade_rate, help="fills/s per pair")
    parser.add_argument("--history-hours", type=float, default=defaults.history_hours, help="tape history")
    firehose = parser.add_mutually_exclusive_group()
    firehose.add_argument(
        "--firehose",
        action="store_true",
        help="benchmark mode: 5000 live fills/s per pair with quiet and burst minutes (history keeps "
        "--trade-rate), 1 s tape chunks",
    )
    firehose.add_argument(
        "--firehose-rate",
        type=float,
        default=None,
        metavar="FILLS_PER_S",
        help="steady benchmark mode: this many live fills/s in all, spread evenly over --pairs, no quiet or "
        "burst minutes unless --firehose-bursts (history keeps --trade-rate), 1 s tape chunks",
    )
    parser.add_argument(
        "--firehose-bursts", action="store_true", help="with --firehose-rate: keep quiet and burst minutes"
    )
    parser.add_argument("--idle-timeout-s", type=float, default=defaults.idle_timeout_s, help="4004 close")
    parser.add_argument("--legacy-checksum", action="store_true", help="books carry the pre-2026 CRC32")
    parser.add_argument("--notice-clean-close", action="store_true", help="close cleanly after 64008")
    parser.add_argument("--login-failure-close", action="store_true", help="close 4001 after a failed login")
    parser.add_argument(
        "--no-candle-confirm-push", action="store_true", help="no extra confirm=1 push when a bar closes"
    )
    parser.add_argument(
        "--history-candles-max", type=int, default=defaults.history_candles_max, help="300 today, 100 in 2024"
    )
    parser.add_argument("--no-rate-limits", action="store_true", help="never answer 429 on its own")
    parser.add_argument("--utc-bars", action="store_true", help="align 6H..3M bars to UTC instead of UTC+8")
    parser.add_argument("--no-notice-on-business", action="store_true", help="64008 only on /public")
    parser.add_argument("--trades-all-seq-id", action="store_true", help="trades-all rows carry an int seqId")
    parser.add_argument(
        "--rest-trades-aggregated",
        action="store_true",
        help="REST trades: one row per taker order, not per fill",
    )
    parser.add_argument(
        "--history-trades-days", type=int, default=defaults.history_trades_days, help="history-trades depth"
    )
    parser.add_argument(
        "--replay",
        default=None,
        help="replay a recorded capture (WebSocket; its trades also on REST and /sim/tape)",
    )
    parser.add_argument(
        "--before-only",
        choices=("newest", "adjacent"),
        default=defaults.before_only,
        help="rows returned for `before` without `after`",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Build the frozen config from parsed options; raises ValueError for unknown pairs."""
    pairs = tuple(p.strip() for p in str(args.pairs).split(",") if p.strip())
    unknown = [p for p in pairs if p not in SPECS]
    if unknown:
        raise ValueError(f"unknown pairs {unknown}; known: {', '.join(SPECS)}")
    if args.replay is not None and not Path(args.replay).is_file():
        raise ValueError(f"--replay {args.replay}: no such file")
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        control_loopback_only=not args.open_control,
        control_allow=tuple(args.control_allow),
        seed=args.seed,
        pairs=pairs,
        **_market(args, len(pairs)),
        history_hours=args.history_hours,
        idle_timeout_s=args.idle_timeout_s,
        legacy_checksum=args.legacy_checksum,
        notice_clean_close=args.notice_clean_close,
        login_failure_close=args.login_failure_close,
        candle_confirm_push=not args.no_candle_confirm_push,
        history_candles_max=args.history_candles_max,
        rate_limits=not args.no_rate_limits,
        hk_aligned=not args.utc_bars,
        notice_on_business=not args.no_notice_on_business,
        history_trades_days=args.history_trades_days,
        trades_all_seq_id=args.trades_all_seq_id,
        rest_trades_aggregated=args.rest_trades_aggregated,
        before_only=args.before_only,
        replay_path=args.replay,
    )


def _market(args: argparse.Namespace, n_pairs: int) -> dict[str, Any]:
    """Rates, chunk size and quiet/burst shares: the default market, ``--firehose`` or ``--firehose-rate``."""
    rate: float | None = args.firehose_rate
    if rate is not None and rate <= 0:
        raise ValueError(f"--firehose-rate must be positive, got {rate:g}")
    if args.firehose_bursts and rate is None:
        raise ValueError("--firehose-bursts needs --firehose-rate")
    market: dict[str, Any] = {"trade_rate": args.trade_rate, "history_trade_rate": args.trade_rate}
    if args.firehose:
        market.update(trade_rate=FIREHOSE_RATE, chunk_ms=1_000)
    elif rate is not None:
        market.update(trade_rate=rate / n_pairs, chunk_ms=1_000)
        if not args.firehose_bursts:
            market.update(quiet_prob=0.0, burst_prob=0.0)
    return market


async def _serve(config: SimulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with SimulatorServer(config=config) as sim:
            sys.stdout.write(json.dumps(sim.urls()) + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    """Run the simulator until SIGINT/SIGTERM; returns the process exit code."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"okx-collector simulate: {exc}\n")
        return 2
    asyncio.run(_serve(config))
    return 0
