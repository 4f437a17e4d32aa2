"""The benchmark runner keeps every module's last figures: a run of one module replaces only its own entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.__main__ import _previous, merge


def _e(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "value": value}


def test_a_run_of_one_module_keeps_the_other_modules_entries() -> None:
    previous = [_e("parse.trades_all", 1.0), _e("writer.sqlite.new_rows", 2.0), _e("parse.stages", 3.0)]
    fresh = [_e("parse.trades_all", 10.0)]
    assert merge(previous, fresh, ["parse"]) == [
        _e("writer.sqlite.new_rows", 2.0),
        _e("parse.trades_all", 10.0),
    ]


def test_a_module_name_that_prefixes_another_is_not_confused() -> None:
    previous = [_e("e2e.postgres.5000", 1.0), _e("e2ex.other", 2.0)]
    assert merge(previous, [], ["e2e"]) == [_e("e2ex.other", 2.0)]


def test_an_unreadable_results_file_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    assert _previous(path) == []
    path.write_text(json.dumps([_e("a.b", 1.0)]))
    assert _previous(path) == [_e("a.b", 1.0)]
    path.write_text("{broken")
    try:
        _previous(path)
    except SystemExit as exc:
        assert str(path) in str(exc)
    else:
        raise AssertionError("a broken results file was accepted")
