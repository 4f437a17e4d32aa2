"""The sinks convert checked batches column by column; every conversion keeps values exact on both databases.

* instants reach PostgreSQL's binary COPY as int8 microseconds since 2000-01-01 (timestamptz's own binary form),
  on the fast path and through the merge's staging table alike, at the edges of the accepted range too;
* decimals reach SQLite as :func:`~collectors.model.format_decimal` text, even where ``str`` would differ;
* the monotonic ranges of a batch with several partitions are kept per partition.
"""

from __future__ import annotations

import random
from decimal import Context, Decimal, localcontext
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from collectors.model import format_decimal
from collectors.storage.engine import make_engine
from collectors.storage.migrate import upgrade
from collectors.storage.schema import CandleRow
from collectors.storage.sinks import open_sink
from collectors.storage.tables import spec_for, spec_named
from collectors.storage.values import checked_chunks
from tests.builders import candle, trade
from tests.storage.helpers import stored_trades

YEAR_1 = -62_135_596_800_000  # 0001-01-01T00:00:00.000Z, the lowest accepted instant
YEAR_9999_END = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the highest
PG_EPOCH = 946_684_800_000  # 2000-01-01, the origin of PostgreSQL's binary timestamps
INSTANTS = [
    YEAR_1,
    YEAR_1 + 1,
    -1,
    0,
    1,
    PG_EPOCH - 1,
    PG_EPOCH,
    PG_EPOCH + 1,
    1_786_613_174_873,
    YEAR_9999_END,
]


def test_instants_round_trip_exactly_on_the_copy_and_merge_paths(engine: Engine) -> None:
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    first = [trade(i + 1, ts_ms=ms, recv_ms=ms) for i, ms in enumerate(INSTANTS)]
    new = sink.write(spec, [spec.to_row(t, 0) for t in first])
    assert new.written == len(INSTANTS)
    if engine.dialect.name == "postgresql":
        assert new.path == "copy"
    # an overlapping batch goes through the merge (PostgreSQL: COPY into the staging table, then INSERT)
    more = [trade(100 + i, ts_ms=ms, recv_ms=YEAR_9999_END - ms % 1000) for i, ms in enumerate(INSTANTS)]
    merged = sink.write(spec, [spec.to_row(t, 0) for t in [*first, *more]])
    assert (merged.written, merged.unchanged) == (len(INSTANTS), len(INSTANTS))
    if engine.dialect.name == "postgresql":
        assert merged.path == "merge"
    sink.close()
    stored = {r.trade_id: (r.ts, r.recv_time) for r in stored_trades(engine)}
    assert stored == {t.trade_id: (t.ts_ms, t.recv_ms) for t in [*first, *more]}


def test_a_null_instant_stays_null(engine: Engine) -> None:
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    rows = [spec.to_row(trade(1), 0), spec.to_row(trade(2), 0)]
    rows[1] = (*rows[1][:-1], None)  # recv_time is nullable
    sink.write(spec, rows)
    sink.close()
    assert [(r.trade_id, r.recv_time) for r in stored_trades(engine)] == [(1, trade(1).recv_ms), (2, None)]


def test_candle_instants_survive_the_revise_merge(engine: Engine) -> None:
    """Candles take the merge path with a last-state-per-key reduction; their instants stay exact."""
    sink = open_sink(engine)
    first = candle(first_trade_ms=YEAR_1, last_trade_ms=YEAR_9999_END)
    spec = spec_for(first)
    later = candle(first_trade_ms=PG_EPOCH - 1, last_trade_ms=PG_EPOCH + 1)
    sink.write(spec, [spec.to_row(first, 5), spec.to_row(later, 6)])
    sink.close()
    with engine.connect() as conn:
        ((first_ms, last_ms, updated),) = conn.execute(
            select(CandleRow.first_trade_time, CandleRow.last_trade_time, CandleRow.updated_at)
        ).all()
    assert (first_ms, last_ms, updated) == (PG_EPOCH - 1, PG_EPOCH + 1, 6)


