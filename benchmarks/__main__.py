"""Benchmark runner: ``python -m benchmarks [--only NAME ...] [--quick]``.

Discovers ``benchmarks/bench_<name>.py``, runs each module's ``run(quick)``, prints a table and writes
``benchmarks/results/latest.json``: a list of {"name", "metric", "value", "unit", "baseline",
"baseline_value", "ratio", "params"} where ratio = value / baseline_value, both measured in this run.
Entries are named ``<module>.<what>``. A run of some modules (``--only``) replaces only those modules' entries in
the output file and keeps the others' latest figures, so the file always holds every benchmark's last run.
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


def merge(
    previous: list[dict[str, Any]], fresh: list[dict[str, Any]], modules: list[str]
) -> list[dict[str, Any]]:
    """``previous`` without the entries of the modules run now, then ``fresh``."""
    prefixes = tuple(f"{m}." for m in modules)
    kept = [e for e in previous if not str(e.get("name", "")).startswith(prefixes)]
    return kept + fresh


def _previous(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path} is not valid JSON ({exc}); move it away or fix it") from None
    if not isinstance(data, list):
        raise SystemExit(f"{path} does not hold a list of entries; move it away or fix it")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=discover(), help="run only this benchmark module")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run, figures not meaningful"
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)

    modules = args.only or discover()
    entries: list[dict[str, Any]] = []
    for name in modules:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        entries.extend(_check(e, name) for e in module.run(quick=args.quick))
        print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    stored = merge(_previous(args.output), entries, modules)
    args.output.write_text(json.dumps(stored, indent=2) + "\n")
    print(_table(entries))
    print(f"\n{len(entries)} entries written to {args.output} (python {platform.python_version()}, "
          f"{platform.machine()}{', QUICK run' if args.quick else ''})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
