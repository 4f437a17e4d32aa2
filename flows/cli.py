"""``okx-collector``: the command line.

Each subcommand builds settings once at this edge and calls library code. Heavy imports (Prefect, the
simulator) happen inside the subcommand that needs them, so ``okx-collector config check`` stays fast.
Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectors.errors import CollectorError, ConfigError
from collectors.logs import printable

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.live.app import RunResult
    from collectors.live.health import PairHealth
    from collectors.settings import Settings

__all__ = ["build_parser", "main"]

log = logging.getLogger("okx_collector")


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with ``--database-url`` applied."""
    from collectors.settings import load_settings

    return load_settings(**({"database_url": args.database_url} if args.database_url else {}))


@contextlib.contextmanager
def _database(args: argparse.Namespace, *, create: bool = False) -> Iterator[tuple[Settings, Engine]]:
    """Settings (with ``--database-url`` applied) and an engine that is disposed afterwards. Only ``create``
    (``db upgrade``) may bring a new SQLite file into being: every other command needs a migrated database, so a
    mistyped path is an error that names it, not an empty file left behind."""
    from collectors.storage.engine import make_engine

    settings = _settings(args)
    engine = make_engine(settings.database_url, create=create)
    try:
        yield settings, engine
    finally:
        engine.dispose()


def _require_schema(engine: Engine, settings: Settings) -> None:
    """Refuse to work on a database whose schema is missing or behind, saying how to fix it."""
    from collectors.storage.migrate import require_current_schema

    require_current_schema(engine, shown_url=settings.masked()["DATABASE_URL"])


def _db_upgrade(args: argparse.Namespace) -> int:
    from collectors.storage.migrate import head_revision, upgrade

    with _database(args, create=True) as (settings, engine):
        revision = upgrade(engine)
    shown = settings.masked()["DATABASE_URL"]
    print(f"database {shown} is at revision {revision} (head {head_revision()})")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from collectors.storage.migrate import current_revision, head_revision

    with _database(args) as (_, engine):
        revision = current_revision(engine)
    head = head_revision()
    print(f"current revision: {revision or '<none: run okx-collector db upgrade>'}; head: {head}")
    return 0 if revision == head else 1


def _db_purge(args: argparse.Namespace) -> int:
    import time

    from collectors.config import load_config
    from collectors.storage.retention import purge_expired

    with _database(args) as (settings, engine):
        config = load_config(settings.collector_config)
        purged = purge_expired(
            engine,
            config.retention,
            now_ms=time.time_ns() // 1_000_000,
            batch_rows=args.batch_rows,
            pause_s=args.pause_s,
        )
    for table, done in purged.items():
        print(f"{table}: {done.deleted} rows deleted in {done.batches} batches")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from collectors.config import load_config
    from collectors.exchanges.registry import default_registry
    from collectors.settings import load_settings

    settings = load_settings()
    path = Path(args.file) if args.file else settings.collector_config
    registry = default_registry()
    config = load_config(path, registry=registry)
    summary = {
        "settings": settings.masked(),
        "config_file": str(path),
        "exchanges": {
            name: {
                "pairs": [
                    {
                        "inst_id": pair.inst_id,
                        "channels": list(ex.channels_for(pair)),
                        "timeframes": list(ex.timeframes_for(pair)),
                    }
                    for pair in ex.pairs
                ]
            }
            for name, ex in config.exchanges.items()
        },
        "candles": config.candles.model_dump(mode="json"),
        "batching": config.batching.model_dump(mode="json"),
        "retention": config.retention.model_dump(mode="json"),
    }
    print(json.dumps(summary, indent=2))
    print(f"config OK: {sum(len(e.pairs) for e in config.exchanges.values())} pairs", file=sys.stderr)
    return 0


