"""Spill files: rows the database could not take yet, kept on local disk until it can.

Layout: ``<spill_dir>/<n>.jsonl`` with ``n`` increasing; each line is ``{"t": table, "r": [values]}`` with
decimals as plain strings. A file is written to a temporary name, fsynced and renamed (and the folder fsynced),
so a crash never leaves half a file under a final name; a leftover ``.partial`` is recovered up to its last
complete line at the next start
(only a crash leaves one: a write that fails, say on a full disk, deletes its ``.partial`` because its rows stay
in memory). Files are replayed in order and deleted only after every row in them was
written; a crash during replay replays the file again, which the idempotent sinks absorb. A file that cannot
be read is moved aside as ``.bad`` and logged, never silently deleted. Bad rows go to ``dead-letters.jsonl``.
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
        try:
            count = self._write_lines(partial, batches)
        except BaseException:
            # the caller keeps these rows in memory: a .partial left here would be replayed later, after
            # newer states of the same rows (a candle would regress), so it must not survive
            partial.unlink(missing_ok=True)
            raise
        partial.rename(final)
        self._sync_dir()
        return final, count

    @staticmethod
    def _write_lines(partial: Path, batches: Sequence[tuple[TableSpec, Sequence[Row]]]) -> int:
        count = 0
        with partial.open("w", encoding="utf-8") as out:
            for spec, rows in batches:
                for row in rows:
                    out.write(json.dumps({"t": spec.table, "r": [encode_value(v) for v in row]}))
                    out.write("\n")
                    count += 1
            out.flush()
            os.fsync(out.fileno())
        return count

    def _sync_dir(self) -> None:
        """Make the rename itself durable (a power cut must not lose a file already released from memory)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def recover_partials(self) -> list[Path]:
        """Turn files a crash left half-written into ordinary spill files, cut at the last complete line.

        Their rows were lost from memory by the crash, so replaying what reached the disk can only help
        (writes are idempotent). Returns the recovered files.
        """
        recovered = []
        for partial in sorted(self.path.glob("*.partial")):
            data = partial.read_bytes()
            complete = data[: data.rfind(b"\n") + 1]
            if not complete:
                partial.unlink()
                continue
            existing = self.files()
            number = int(existing[-1].stem) + 1 if existing else 1
            final = self.path / f"{number:012d}.jsonl"
            final.write_bytes(complete)
            partial.unlink()
            recovered.append(final)
        if recovered:
            self._sync_dir()
        return recovered

    def quarantine(self, path: Path) -> Path:
        """Move an unreadable spill file aside (``<name>.bad``, or ``<name>.<n>.bad`` when an earlier file of the
        same name was quarantined: spill numbers restart once every file is replayed) so that it no longer
        blocks replay; an earlier ``.bad`` is never replaced."""
        bad = path.with_suffix(".bad")
        copy = 0
        while bad.exists():
            copy += 1
            bad = path.with_suffix(f".{copy}.bad")
        path.rename(bad)
        self._sync_dir()
        return bad

    @staticmethod
    def read(path: Path) -> Iterator[tuple[TableSpec, Row]]:
        """The rows of one file; raises ``ValueError`` naming the line for anything that does not decode."""
        with path.open(encoding="utf-8") as source:
            for number, line in enumerate(source, start=1):
                try:
                    item = json.loads(line)
                    spec = spec_named(item["t"])
                    row = decode_row(spec, item["r"])
                # every way a line can fail to decode: bad JSON or UTF-8 (ValueError), not an object or no
                # list of values (TypeError), unknown table (KeyError), a decimal column holding "buy"
                # (InvalidOperation, an ArithmeticError)
                except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                    raise ValueError(
                        f"{path}:{number}: unreadable spill line: {type(exc).__name__}: {exc}"
                    ) from exc
                yield spec, row

    @staticmethod
    def count_rows(path: Path) -> int:
        with path.open("rb") as source:
            return sum(1 for _ in source)
