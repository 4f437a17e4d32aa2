"""The read API: stored market data of one pair over a UTC range, as pandas DataFrames with exact values.

::

    from collectors.read import MarketData

    with MarketData("postgresql://user@host/marketdata") as md:   # or "sqlite:///data/marketdata.db"
        trades = md.trades("BTC-USDT", "2026-11-20T10:00Z", "2026-11-20T11:00Z")
        hourly = md.candles("BTC-USDT", "1h", "2026-11-20", "2026-11-21")
        hourly.attrs["origin"]                     # "stored", or "rollup:1m" when built from 1m candles
        for chunk in md.iter_trades("BTC-USDT", "2026-11-01", "2026-11-21", chunk_rows=200_000):
            ...

Values: see :mod:`collectors.read.frames` (``Decimal`` in object columns, ``datetime64[ns, UTC]`` instants).
Ranges are half-open ``[start, end)`` on the row's time column (``ts``; ``open_time`` for candles); coverage
spans are those overlapping the range. Instants are ``int`` epoch milliseconds, aware ``datetime`` /
``pandas.Timestamp``, or ISO 8601 text (UTC unless it gives an offset); a bound between two milliseconds acts
as the next one (stored instants are whole milliseconds). Bad input (unknown pair, a pair name the exchange's
symbol rule refuses, timeframe or bar, empty or reversed range, naive datetime, a bound outside the years
1-9999, ``chunk_rows`` < 1) raises :class:`~collectors.errors.QueryError`; database failures (and a SQLite
file that does not exist: reading never creates one) :class:`~collectors.errors.StorageError`. Blocking
calls: from async code run them in a thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in requirements.txt
from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from collectors.candles import rollup
from collectors.errors import CollectorError, QueryError
from collectors.model import Candle, DataType, Timeframe
from collectors.quality.plan import parse_instant
from collectors.quality.reads import coverage_spans
from collectors.read.frames import empty_frame, frame_from_rows
from collectors.read.query import TableRead, has_rows, pages
from collectors.storage.engine import make_engine, storage_error
from collectors.storage.reads import candle_from_row
from collectors.storage.records import no_data_spans
from collectors.storage.schema import Base
from collectors.storage.tables import CANDLES
from collectors.storage.types import EPOCH, datetime_to_ms

if TYPE_CHECKING:
    from collectors.exchanges.spec import ExchangeSpec

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "KINDS",
    "ROLLUP_SOURCE",
    "CandleOrigin",
    "Instant",
    "MarketData",
    "range_ms",
    "to_ms",
]

Instant = int | datetime | str
CandleOrigin = Literal["auto", "stored", "rollup"]

DEFAULT_CHUNK_ROWS: Final = 100_000
ROLLUP_SOURCE: Final = "1m"  # candles of timeframes not stored are rolled up from these
KINDS: Final = ("trades", "candles", "books", "tickers", "exchange_candles", "coverage")

# The instants a range may name: what Python's datetime (so PostgreSQL's driver) and SQLite both hold.
_MIN_MS: Final = datetime_to_ms(datetime.min.replace(tzinfo=UTC))
_MAX_MS: Final = datetime_to_ms(datetime.max.replace(tzinfo=UTC))
_LIMITS: Final = "0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z"
_ONE_MS: Final = timedelta(milliseconds=1)

_TRADES: Final = TableRead("trades", key=("ts", "trade_id"), time="ts")
_CANDLES: Final = TableRead("candles", key=("open_time",), time="open_time")
_BOOKS: Final = TableRead("book_snapshots", key=("ts",), time="ts")
_TICKERS: Final = TableRead("tickers", key=("ts",), time="ts")
_EXCHANGE_CANDLES: Final = TableRead("exchange_candles", key=("open_time",), time="open_time")
_COVERAGE: Final = TableRead("coverage", key=("start_time", "id"), time="start_time", span_end="end_time")


def to_ms(value: Instant, *, name: str = "instant") -> int:
    """An instant as UTC epoch milliseconds (sub-millisecond parts floor); :class:`QueryError` for a naive
    ``datetime`` (which zone?), text that is not ISO 8601, or another type."""
    if isinstance(value, bool) or not isinstance(value, int | datetime | str):
        raise QueryError(f"{name}: expected int milliseconds, an aware datetime or ISO text, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_instant(value)
        except CollectorError as exc:
            raise QueryError(f"{name}: {exc}") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise QueryError(f"{name}: naive datetime {value.isoformat()}: give it a time zone (UTC)")
    return datetime_to_ms(value)


def _bound_ms(value: Instant, name: str) -> int:
    """A range bound as whole milliseconds: an instant between two milliseconds acts as the next one (stored
    instants are whole milliseconds, so ``ts >= 5.5`` means ``ts >= 6`` and ``ts < 5.5`` means ``ts < 6``);
    :class:`QueryError` outside the instants both databases hold (years 1 to 9999)."""
    ms = to_ms(value, name=name)
    if isinstance(value, datetime):
        ms += (value - EPOCH) % _ONE_MS != timedelta(0)
    elif isinstance(value, str):
        ms += datetime.fromisoformat(value.strip()).microsecond % 1000 != 0  # parsed by to_ms already
    if not _MIN_MS <= ms <= _MAX_MS:
        raise QueryError(f"{name}: {value!r} is outside {_LIMITS}, the instants the databases hold")
    return ms


def range_ms(start: Instant, end: Instant) -> tuple[int, int]:
    """``[start, end)`` as whole UTC milliseconds (see :func:`_bound_ms`); :class:`QueryError` when it is
    empty or reversed or a bound is not an instant."""
    start_ms, end_ms = _bound_ms(start, "start"), _bound_ms(end, "end")
    if end_ms <= start_ms:
        raise QueryError(f"empty or reversed range: start {start!r} is not before end {end!r}")
    return start_ms, end_ms


def _chunk_rows(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise QueryError(f"chunk_rows must be a whole number >= 1, got {value!r}")
    return value


def _timeframe(name: str) -> Timeframe:
    try:
        return Timeframe.parse(name)
    except ValueError as exc:
        raise QueryError(str(exc)) from None


class MarketData:
    """Reads of one exchange's stored data (``exchange`` as stored, ``"okx"`` by default).

    Give an :class:`~sqlalchemy.Engine` (the caller keeps owning it) or a database URL (the reader makes the
    engine and disposes of it in :meth:`close` / at the end of a ``with`` block)."""

    def __init__(self, db: Engine | str, *, exchange: str = "okx") -> None:
        self._owned = isinstance(db, str)
        self.engine: Engine = make_engine(db, create=False) if isinstance(db, str) else db  # never a new file
        self.exchange = exchange

    def __enter__(self) -> MarketData:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Dispose of the engine when this reader made it."""
        if self._owned:
            self.engine.dispose()

    # --- whole ranges -------------------------------------------------------------------------------------

    def trades(self, pair: str, start: Instant, end: Instant) -> pd.DataFrame:
        """Trades with ``start <= ts < end``, by ``(ts, trade_id)``."""
        return _whole(self.iter_trades(pair, start, end, chunk_rows=None))

    def candles(
        self, pair: str, timeframe: str, start: Instant, end: Instant, *, origin: CandleOrigin = "auto"
    ) -> pd.DataFrame:
        """Our candles of ``timeframe`` opening in ``[start, end)``, by open time; ``attrs["origin"]`` says
        where they come from. ``origin="auto"``: the stored candles when the pair has any of ``timeframe`` in
        the range, else rolled up from the stored 1m candles; ``"stored"`` / ``"rollup"`` force one. See
        :meth:`iter_candles` for the rolled-up values."""
        return _whole(self.iter_candles(pair, timeframe, start, end, origin=origin, chunk_rows=None))

    def books(self, pair: str, start: Instant, end: Instant) -> pd.DataFrame:
        """Book snapshots with ``start <= ts < end``, by ``ts``; ``bids``/``asks`` as level tuples."""
        return _whole(self.iter_books(pair, start, end, chunk_rows=None))

    def tickers(self, pair: str, start: Instant, end: Instant) -> pd.DataFrame:
        """Tickers with ``start <= ts < end``, by ``ts``."""
        return _whole(self.iter_tickers(pair, start, end, chunk_rows=None))

    def exchange_candles(self, pair: str, bar: str, start: Instant, end: Instant) -> pd.DataFrame:
        """The exchange's own candles of ``bar`` opening in ``[start, end)``. ``bar`` is the exchange's name
        (OKX ``1H``, ``1Dutc``) or our timeframe (``1h``, ``1d``), which maps to the exchange's UTC-aligned bar."""
        return _whole(self.iter_exchange_candles(pair, bar, start, end, chunk_rows=None))

    def coverage(
        self, pair: str, start: Instant, end: Instant, *, data_type: DataType | str | None = None
    ) -> pd.DataFrame:
        """Coverage-ledger spans overlapping ``[start, end)`` (every data type, or ``data_type``), by
        ``(start_time, id)``: ``data_type, start_time, end_time, status, reason, updated_at``."""
        start_ms, end_ms = range_ms(start, end)
        where = self._pair_where(pair, _COVERAGE)
        if data_type is not None:
            try:
                kind = DataType(data_type)
            except ValueError:
                known = ", ".join(d.value for d in DataType)
                raise QueryError(f"unknown data type {data_type!r}; known: {known}") from None
            where.append(_COVERAGE.sa_table.c.data_type == kind.value)
        return _whole(self._frames(_COVERAGE, where, start_ms, end_ms, None, kind="coverage", pair=pair))

    # --- chunks ---------------------------------------------------------------------------------------------

    def iter_trades(
        self, pair: str, start: Instant, end: Instant, *, chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        """:meth:`trades` in frames of at most ``chunk_rows`` rows (keyset pages; ``None``: one frame)."""
        return self._simple(_TRADES, pair, start, end, chunk_rows, kind="trades")

    def iter_books(
        self, pair: str, start: Instant, end: Instant, *, chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        """:meth:`books` in frames of at most ``chunk_rows`` rows."""
        return self._simple(_BOOKS, pair, start, end, chunk_rows, kind="books")

    def iter_tickers(
        self, pair: str, start: Instant, end: Instant, *, chunk_rows: int | None = DEFAULT_CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        """:meth:`tickers` in frames of at most ``chunk_rows`` rows."""
        return self._simple(_TICKERS, pair, start, end, chunk_rows, kind="tickers")

    def iter_exchange_candles(
        self,
        pair: str,
        bar: str,
        start: Instant,
        end: Instant,
        *,
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`exchange_candles` in frames of at most ``chunk_rows`` rows."""
        start_ms, end_ms = range_ms(start, end)
        bar_name = self._bar(bar)
        where = self._pair_where(pair, _EXCHANGE_CANDLES)
        where.append(_EXCHANGE_CANDLES.sa_table.c.timeframe == bar_name)
        rows = _rows_or_all(chunk_rows)
        return self._frames(
            _EXCHANGE_CANDLES, where, start_ms, end_ms, rows, kind="exchange_candles", pair=pair
        )

    def iter_candles(
        self,
        pair: str,
        timeframe: str,
        start: Instant,
        end: Instant,
        *,
        origin: CandleOrigin = "auto",
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """:meth:`candles` in frames. Stored candles: at most ``chunk_rows`` rows a frame. Rolled up: whole
        buckets of ``timeframe`` a frame, as many as keep the 1m candles read per frame within ``chunk_rows``
        (at least one bucket).

        Rolled-up candles are :func:`collectors.candles.rollup` of the stored 1m candles (the candle engine's
        rule, equal to aggregating the trades): ``is_complete`` also counts the coverage ledger's no-data time
        (:func:`collectors.storage.records.no_data_spans`), buckets without trades are absent, ``source`` is the
        first minute's and ``revision`` 0, ``updated_at`` the newest of its minutes. ``is_closed`` is true only
        when every minute is closed and a stored 1m candle opens at or after the bucket's end (the bucket
        cannot gain trades the collector has not yet seen).
        """
        tf = _timeframe(timeframe)
        if origin not in ("auto", "stored", "rollup"):
            raise QueryError(f"origin must be 'auto', 'stored' or 'rollup', got {origin!r}")
        start_ms, end_ms = range_ms(start, end)
        rows = _rows_or_all(chunk_rows)
        where = self._pair_where(pair, _CANDLES)
        c = _CANDLES.sa_table.c
        if not Timeframe.parse(ROLLUP_SOURCE).nests_in(tf):
            if origin == "rollup":
                raise QueryError(
                    f"{tf.name} candles cannot be rolled up from {ROLLUP_SOURCE} (finer than it): "
                    "only stored ones are read"
                )
            origin = "stored"
        if origin == "auto":
            in_range = [c.timeframe == tf.name, c.open_time >= start_ms, c.open_time < end_ms]
            stored = has_rows(self.engine, "candles", [*where, *in_range])
            origin = "stored" if stored else "rollup"
        if origin == "stored":
            frames = self._frames(
                _CANDLES, [*where, c.timeframe == tf.name], start_ms, end_ms, rows, kind="candles", pair=pair
            )
            return _with_attrs(frames, origin="stored")
        return _with_attrs(
            self._rolled_up(pair, tf, start_ms, end_ms, rows), origin=f"rollup:{ROLLUP_SOURCE}"
        )

    def iter_kind(
        self,
        kind: str,
        pair: str,
        start: Instant,
        end: Instant,
        *,
        timeframe: str | None = None,
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        """The chunks of one of :data:`KINDS` by name (``timeframe`` for candles and exchange candles)."""
        if kind in ("candles", "exchange_candles"):
            if timeframe is None:
                raise QueryError(f"{kind} need a timeframe")
            if kind == "candles":
                return self.iter_candles(pair, timeframe, start, end, chunk_rows=chunk_rows)
            return self.iter_exchange_candles(pair, timeframe, start, end, chunk_rows=chunk_rows)
        simple = {"trades": self.iter_trades, "books": self.iter_books, "tickers": self.iter_tickers}
        if kind == "coverage":
            return iter([self.coverage(pair, start, end)])
        if kind not in simple:
            raise QueryError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        return simple[kind](pair, start, end, chunk_rows=chunk_rows)

    def pairs(self) -> list[str]:
        """The pairs this database knows for the exchange: in ``instruments`` or in the coverage ledger."""
        tables = Base.metadata.tables
        found: set[str] = set()
        for name in ("instruments", "coverage"):
            t = tables[name]
            query = select(t.c.inst_id).where(t.c.exchange == self.exchange).distinct()
            try:
                with self.engine.connect() as conn:
                    found.update(str(v) for v in conn.scalars(query))
            except SQLAlchemyError as exc:
                raise storage_error(exc, table=name, action="reading") from exc
        return sorted(found)

    # --- internals ----------------------------------------------------------------------------------------

    def _pair_where(self, pair: str, read: TableRead) -> list[ColumnElement[bool]]:
        """The rows of ``pair``; :class:`QueryError` when the database knows nothing of it (no instrument, no
        coverage span, no row in ``read``'s table)."""
        if not isinstance(pair, str) or not pair:
            raise QueryError(f"pair must be a non-empty instId such as 'BTC-USDT', got {pair!r}")
        self._check_symbol(pair)
        c = read.sa_table.c
        where: list[ColumnElement[bool]] = [c.exchange == self.exchange, c.inst_id == pair]
        tables = Base.metadata.tables
        for name in ("instruments", "coverage", read.table):
            t = tables[name]
            if has_rows(self.engine, name, [t.c.exchange == self.exchange, t.c.inst_id == pair]):
                return where
        known = self.pairs()
        shown = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
        raise QueryError(
            f"unknown pair {pair!r} on {self.exchange}: nothing stored for it; known: {shown or 'none'}"
        )

    def _spec(self) -> ExchangeSpec:
        from collectors.exchanges.registry import default_registry

        try:
            return default_registry().get(self.exchange)
        except CollectorError as exc:
            raise QueryError(str(exc)) from None

    def _check_symbol(self, pair: str) -> None:
        """A name the exchange's own symbol rule refuses was never stored (a NUL byte, which PostgreSQL
        refuses as a database error, lower case, a path): say so before asking the database. An exchange
        the registry does not know (data of a plug-in not installed here) is read without the check."""
        from collectors.exchanges.registry import default_registry

        registry = default_registry()
        if self.exchange not in registry.names():
            return
        try:
            registry.get(self.exchange).validate_symbol(pair)
        except ValueError as exc:
            raise QueryError(f"pair: {exc}") from None

    def _bar(self, bar: str) -> str:
        bars = self._spec().bars
        if bar in bars.values():
            return bar
        if bar in bars:
            return bars[bar]
        raise QueryError(f"unknown bar {bar!r} for {self.exchange}; known: {', '.join(bars.values())}")

    def _simple(
        self, read: TableRead, pair: str, start: Instant, end: Instant, chunk_rows: int | None, *, kind: str
    ) -> Iterator[pd.DataFrame]:
        start_ms, end_ms = range_ms(start, end)
        where = self._pair_where(pair, read)
        return self._frames(read, where, start_ms, end_ms, _rows_or_all(chunk_rows), kind=kind, pair=pair)

    def _frames(
        self,
        read: TableRead,
        where: Sequence[ColumnElement[bool]],
        start_ms: int,
        end_ms: int,
        chunk_rows: int | None,
        *,
        kind: str,
        pair: str,
    ) -> Iterator[pd.DataFrame]:
        attrs = {"kind": kind, "exchange": self.exchange, "inst_id": pair}
        names = read.columns
        seen = False
        for rows in pages(
            self.engine,
            read,
            where=where,
            start_ms=start_ms,
            end_ms=end_ms,
            page_rows=chunk_rows,
            raw_times=True,
        ):
            seen = True
            yield _attrs(frame_from_rows(read.spec, names, rows), attrs)
        if not seen:
            yield _attrs(empty_frame(read.spec, names), attrs)

    def _rolled_up(
        self, pair: str, tf: Timeframe, start_ms: int, end_ms: int, chunk_rows: int | None
    ) -> Iterator[pd.DataFrame]:
        attrs = {"kind": "candles", "exchange": self.exchange, "inst_id": pair}
        source = Timeframe.parse(ROLLUP_SOURCE)
        first = tf.bucket_start_ms(start_ms)
        first = first if first == start_ms else first + tf.duration_ms  # the first bucket opening >= start
        stop = tf.bucket_start_ms(end_ms - 1) + tf.duration_ms  # the end of the last bucket opening < end
        if first >= stop:
            yield _attrs(empty_frame(CANDLES, CANDLES.names), attrs)
            return
        per_bucket = tf.duration_ms // source.duration_ms
        buckets = max(1, chunk_rows // per_bucket) if chunk_rows is not None else None
        newest = self._newest_open(pair, source.name)
        cursor = first
        while cursor < stop:
            slice_end = stop if buckets is None else min(stop, cursor + buckets * tf.duration_ms)
            yield _attrs(self._rollup_slice(pair, tf, source, cursor, slice_end, newest), attrs)
            cursor = slice_end

    def _newest_open(self, pair: str, timeframe: str) -> int | None:
        c = _CANDLES.sa_table.c
        query = select(func.max(c.open_time)).where(
            c.exchange == self.exchange, c.inst_id == pair, c.timeframe == timeframe
        )
        try:
            with self.engine.connect() as conn:
                value = conn.scalar(query)
        except SQLAlchemyError as exc:
            raise storage_error(exc, table="candles", action="reading") from exc
        return None if value is None else int(value)

    def _rollup_slice(
        self, pair: str, tf: Timeframe, source: Timeframe, start_ms: int, end_ms: int, newest: int | None
    ) -> pd.DataFrame:
        c = _CANDLES.sa_table.c
        where = [c.exchange == self.exchange, c.inst_id == pair, c.timeframe == source.name]
        fine: list[Candle] = []
        updated: dict[int, int] = {}
        for rows in pages(
            self.engine, _CANDLES, where=where, start_ms=start_ms, end_ms=end_ms, page_rows=None
        ):
            for row in rows:
                candle = candle_from_row(_Row(zip(_CANDLES.columns, row, strict=True)))
                fine.append(candle)
                bucket = tf.bucket_start_ms(candle.open_time_ms)
                updated[bucket] = max(updated.get(bucket, 0), int(row[_CANDLES.columns.index("updated_at")]))
        spans = coverage_spans(
            self.engine, exchange=self.exchange, inst_id=pair, data_type=DataType.TRADES,
            start_ms=start_ms, end_ms=end_ms,
        )  # fmt: skip
        candles = rollup(fine, tf.name, no_data=no_data_spans(spans, start_ms, end_ms)) if fine else []
        out = []
        for candle in candles:
            closed = (
                candle.is_closed and newest is not None and newest >= candle.open_time_ms + tf.duration_ms
            )
            row = CANDLES.to_row(dataclasses.replace(candle, is_closed=closed), 0)
            out.append((*row[:-1], updated.get(candle.open_time_ms)))
        return frame_from_rows(CANDLES, CANDLES.names, out, nullable=("updated_at",))


class _Row(dict[str, Any]):
    """A dict whose keys read as attributes (what :func:`candle_from_row` takes)."""

    def __getattr__(self, name: str) -> Any:
        return self[name]


def _rows_or_all(chunk_rows: int | None) -> int | None:
    return None if chunk_rows is None else _chunk_rows(chunk_rows)


def _attrs(frame: pd.DataFrame, attrs: dict[str, str]) -> pd.DataFrame:
    frame.attrs.update(attrs)
    return frame


def _with_attrs(frames: Iterator[pd.DataFrame], **attrs: str) -> Iterator[pd.DataFrame]:
    for frame in frames:
        yield _attrs(frame, attrs)


def _whole(frames: Iterator[pd.DataFrame]) -> pd.DataFrame:
    """The one frame of a read with ``chunk_rows=None`` (rolled-up candles may still come in several)."""
    parts = list(frames)
    if len(parts) == 1:
        return parts[0]
    whole = pd.concat(parts, ignore_index=True)
    whole.attrs = dict(parts[0].attrs)
    return whole