def _run_live(run: Coroutine[Any, Any, RunResult], stop: asyncio.Event) -> RunResult:
    """Run the collectors' coroutine; SIGINT/SIGTERM set ``stop`` (a clean stop: everything is flushed)."""

    async def main() -> RunResult:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await run
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def _collect(args: argparse.Namespace) -> int:
    import time

    from collectors.config import load_config
    from collectors.live.app import Endpoints, run_collectors
    from collectors.live.status import StatusBoard, summary_table
    from collectors.ops.options import with_settings

    # the command line against the config first: a mistyped pair is told before anything about the database
    settings = _settings(args)
    config = with_settings(load_config(settings.collector_config), settings)  # COLLECTOR_METRICS_PORT
    pairs = args.pairs.split(",") if args.pairs else None
    known = {p.inst_id for p in config.exchanges["okx"].pairs} if "okx" in config.exchanges else set()
    if pairs is not None and not set(pairs) <= known:
        unknown = ", ".join(sorted(set(pairs) - known))
        raise ConfigError(f"--pairs: {unknown} not in the config {settings.collector_config}")
    with _database(args) as (settings, engine):
        _require_schema(engine, settings)
        stop = asyncio.Event()
        board = StatusBoard(out=sys.stdout, monotonic_s=time.monotonic)
        last: list[list[PairHealth]] = [[]]

        def on_status(health: list[PairHealth]) -> None:
            last[0] = health
            board(health)

        try:
            result = _run_live(
                run_collectors(
                    config=config,
                    db=engine,
                    endpoints=Endpoints.from_settings(settings),
                    pairs=pairs,
                    duration_s=args.duration,
                    on_status=on_status,
                    stop=stop,
                ),
                stop,
            )
        except CollectorError:  # no pair left collecting, or the writer failed: main() says which
            print("\ncollector ended by an error (below); last status:")
            print(summary_table(last[0]))
            raise
    print(f"\ncollector {result.collector_id} stopped: {result.written_rows} rows written")
    print(summary_table(result.health))
    failed = [h.inst_id for h in result.health if h.state == "failed"]
    if failed:
        print(f"okx-collector: {len(failed)} pairs failed for good: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _fresh_sqlite(path: Path) -> Engine:
    """A new, migrated SQLite database at ``path`` (the old file and its WAL are removed)."""
    from collectors.storage.engine import make_engine
    from collectors.storage.migrate import upgrade

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


async def _demo_run(duration_s: float, engine: Engine, path: Path) -> int:
    import time

    from collectors.config import parse_config
    from collectors.exchanges.okx.spec import DEFAULT_PAIRS
    from collectors.live.app import Endpoints, run_collectors
    from collectors.live.demo import (
        compare_with_truth,
        demo_faults,
        demo_table,
        inject_faults,
        rejected_totals,
    )
    from collectors.live.status import StatusBoard
    from flows.demo import prefect_ready, problems, quality_demo, report, where_runs_are
    from okx_simulator import SimulatorConfig, SimulatorServer

    # the demo's own spill dir: rows spilled by a `collect` on another database must never replay into it;
    # the same config in a file for the flows, which read it from COLLECTOR_CONFIG
    raw = {
        "exchanges": {"okx": {"pairs": list(DEFAULT_PAIRS)}},
        "batching": {"spill_dir": str(path.with_name(path.name + "-spill"))},
    }
    config, config_path = parse_config(raw), path.with_name(path.name + ".config.yaml")
    config_path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")  # JSON is YAML
    sim_config = SimulatorConfig(seed=1, trade_rate=5.0, history_hours=0.25, quiet_prob=0.0)
    async with SimulatorServer(config=sim_config) as sim:
        print(f"simulator on {sim.rest_url}; collecting {len(DEFAULT_PAIRS)} pairs for {duration_s:g} s")
        endpoints = Endpoints(
            rest_url=sim.rest_url, ws_public_url=sim.ws_public_url, ws_business_url=sim.ws_business_url
        )
        board = StatusBoard(out=sys.stdout, monotonic_s=time.monotonic)
        async with asyncio.TaskGroup() as group:
            injected = group.create_task(inject_faults(sim.control_url, demo_faults(duration_s)))
            group.create_task(asyncio.to_thread(prefect_ready))  # Prefect (its server) starts meanwhile
            result = await run_collectors(
                config=config, db=engine, endpoints=endpoints, duration_s=duration_s, on_status=board
            )
            injected.cancel()  # a very short run ends before every fault is due
        print("\nfaults injected:")
        print("\n".join(f"  {line}" for line in ([] if injected.cancelled() else injected.result())))
        print("\nPrefect flow runs: validate, backfill, validate, reaggregate\n")
        quality = await quality_demo(
            db=engine, database_url=f"sqlite:///{path}", rest_url=sim.rest_url, config_path=config_path,
            hole_pair=DEFAULT_PAIRS[0],
        )  # fmt: skip
        print(report(quality))
        rows = await compare_with_truth(engine, sim.control_url, result.health)
        rejected, sent = await rejected_totals(engine, sim.control_url)
    print("\nstored trades against the simulator's tape, after the backfill:\n" + demo_table(rows))
    print(f"\nrejected_messages: {rejected} stored; malformed frames the simulator sent: {sent}")
    bad = [r.inst_id for r in rows if r.missing or r.duplicated or r.wrong or not r.stored]
    if rejected != sent:
        bad.append("rejected_messages")
    bad.extend(problems(quality))
    print(f"\n{where_runs_are()}")
    print(f"\n{'FAILED: ' + '; '.join(bad) if bad else 'every pair: 0 missing, 0 duplicated, 0 wrong'}")
    return 1 if bad else 0


def _demo(args: argparse.Namespace) -> int:
    import os
    import shutil

    for key, value in _PREFECT_QUIET.items():
        os.environ.setdefault(key, value)  # before prefect is imported: the user's own settings win
    path = Path(args.db).resolve()
    # the spill dir belongs to the database recreated next
    shutil.rmtree(path.with_name(path.name + "-spill"), ignore_errors=True)
    engine = _fresh_sqlite(path)
    try:
        return asyncio.run(_demo_run(args.duration, engine, path))
    finally:
        engine.dispose()


_PREFECT_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry calls (and no errors about them offline)
    "PREFECT_LOGGING_LEVEL": "WARNING",  # the runs' logs still reach the server; the console sees problems only
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # 20 s is too short on a busy machine
}


