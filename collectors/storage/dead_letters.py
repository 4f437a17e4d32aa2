"""Dead letters: rows refused for their values, kept with the error instead of being written.

Each goes to ``<spill_dir>/dead-letters.jsonl`` (one JSON line: table, encoded values, error), or stays in
memory (:attr:`DeadLetters.entries`) without a spill dir or when that file cannot be written; every one is
logged. ``count`` also includes the rows of spill files moved aside as ``.bad`` (not written either).
Called on the writer's thread (file I/O); the event loop only reads ``count`` and ``entries``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from collectors.storage.tables import Row, TableSpec, encode_value

__all__ = ["DeadLetters"]

log = logging.getLogger(__name__)

FILE_NAME = "dead-letters.jsonl"


class DeadLetters:
    def __init__(self, folder: Path | None) -> None:
        self._path = folder / FILE_NAME if folder is not None else None
        self.entries: list[tuple[str, Row, str]] = []  # (table, row, error) not written to a file
        self.count = 0

    def add(self, spec: TableSpec, row: Row, error: str) -> None:
        """Keep ``row`` with ``error``; never raises for the file (a full disk must not stop the good rows)."""
        self.count += 1
        log.error("row rejected by %s and dead-lettered: %s; row=%r", spec.table, error, row)
        if self._path is None:
            self.entries.append((spec.table, row, error))
            return
        line = json.dumps(
            {"t": spec.table, "r": [encode_value(v) for v in row], "error": error}, default=repr
        )
        try:
            with self._path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
        except OSError as exc:  # a full or read-only disk must not stop the good rows: keep it in memory
            log.error("cannot append to %s (%s); the dead letter is kept in memory", self._path, exc)
            self.entries.append((spec.table, row, error))

    def set_aside(self, rows: int) -> None:
        """Count ``rows`` kept aside unwritten (in a ``.bad`` spill file) as dead."""
        self.count += rows
