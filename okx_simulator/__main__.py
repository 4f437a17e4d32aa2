"""``python -m okx_simulator [options]``: run the OKX simulator (see docs/simulator.md)."""

from __future__ import annotations

import argparse

from okx_simulator.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m okx_simulator", description="Local OKX v5 simulator.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
