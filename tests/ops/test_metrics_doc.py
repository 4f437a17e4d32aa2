"""Every metric the endpoint serves is in docs/observability.md's table with its type, and nothing else is."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from collectors.ops.metrics import PREFIX, metric_families
from tests.ops.test_server import pair, snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def test_the_documented_metrics_are_the_served_ones() -> None:
    snap = dataclasses.replace(snapshot(pair("BTC-USDT", "live")), rest_requests={"/x": 1})
    served = {
        (f.name.removeprefix(PREFIX) + ("_total" if f.type == "counter" else ""), f.type)
        for f in metric_families(snap)
    }
    rows = re.findall(r"^\| `([a-z_]+)` \| (counter|gauge) \|", DOC.read_text(encoding="utf-8"), re.M)
    assert set(rows) == served
