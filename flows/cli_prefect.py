"""``okx-collector serve`` and ``okx-collector prefect up|down``: the two ways to run the flows under Prefect.

``serve``: one process registers every deployment of prefect.yaml (same names, parameters, schedules and
concurrency limits, read through :mod:`flows.prefect_yaml`) with the Prefect API it is pointed at and runs
their flow runs as its subprocesses; no work pools, no workers. ``prefect up``: a local stack in the
background (server, work pools, global concurrency limits, automations, ``prefect deploy --all``, one worker
per pool) with pid files and logs under a state directory; ``prefect down`` stops exactly those processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from collectors.errors import ConfigError

__all__ = ["add_commands"]

ROOT = Path(__file__).resolve().parents[1]
# what serve runs at once when --limit is not given: every live deployment plus this many batch runs
BATCH_SLOTS = 4


def _serve(args: argparse.Namespace) -> int:
    from flows.prefect_yaml import job_env, load_specs, runner_deployment

    specs = load_specs(Path(args.prefect_file))
    if args.deployments:
        unknown = sorted(set(args.deployments) - {s.name for s in specs})
        if unknown:
            raise ConfigError(f"--deployment: {', '.join(unknown)} not in {args.prefect_file}")
        specs = [s for s in specs if s.name in args.deployments]
    for key, value in job_env(specs).items():  # every run started by serve inherits this environment
        os.environ.setdefault(key, value)
    os.chdir(ROOT)  # as prefect.yaml's pull step: runs start in the repository (config/, data/ are relative)
    live = sum(1 for s in specs if s.work_pool == "collectors")
    limit = args.limit if args.limit is not None else live + BATCH_SLOTS

    async def serve_all() -> None:
        from prefect.flows import aserve

        deployments = [await runner_deployment(s, ROOT) for s in specs]
        print(f"serving {len(deployments)} deployments of {args.prefect_file}, at most {limit} runs at once")
        await aserve(*deployments, limit=limit, pause_on_shutdown=False)

    asyncio.run(serve_all())
    return 0


def _up(args: argparse.Namespace) -> int:
    from flows.prefect_stack import Stack

    stack = Stack(state_dir=Path(args.state_dir), host=args.host, port=args.port, root=ROOT)
    stack.up(live_slots=args.live_slots, batch_slots=args.batch_slots, workers=not args.no_workers)
    print(f"Prefect is up: UI {stack.ui_url}; API {stack.api_url}")
    print(f"  state, pid files and logs: {stack.state_dir}")
    print(f"  use it from a shell: export PREFECT_API_URL={stack.api_url}")
    print("  stop it: okx-collector prefect down (make prefect-down)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from flows.prefect_stack import Stack

    stack = Stack(state_dir=Path(args.state_dir), host=args.host, port=args.port, root=ROOT)
    stopped = stack.down()
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` and ``prefect up|down`` on the ``okx-collector`` parser."""
    serve = sub.add_parser(
        "serve", help="serve prefect.yaml's deployments from this one process (no workers)"
    )
    serve.add_argument("--prefect-file", default=str(ROOT / "prefect.yaml"), help="default: the repo's")
    serve.add_argument(
        "--deployment", dest="deployments", action="append", help="serve only this one (repeatable)"
    )
    serve.add_argument(
        "--limit",
        type=_positive,
        help=f"flow runs at once (default: the live deployments + {BATCH_SLOTS}); live runs hold theirs for good",
    )
    serve.set_defaults(handler=_serve)

    stack = sub.add_parser("prefect", help="a local Prefect stack: server, pools, deployments, workers")
    commands = stack.add_subparsers(dest="prefect_command", required=True)
    default_dir = os.environ.get("OKX_PREFECT_STATE_DIR", "data/prefect")
    for name, handler, text in (
        ("up", _up, "start server and workers in the background, create pools/limits/automations, deploy"),
        ("down", _down, "stop the processes `prefect up` started (pid files in the state dir)"),
    ):
        cmd = commands.add_parser(name, help=text)
        cmd.add_argument(
            "--state-dir", default=default_dir, help=f"pid files, logs, PREFECT_HOME ({default_dir})"
        )
        cmd.add_argument("--host", default="127.0.0.1", help="the server's address (default 127.0.0.1)")
        cmd.add_argument("--port", type=_positive, default=4200, help="the server's port (default 4200)")
        cmd.set_defaults(handler=handler)
        if name == "up":
            cmd.add_argument(
                "--live-slots", type=_positive, default=4, help="live runs the collectors worker takes"
            )
            cmd.add_argument("--batch-slots", type=_positive, default=BATCH_SLOTS, help="batch runs at once")
            cmd.add_argument("--no-workers", action="store_true", help="server and deployments only")