def _simulate(args: argparse.Namespace) -> int:
    from okx_simulator import cli as simulator_cli

    return simulator_cli.run(args)


def _add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("simulate", help="run the local OKX simulator (REST + WebSocket on one port)")
    try:
        from okx_simulator import cli as simulator_cli
    except ImportError as exc:  # the simulator is optional at import time; say why it is missing
        parser.set_defaults(handler=_unavailable(f"the simulator cannot be imported: {exc}"))
        return
    simulator_cli.add_arguments(parser)
    parser.set_defaults(handler=_simulate)


def _unavailable(reason: str) -> Callable[[argparse.Namespace], int]:
    def handler(_args: argparse.Namespace) -> int:
        print(f"okx-collector: {reason}", file=sys.stderr)
        return 1

    return handler


def _seconds(text: str) -> float:
    """``--duration``: a finite number of seconds above 0 (0, negatives and nan would stop at once, exit 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0, got {text!r}")
    return value


def _pause(text: str) -> float:
    """``db purge --pause-s``: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="okx-collector", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--log-format", choices=("text", "json", "kv"), help="log lines (docs/observability.md)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    for name, handler, text in (
        ("upgrade", _db_upgrade, "create or migrate all tables to the newest schema"),
        ("current", _db_current, "show the schema revision (exit 1 when behind)"),
        ("purge", _db_purge, "delete archive rows older than the config's retention"),
    ):
        cmd = db.add_parser(name, help=text)
        cmd.add_argument("--database-url", help="override DATABASE_URL")
        cmd.set_defaults(handler=handler)
        if name == "purge":
            from collectors.storage.retention import DEFAULT_BATCH_ROWS, DEFAULT_PAUSE_S
            from flows.cli_backfill import _positive

            cmd.add_argument(
                "--batch-rows", type=_positive, default=DEFAULT_BATCH_ROWS,
                help=f"rows deleted per transaction (default {DEFAULT_BATCH_ROWS})",
            )  # fmt: skip
            cmd.add_argument(
                "--pause-s", type=_pause, default=DEFAULT_PAUSE_S,
                help=f"seconds between two batches of a table (default {DEFAULT_PAUSE_S})",
            )  # fmt: skip

    config = sub.add_parser("config", help="collectors config").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser("check", help="load and validate the config, print the effective settings")
    check.add_argument("--file", help="config file (default: COLLECTOR_CONFIG or config/collectors.yaml)")
    check.set_defaults(handler=_config_check)

    collect = sub.add_parser(
        "collect", help="run the live collectors (no Prefect) until stopped or --duration"
    )
    collect.add_argument("--pairs", help="comma-separated instIds (default: every pair of the config)")
    collect.add_argument(
        "--duration", type=_seconds, help="stop after S seconds (default: until SIGINT/SIGTERM)"
    )
    collect.add_argument("--database-url", help="override DATABASE_URL")
    collect.set_defaults(handler=_collect)

    demo = sub.add_parser(
        "demo",
        help="collect from the local simulator through injected faults, cut a hole, then validate, backfill, "
        "validate and reaggregate as Prefect flow runs; check the truth",
    )
    demo.add_argument("--duration", type=_seconds, default=60.0, help="seconds of collection (default 60)")
    demo.add_argument("--db", default="data/demo.db", help="the demo's SQLite file, recreated each run")
    demo.set_defaults(handler=_demo)

    __import__("flows.cli_backfill", fromlist=["add_backfill"]).add_backfill(sub)  # backfill
    _add_simulate(sub)
    __import__("flows.cli_quality", fromlist=["add_commands"]).add_commands(sub)  # validate, reaggregate
    __import__("flows.cli_prefect", fromlist=["add_commands"]).add_commands(sub)  # serve, prefect up|down
    __import__("flows.cli_status", fromlist=["add_commands"]).add_commands(sub)  # status
    __import__("flows.cli_export", fromlist=["add_commands"]).add_commands(sub)  # export
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    """Logging in the format of ``--log-format``, else ``COLLECTOR_LOG_FORMAT``, else the config file's
    ``ops.log_format``, else text; the OKX API secrets masked (collectors/logs.py). Bad settings or a bad config
    file leave the text format: the command itself reports them."""
    from collectors.config import load_config
    from collectors.logs import configure_logging, settings_secrets
    from collectors.settings import load_settings

    log_format: str | None = args.log_format
    secrets: list[str] = []
    try:
        settings = load_settings()
    except ConfigError:
        settings = None
    if settings is not None:
        secrets = settings_secrets(settings)
        log_format = log_format or settings.collector_log_format
        if log_format is None and settings.collector_config.is_file():
            with contextlib.suppress(ConfigError):
                log_format = load_config(settings.collector_config).ops.log_format
    configure_logging(log_format or "text", verbose=args.verbose, secrets=secrets)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:  # messages may quote a file, a URL or an exchange's text: controls escaped
        print(printable(f"okx-collector: {exc}", keep="\n\t"), file=sys.stderr)
        return 2
    except CollectorError as exc:
        print(printable(f"okx-collector: {type(exc).__name__}: {exc}", keep="\n\t"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