def test_batches_with_several_partitions_keep_their_ranges(engine: Engine) -> None:
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    mixed = [trade(i, inst_id="BTC-USDT") for i in range(1, 6)] + [
        trade(i, inst_id="ETH-USDT") for i in (50, 51)
    ]
    assert sink.write(spec, [spec.to_row(t, 0) for t in mixed]).written == 7
    # ETH's highest stored id is 51, BTC's is 5: BTC 6..7 is new, ETH 40 is below ETH's high water (merge)
    after = [trade(6, inst_id="BTC-USDT"), trade(7, inst_id="BTC-USDT"), trade(40, inst_id="ETH-USDT")]
    result = sink.write(spec, [spec.to_row(t, 0) for t in after])
    assert (result.written, result.unchanged) == (3, 0)
    if engine.dialect.name == "postgresql":
        assert result.path == "merge"
        only_btc = sink.write(spec, [spec.to_row(trade(8, inst_id="BTC-USDT"), 0)])
        assert only_btc.path == "copy"
    sink.close()
    assert [(r.inst_id, r.trade_id) for r in stored_trades(engine)] == [
        *(("BTC-USDT", i) for i in range(1, 9 if engine.dialect.name == "postgresql" else 8)),
        ("ETH-USDT", 40),
        ("ETH-USDT", 50),
        ("ETH-USDT", 51),
    ]


AWKWARD_DECIMALS = [
    "0", "-0", "0.0", "0E-7", "0E+3", "1E-6", "1E-7", "0.000001", "0.0000001", "1E+3", "1.0E+3", "-1E+1",
    "12345678901234567890.123456789", "0.00000001", "63707.30", "-0.0000125", "1E-20", "123E-9", "9.99E+5",
]  # fmt: skip


def _decimal_texts(values: tuple[Decimal | None, ...]) -> list[str | None]:
    """The texts SQLite is given for ``values`` as the nullable bid price of book snapshots (values.py)."""
    spec = spec_named("book_snapshots")
    at, width = spec.index_of("bid_price"), len(spec.names)
    row = {
        "exchange": "okx",
        "inst_id": "BTC-USDT",
        "ts": 1,
        "seq_id": 1,
        "depth": 1,
        "bids": "[]",
        "asks": "[]",
    }
    rows = [tuple(value if name == "bid_price" else row.get(name) for name in spec.names) for value in values]
    return [t for chunk in checked_chunks(spec, rows, decimals_as_text=True) for t in chunk[at::width]]


@pytest.mark.parametrize("text", AWKWARD_DECIMALS)
def test_decimal_text_is_format_decimal(text: str) -> None:
    value = Decimal(text)
    assert _decimal_texts((value,)) == [format_decimal(value)]
    # and inside a column of plain values (the fast path falls back for the whole column)
    column = (Decimal("1.5"), value, Decimal("2"))
    assert _decimal_texts(column) == [format_decimal(v) for v in column]


def test_decimal_text_of_random_values_and_nulls() -> None:
    rng = random.Random(3)
    values = tuple(
        Decimal(rng.randint(-(10**12), 10**12)).scaleb(rng.randint(-30, 12)) for _ in range(20_000)
    )
    assert _decimal_texts(values) == [format_decimal(v) for v in values]
    plain = tuple(Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 8)) for _ in range(20_000))
    assert _decimal_texts(plain) == [format_decimal(v) for v in plain]
    assert _decimal_texts((None, Decimal("1E-9"), None)) == [None, "0.000000001", None]


def test_decimal_text_is_plain_under_a_lower_case_decimal_context(tmp_path: Path) -> None:
    """``str`` of a decimal follows the thread's context: with ``capitals=0`` it prints ``1e-7``. The sink thread
    may run under such a context; the stored text must still be :func:`format_decimal`'s."""
    engine = make_engine(f"sqlite:///{tmp_path / 'lower.db'}")
    upgrade(engine)
    sink = open_sink(engine)
    spec = spec_for(trade(1))
    values = [Decimal("1E-7"), Decimal("1.0E-9"), Decimal("63707.3")]
    with localcontext(Context(capitals=0)):
        assert str(values[0]) == "1e-7"
        sink.write(spec, [spec.to_row(trade(i + 1, price=v), 0) for i, v in enumerate(values)])
    sink.close()
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT price FROM trades ORDER BY trade_id").scalars().all()
    engine.dispose()
    assert stored == ["0.0000001", "0.0000000010", "63707.3"]
