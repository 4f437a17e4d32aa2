"""Every example in examples/ runs as a user runs it (a subprocess from the repository root) and says what it
should. The examples are found by glob (``examples/*.py`` but ``_*.py``, and ``examples/*.sh``), so a new one is
run without being listed here; each example checks its own result and exits non-zero otherwise, and the ones
known below also have their printed values checked."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from collectors.storage.migrate import head_revision
from tests.conftest import ADMIN_URL

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(
    [p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")]
    + list((ROOT / "examples").glob("*.sh"))
)


def _collect_and_query(out: str) -> None:
    pairs = re.findall(
        r"^(\S+): trades (\d+) \(ids (\d+)-(\d+)\), truth (\d+), missing (\d+), wrong (\d+)", out, re.M
    )
    assert [p[0] for p in pairs] == ["BTC-USDT", "ETH-USDT"]
    for _, trades, first, last, truth, missing, wrong in pairs:
        assert int(trades) == int(truth) == int(last) - int(first) + 1 > 0  # contiguous ids, all of the tape
        assert missing == wrong == "0"
    counted = re.findall(r"candles count (\d+) trades of (\d+)", out)
    assert len(counted) == 2 and all(
        a == b == trades for (a, b), (_, trades, *_) in zip(counted, pairs, strict=True)
    )


def _validate_range(out: str) -> None:
    found = re.search(r"trade_gap found: True \(trade ids (\d+)-(\d+) missing \(5\)\)", out)
    assert found and int(found.group(2)) - int(found.group(1)) + 1 == 5
    assert re.search(r"^BTC-USDT\s+1\s+5\s+5\s+", out, re.M)  # backfill: 1 hole, 5 ids, 5 trades stored
    assert out.count("  exit 0, 0 findings") == 1  # the second validate


def _backfill_range(out: str) -> None:
    counts = re.search(r"stored (\d+), truth (\d+), missing 0, extra 0, wrong 0", out)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 0
    minutes = re.findall(r"^  1m (\S+) .* n=(\d+) complete=(\w+) source=(\w+)$", out, re.M)
    quiet = re.search(r"^quiet minutes \(no trade, no candle\): (.*)$", out, re.M)
    assert quiet is not None
    assert len(minutes) + (0 if quiet.group(1) == "none" else len(quiet.group(1).split(", "))) == 3
    assert sum(int(m[1]) for m in minutes) == int(counts.group(1))
    assert [m[2] for m in minutes] == ["True"] * len(minutes)
    assert {m[3] for m in minutes} <= {"backfill"}  # the range's newest minute too: no reaggregate needed


def _backup_restore(out: str) -> None:
    head = head_revision()
    assert f"sqlite: 4 rows restored identical; current revision: {head}; head: {head}" in out
    assert f"postgresql: 4 rows restored identical; current revision: {head}; head: {head}" in out


CHECKS: dict[str, tuple[tuple[str, ...], Callable[[str], None]]] = {
    "collect_and_query.py": ((), _collect_and_query),
    "validate_range.py": ((), _validate_range),
    "backfill_range.py": ((), _backfill_range),
    "backup_restore.sh": ((ADMIN_URL,), _backup_restore),
}


def test_the_known_examples_exist() -> None:
    assert set(CHECKS) <= {p.name for p in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_runs_and_prints_what_it_should(example: Path) -> None:
    args, check = CHECKS.get(example.name, ((), None))
    command = [str(example), *args] if example.suffix == ".sh" else [sys.executable, str(example), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{example.name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{example.name} printed nothing"
    if check is not None:
        check(done.stdout)
