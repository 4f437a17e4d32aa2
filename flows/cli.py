"""``okx-collector``: the command line.

Each subcommand builds settings once at this edge and calls library code. Heavy imports (Prefect, the
simulator) happen inside the subcommand that needs them, so ``okx-collector config check`` stays fast.
Exit codes: 0 success, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from collectors.errors import CollectorError, ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from collectors.settings import Settings

__all__ = ["build_parser", "main"]

log = logging.getLogger("okx_collector")


@contextlib.contextmanager
def _database(args: argparse.Namespace) -> Iterator[tuple[Settings, Engine]]:
    """Settings (with ``--database-url`` applied) and an engine that is disposed afterwards."""
    from collectors.settings import load_settings
    from collectors.storage.engine import make_engine

    settings = load_settings(**({"database_url": args.database_url} if args.database_url else {}))
    engine = make_engine(settings.database_url)
    try:
        yield settings, engine
    finally:
        engine.dispose()


def _db_upgrade(args: argparse.Namespace) -> int:
    from collectors.storage.migrate import head_revision, upgrade

    with _database(args) as (settings, engine):
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
        deleted = purge_expired(engine, config.retention, now_ms=time.time_ns() // 1_000_000)
    for table, count in deleted.items():
        print(f"{table}: {count} rows deleted")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="okx-collector", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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

    config = sub.add_parser("config", help="collectors config").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser("check", help="load and validate the config, print the effective settings")
    check.add_argument("--file", help="config file (default: COLLECTOR_CONFIG or config/collectors.yaml)")
    check.set_defaults(handler=_config_check)

    _add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"okx-collector: {exc}", file=sys.stderr)
        return 2
    except CollectorError as exc:
        print(f"okx-collector: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
