"""Benchmark runner: ``python -m benchmarks [--only NAME ...] [--quick]``.

Discovers ``benchmarks/bench_<name>.py``, runs each module's ``run(quick)``, prints a table and writes
``benchmarks/results/latest.json``: a list of {"name", "metric", "value", "unit", "baseline",
"baseline_value", "ratio", "params"} where ratio = value / baseline_value, both measured in this run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIELDS = ("name", "metric", "value", "unit", "baseline", "baseline_value", "ratio", "params")


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def _check(entry: dict[str, Any], module: str) -> dict[str, Any]:
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise ValueError(f"benchmark {module} returned an entry without {missing}: {entry}")
    return {f: entry[f] for f in FIELDS}


def _table(entries: list[dict[str, Any]]) -> str:
    rows = [("name", "value", "baseline", "baseline value", "ratio")]
    for e in entries:
        rows.append(
            (
                e["name"],
                f"{e['value']:,.1f} {e['unit']}",
                e["baseline"],
                f"{e['baseline_value']:,.1f} {e['unit']}",
                f"{e['ratio']:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=discover(), help="run only this benchmark module")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run, figures not meaningful"
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)

    entries: list[dict[str, Any]] = []
    for name in args.only or discover():
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        entries.extend(_check(e, name) for e in module.run(quick=args.quick))
        print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(entries, indent=2) + "\n")
    print(_table(entries))
    print(f"\n{len(entries)} entries written to {args.output} (python {platform.python_version()}, "
          f"{platform.machine()}{', QUICK run' if args.quick else ''})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
