"""Spill files: rows the database could not take yet, kept on local disk until it can.

Layout: ``<spill_dir>/<n>.jsonl`` with ``n`` increasing; each line is ``{"t": table, "r": [values]}`` with
decimals as plain strings. A file is written to a temporary name and renamed, so a crash never leaves half a
file under a final name. Files are replayed in order and deleted only after every row in them was written;
a crash during replay replays the file again, which the idempotent sinks absorb.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from collectors.storage.tables import Row, TableSpec, decode_row, encode_value, spec_named

__all__ = ["SpillDir"]


class SpillDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted((p for p in self.path.glob("*.jsonl") if p.stem.isdigit()), key=lambda p: int(p.stem))

    def write(self, batches: Sequence[tuple[TableSpec, Sequence[Row]]]) -> tuple[Path, int]:
        """Write ``batches`` to a new spill file; returns its path and the row count."""
        existing = self.files()
        number = int(existing[-1].stem) + 1 if existing else 1
        final = self.path / f"{number:012d}.jsonl"
        partial = final.with_suffix(".partial")
        count = 0
        with partial.open("w", encoding="utf-8") as out:
            for spec, rows in batches:
                for row in rows:
                    out.write(json.dumps({"t": spec.table, "r": [encode_value(v) for v in row]}))
                    out.write("\n")
                    count += 1
            out.flush()
            os.fsync(out.fileno())
        partial.rename(final)
        return final, count

    @staticmethod
    def read(path: Path) -> Iterator[tuple[TableSpec, Row]]:
        with path.open(encoding="utf-8") as source:
            for number, line in enumerate(source, start=1):
                try:
                    item = json.loads(line)
                    spec = spec_named(item["t"])
                    yield spec, decode_row(spec, item["r"])
                except (ValueError, KeyError) as exc:
                    raise ValueError(f"{path}:{number}: unreadable spill line: {exc}") from exc

    @staticmethod
    def count_rows(path: Path) -> int:
        with path.open("rb") as source:
            return sum(1 for _ in source)
