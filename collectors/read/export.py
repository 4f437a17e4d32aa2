"""Read-API frames into files: one CSV or Parquet file per pair and kind, with the values exactly as stored.

* CSV (UTF-8, a header row, ``csv`` module quoting): decimals as their plain text with the stored scale
  (``43210.50``, ``0.00000001``: :func:`~collectors.model.format_decimal`, never an exponent); instants as
  ISO 8601 UTC with milliseconds (``2024-01-01T00:00:00.005Z``); booleans ``true`` / ``false``; an empty field
  for a missing value; book sides as the stored JSON (``[["43210.50","0.10",3],...]``).
* Parquet: decimals as ``string`` columns holding the same text as the CSV (one file's prices have many
  scales, which a ``decimal128`` column would pad to one: ``43210.50`` would read back as ``43210.50000000``);
  instants ``timestamp[ms, tz=UTC]``; integers ``int64`` (``int32`` for the 32-bit counters); booleans
  ``bool``; book sides the stored JSON text. The file's schema metadata ``okx_collector`` (JSON) names the
  kind, pair, exchange, the decimal columns and, for candles, the origin (``stored`` or ``rollup:1m``).

:func:`load_export` reads either file back into the read API's representation, so an exported file and the
API's frame compare exactly. Files are written to ``<name>.<random>.partial`` (this export's own) and renamed
when complete.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in requirements.txt

from collectors.errors import QueryError, StorageError
from collectors.model import format_decimal
from collectors.read.api import DEFAULT_CHUNK_ROWS, Instant, MarketData, range_ms, to_ms
from collectors.read.frames import BOOK_SIDES, frame_from_rows
from collectors.storage.tables import Kind, TableSpec, spec_named

__all__ = ["EXPORT_KINDS", "FORMATS", "ExportResult", "Format", "export", "export_path", "load_export"]

Format = Literal["csv", "parquet"]
FORMATS: Final = ("csv", "parquet")
# export kind -> stored table
EXPORT_KINDS: Final = {
    "trades": "trades",
    "candles": "candles",
    "books": "book_snapshots",
    "tickers": "tickers",
}
_TIME_COLUMN: Final = {"trades": "ts", "candles": "open_time", "books": "ts", "tickers": "ts"}
_META_KEY: Final = b"okx_collector"

# progress(rows written so far, fraction of the time range done, 0..1)
Progress = Callable[[int, float], None]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """One written file: its path, its rows and (candles) where they came from."""

    path: Path
    rows: int
    origin: str | None = None


def export_path(out_dir: Path, pair: str, kind: str, fmt: Format, timeframe: str | None = None) -> Path:
    """``<out_dir>/<pair>_<kind>[_<timeframe>].<fmt>``: one file per pair and kind. :class:`QueryError` when
    ``pair`` would make it something else than a file in ``out_dir`` (a separator, ``..``, a leading dot,
    a NUL byte: the read API refuses such pairs already, this keeps the file name safe on its own)."""
    if not pair or pair.startswith(".") or any(c in pair for c in ("/", "\\", "\x00")):
        raise QueryError(f"pair {pair!r} cannot name a file in {out_dir}")
    suffix = f"_{timeframe}" if kind == "candles" and timeframe else ""
    return out_dir / f"{pair}_{kind}{suffix}.{fmt}"


def _spec(kind: str) -> TableSpec:
    if kind not in EXPORT_KINDS:
        raise QueryError(f"unknown export kind {kind!r}; known: {', '.join(EXPORT_KINDS)}")
    return spec_named(EXPORT_KINDS[kind])


def export(
    md: MarketData,
    *,
    pair: str,
    kind: str,
    start: Instant,
    end: Instant,
    fmt: Format,
    out_dir: Path,
    timeframe: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the ``kind`` rows of ``pair`` in ``[start, end)`` to one file in ``out_dir`` (created), chunk by
    chunk (memory holds one chunk). Raises :class:`QueryError` for bad input before any file is opened."""
    spec = _spec(kind)
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if kind != "candles" and timeframe is not None:
        raise QueryError(f"--timeframe applies to candles only, not to {kind}")
    start_ms, end_ms = range_ms(start, end)
    frames = md.iter_kind(kind, pair, start_ms, end_ms, timeframe=timeframe, chunk_rows=chunk_rows)
    path = export_path(out_dir, pair, kind, fmt, timeframe)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StorageError(f"export: {out_dir} is not a folder", transient=False) from None
    except OSError as exc:
        raise StorageError(
            f"export: cannot make the folder {out_dir}: {exc.strerror}", transient=False
        ) from exc
    counted = _counting(frames, _TIME_COLUMN[kind], start_ms, end_ms, progress)
    # a partial file of this export's own (two exports of one pair never write into each other's), created
    # by the writers with the usual permissions
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        meta = (
            _write_csv(partial, spec, counted)
            if fmt == "csv"
            else _write_parquet(partial, spec, kind, counted)
        )
        os.replace(partial, path)
    except OSError as exc:  # a full disk (ENOSPC), a file size limit (EFBIG), no permission...
        reason = exc.strerror or str(exc)
        raise StorageError(
            f"export: cannot write {path}: {reason}; any earlier {path.name} is left as it was",
            transient=False,
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(path=path, rows=meta["rows"], origin=meta.get("origin"))


def _counting(
    frames: Iterator[pd.DataFrame], time: str, start_ms: int, end_ms: int, progress: Progress | None
) -> Iterator[pd.DataFrame]:
    rows = 0
    for frame in frames:
        rows += len(frame)
        if progress is not None and len(frame):
            reached = int(frame[time].iloc[-1].value // 1_000_000)
            progress(rows, min(1.0, max(0.0, (reached - start_ms) / (end_ms - start_ms))))
        yield frame
    if progress is not None:
        progress(rows, 1.0)


# --- text of each column kind ------------------------------------------------------------------------------


def _decimal_text(values: Iterable[Any]) -> list[str | None]:
    return [None if v is None else format_decimal(v) for v in values]


def _time_text(column: pd.Series) -> list[str | None]:
    ms = column.dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
    text = np.datetime_as_string(ms, unit="ms")
    return [None if t == "NaT" else f"{t}Z" for t in text.tolist()]


def _levels_text(values: Iterable[tuple[tuple[Decimal, Decimal, int | None], ...]]) -> list[str]:
    return [
        json.dumps([[format_decimal(p), format_decimal(s), o] for p, s, o in levels], separators=(",", ":"))
        for levels in values
    ]


def _csv_column(spec: TableSpec, name: str, column: pd.Series) -> list[Any]:
    if spec.table == "book_snapshots" and name in BOOK_SIDES:
        return _levels_text(column)
    kind = spec.kind_of(name)
    if kind is Kind.DECIMAL:
        return _decimal_text(column)
    if kind is Kind.TIME:
        return _time_text(column)
    if kind is Kind.BOOL:
        return ["true" if v else "false" for v in column.tolist()]
    return [None if v is pd.NA or v is None else v for v in column.tolist()]


def _write_csv(path: Path, spec: TableSpec, frames: Iterator[pd.DataFrame]) -> dict[str, Any]:
    meta: dict[str, Any] = {"rows": 0}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        header = False
        for frame in frames:
            if not header:
                writer.writerow(frame.columns)
                header = True
            meta["origin"] = frame.attrs.get("origin")
            columns = [_csv_column(spec, name, frame[name]) for name in frame.columns]
            writer.writerows(zip(*columns, strict=True))
            meta["rows"] += len(frame)
        handle.flush()
        os.fsync(handle.fileno())
    return meta


# --- parquet -------------------------------------------------------------------------------------------------


def _arrow_schema(spec: TableSpec, names: Sequence[str], metadata: dict[str, Any]) -> Any:
    import pyarrow as pa

    types = {
        Kind.TEXT: pa.string(),
        Kind.INT: pa.int64(),
        Kind.INT4: pa.int32(),
        Kind.DECIMAL: pa.string(),
        Kind.TIME: pa.timestamp("ms", tz="UTC"),
        Kind.BOOL: pa.bool_(),
    }
    fields = [pa.field(n, types[spec.kind_of(n)], nullable=True) for n in names]
    return pa.schema(fields, metadata={_META_KEY: json.dumps(metadata).encode()})


def _arrow_column(spec: TableSpec, name: str, column: pd.Series) -> list[Any]:
    kind = spec.kind_of(name)
    if kind is Kind.TIME:
        return [None if v is pd.NaT else int(v.value // 1_000_000) for v in column]
    if kind in (Kind.TEXT, Kind.DECIMAL) or (spec.table == "book_snapshots" and name in BOOK_SIDES):
        return _csv_column(spec, name, column)
    return [None if v is pd.NA or v is None else v for v in column.tolist()]


def _write_parquet(path: Path, spec: TableSpec, kind: str, frames: Iterator[pd.DataFrame]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[str, Any] = {"rows": 0}
    writer = None
    try:
        for frame in frames:
            if writer is None:
                info = {
                    "kind": kind, "exchange": frame.attrs.get("exchange"), "inst_id": frame.attrs.get("inst_id"),
                    "origin": frame.attrs.get("origin"),
                    "decimals": [n for n in frame.columns if spec.kind_of(n) is Kind.DECIMAL],
                }  # fmt: skip
                schema = _arrow_schema(spec, list(frame.columns), info)
                writer = pq.ParquetWriter(path, schema)
                meta["origin"] = info["origin"]
            arrays = [
                pa.array(_arrow_column(spec, n, frame[n]), type=schema.field(n).type) for n in frame.columns
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            meta["rows"] += len(frame)
    finally:
        if writer is not None:
            writer.close()
    return meta


# --- reading back --------------------------------------------------------------------------------------------


def load_export(path: Path, kind: str) -> pd.DataFrame:
    """An exported file as the read API's frame of ``kind`` (``Decimal`` values with the written scale,
    ``datetime64[ns, UTC]`` instants, level tuples for book sides), to compare or to go on working."""
    spec = _spec(kind)
    if path.suffix == ".parquet":
        names, columns = _parquet_columns(path)
    else:
        names, columns = _csv_columns(path)
    rows = list(zip(*(_values(spec, n, c) for n, c in zip(names, columns, strict=True)), strict=True))
    return frame_from_rows(spec, names, rows)


def _csv_columns(path: Path) -> tuple[list[str], list[list[str | None]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        names = next(reader)
        cells = [[c if c != "" else None for c in row] for row in reader]
    return names, [list(c) for c in zip(*cells, strict=True)] if cells else [[] for _ in names]


def _parquet_columns(path: Path) -> tuple[list[str], list[list[Any]]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    columns: list[list[Any]] = []
    for name in table.column_names:
        column = table.column(name)
        if str(column.type).startswith("timestamp"):
            column = column.cast("int64")
        columns.append(column.to_pylist())
    return list(table.column_names), columns


def _values(spec: TableSpec, name: str, values: list[Any]) -> list[Any]:
    """Cell values (CSV text, or Parquet's Python values) as the stored Python values of ``name``."""
    if spec.table == "book_snapshots" and name in BOOK_SIDES:
        return [v if isinstance(v, str) else json.dumps(v) for v in values]
    kind = spec.kind_of(name)
    if kind is Kind.DECIMAL:
        return [None if v is None else Decimal(v) for v in values]
    if kind is Kind.TIME:
        return [None if v is None else (v if isinstance(v, int) else _parse_ms(v)) for v in values]
    if kind in (Kind.INT, Kind.INT4):
        return [None if v is None else int(v) for v in values]
    if kind is Kind.BOOL:
        return [v if isinstance(v, bool) else v == "true" for v in values]
    return values


def _parse_ms(text: str) -> int:
    return to_ms(text)
