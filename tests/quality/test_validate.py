"""The completeness check on SQLite and PostgreSQL: each injected defect is reported exactly (pair, kind, start,
end), field by field for candles, and nothing once it is repaired; quiet minutes with coverage are no finding."""

from __future__ import annotations

import dataclasses

from quality_helpers import DAY_START, HOUR, MINUTE, collected, live_candles, store, tape
from sqlalchemy import Engine, delete, select, text

from collectors.candles import EmptyPolicy
from collectors.exchanges.okx.spec import okx_bar
from collectors.model import DEFAULT_TIMEFRAMES, DataType, Timeframe
from collectors.quality.findings import Finding, FindingKind
from collectors.quality.runs import RunRecord, new_run_id, record_run
from collectors.quality.validate import PairCheck, validate_pair
from collectors.storage.records import ExchangeCandle
from collectors.storage.schema import TradeRow, ValidationFindingRow, ValidationRunRow
from collectors.storage.types import ms_to_datetime

START, END = DAY_START, DAY_START + 3 * HOUR
QUIET = (DAY_START + HOUR + 10 * MINUTE, DAY_START + HOUR + 20 * MINUTE)  # ten minutes without a trade
CHECK = PairCheck(
    exchange="okx", inst_id="BTC-USDT", start_ms=START, end_ms=END, now_ms=END + HOUR,
    timeframes=("1m", "5m", "15m", "1h"),
)  # fmt: skip


async def _stored_tape(engine: Engine, *, coverage: bool = True) -> list:  # type: ignore[type-arg]
    trades = tape(quiet=[QUIET])
    records: list[object] = [*trades, *live_candles(trades, START, END)]
    if coverage:
        records.append(collected("BTC-USDT", START, END))
    await store(engine, records)
    return trades


def _kinds(findings: list[Finding]) -> list[tuple[str, str | None, int, int, str | None]]:
    return [(f.kind.value, f.timeframe, f.start_ms, f.end_ms, f.field) for f in findings]


async def test_a_clean_range_with_quiet_minutes_inside_collected_coverage_has_no_finding(
    engine: Engine,
) -> None:
    await _stored_tape(engine)
    assert validate_pair(engine, CHECK) == []


async def test_quiet_minutes_without_coverage_are_reported_as_one_span(engine: Engine) -> None:
    await _stored_tape(engine, coverage=False)
    await store(
        engine, [collected("BTC-USDT", START, QUIET[0]), collected("BTC-USDT", QUIET[1] - MINUTE, END)]
    )
    findings = validate_pair(engine, CHECK)
    # the stored candles were built as if the whole range were watched: the unwatched minutes make the
    # candles of the buckets holding them incomplete (no 1m or 5m candle there: no trade)
    stored_complete = [
        ("candle_mismatch", "15m", HOUR, HOUR + 15 * MINUTE, "is_complete"),
        ("candle_mismatch", "15m", HOUR + 15 * MINUTE, HOUR + 30 * MINUTE, "is_complete"),
        ("candle_mismatch", "1h", HOUR, 2 * HOUR, "is_complete"),
    ]
    assert _kinds(findings) == [
        *((kind, tf, START + a, START + b, field) for kind, tf, a, b, field in stored_complete),
        ("not_covered", None, QUIET[0], QUIET[1] - MINUTE, None),
    ]
    assert findings[0].detail == "is_complete: stored True, recomputed False"
    assert findings[-1].detail == "no trades and no coverage"


async def test_a_hole_cut_by_deleting_rows_is_reported_exactly_and_not_after_the_fill(engine: Engine) -> None:
    trades = await _stored_tape(engine)
    hole = [t for t in trades if 2000 <= t.trade_id <= 2004]
    with engine.begin() as conn:
        conn.execute(delete(TradeRow).where(TradeRow.trade_id.between(2000, 2004)))
    findings = validate_pair(engine, CHECK)
    before, after = trades[1999 - 1000], trades[2005 - 1000]
    gaps = [f for f in findings if f.kind is FindingKind.TRADE_GAP]
    assert gaps == [
        Finding(exchange="okx", inst_id="BTC-USDT", kind=FindingKind.TRADE_GAP, start_ms=before.ts_ms,
                end_ms=after.ts_ms, detail="trade ids 2000-2004 missing (5)")
    ]  # fmt: skip
    # every other finding is a candle of a bucket that held a deleted trade: the candles now disagree
    touched = {
        (name, Timeframe.parse(name).bucket_start_ms(t.ts_ms)) for name in CHECK.timeframes for t in hole
    }
    rest = [f for f in findings if f.kind is not FindingKind.TRADE_GAP]
    assert {(f.timeframe, f.start_ms) for f in rest} == touched
    assert {f.kind for f in rest} <= {FindingKind.CANDLE_MISMATCH, FindingKind.CANDLE_UNBACKED}
    assert all(f.field in ("open", "high", "low", "close", "volume", "quote_volume", "trade_count",
               "buy_volume", "sell_volume", "first_trade_id", "last_trade_id", "first_trade_ms", "last_trade_ms")
               for f in rest)  # fmt: skip
    await store(engine, hole)  # the fill: the true tape rows again
    assert validate_pair(engine, CHECK) == []


async def test_candles_altered_in_the_database_are_reported_field_by_field(engine: Engine) -> None:
    await _stored_tape(engine)
    at = DAY_START + 2 * HOUR + 7 * MINUTE
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE candles SET close = close + 1, volume = volume * 2 WHERE timeframe = '5m' AND open_time = :t"
            ),
            {
                "t": ms_to_datetime(at - 2 * MINUTE)
                if engine.dialect.name == "postgresql"
                else at - 2 * MINUTE
            },
        )
    findings = validate_pair(engine, CHECK)
    assert _kinds(findings) == [
        ("candle_mismatch", "5m", at - 2 * MINUTE, at + 3 * MINUTE, "close"),
        ("candle_mismatch", "5m", at - 2 * MINUTE, at + 3 * MINUTE, "volume"),
    ]
    assert findings[0].detail.startswith("close: stored ")


async def test_our_candles_against_okx_ones_with_the_utc_day_bar(engine: Engine) -> None:
    trades = await _stored_tape(engine)
    ours = live_candles(trades, START, END)
    okx = [_okx_row(c) for c in ours if c.timeframe == "1m"]
    at = okx[3].open_time_ms
    okx[3] = dataclasses.replace(okx[3], close=okx[3].close + 1)
    hk_day = dataclasses.replace(
        okx[0], bar="1D", open_time_ms=DAY_START - 8 * HOUR
    )  # UTC+8 day: not compared
    await store(engine, [*okx, hk_day])
    check = dataclasses.replace(CHECK, timeframes=("1m", "1d"), start_ms=DAY_START - 8 * HOUR)
    findings = [f for f in validate_pair(engine, check) if f.kind.value.startswith("okx")]
    assert _kinds(findings) == [("okx_mismatch", "1m", at, at + MINUTE, "close")]
    assert okx_bar("1d") == "1Dutc"


def _okx_row(c: object) -> ExchangeCandle:
    return ExchangeCandle(
        exchange="okx", inst_id="BTC-USDT", bar="1m", open_time_ms=c.open_time_ms,  # type: ignore[attr-defined]
        open=c.open, high=c.high, low=c.low, close=c.close, volume=c.volume,  # type: ignore[attr-defined]
        volume_ccy=c.quote_volume, volume_ccy_quote=c.quote_volume, confirmed=True,  # type: ignore[attr-defined]
    )  # fmt: skip


async def test_a_stale_stream_and_a_stream_never_stored_are_findings(engine: Engine) -> None:
    await _stored_tape(engine)
    check = dataclasses.replace(CHECK, streams=(DataType.TRADES, DataType.TICKERS), max_staleness_ms=60_000)
    stale = [f for f in validate_pair(engine, check) if f.kind is FindingKind.STALE]
    newest = max(t.ts_ms for t in tape(quiet=[QUIET]))
    assert _kinds(stale) == [
        ("stale", None, newest, check.now_ms, None),
        ("stale", None, START, check.now_ms, None),
    ]
    assert stale[1].detail == "tickers: nothing stored"


async def test_carry_policy_candles_are_recomputed_the_same_way(engine: Engine) -> None:
    trades = tape(quiet=[QUIET])
    from collectors.candles import reaggregate_trades
    from collectors.model import CandleSource

    built = reaggregate_trades(trades, exchange="okx", inst_id="BTC-USDT", source=CandleSource.LIVE,
                               complete_range=(START, END), empty_policy=EmptyPolicy.CARRY)  # fmt: skip
    await store(
        engine,
        [
            *trades,
            *[c for n in DEFAULT_TIMEFRAMES for c in built.get(n, [])],
            collected("BTC-USDT", START, END),
        ],
    )
    check = dataclasses.replace(CHECK, empty_policy=EmptyPolicy.CARRY)
    assert validate_pair(engine, check) == []


async def test_a_run_is_recorded_with_one_row_per_finding(engine: Engine) -> None:
    finding = Finding(exchange="okx", inst_id="BTC-USDT", kind=FindingKind.TRADE_GAP, start_ms=START, end_ms=END,
                      detail="trade ids 5-6 missing (2)")  # fmt: skip
    run = RunRecord(run_id=new_run_id(), exchange="okx", pairs=("BTC-USDT", "ETH-USDT"), start_ms=START, end_ms=END,
                    started_ms=END, finished_ms=END + 5, findings=(finding,), tolerance=0)  # fmt: skip
    record_run(engine, run)
    with engine.connect() as conn:
        row = conn.execute(select(ValidationRunRow)).one()
        rows = conn.execute(select(ValidationFindingRow)).all()
    assert (row.pairs, row.findings, row.status, row.tolerance) == ("BTC-USDT,ETH-USDT", 1, "failed", 0)
    assert [(r.seq, r.kind, r.inst_id, r.detail) for r in rows] == [
        (0, "trade_gap", "BTC-USDT", finding.detail)
    ]


async def test_a_candle_held_open_at_the_ledgers_end_is_no_finding_but_one_left_open_after_it_is(
    engine: Engine,
) -> None:
    """A collector stopped 1 s after a minute's end (within the 2 s allowed lateness) left that candle open
    (is_closed false): validating right up to the stop finds nothing. The same open candle with the ledger
    going on 3 s past the minute (the engine should have closed it) is reported."""
    trades = tape(quiet=[QUIET])
    boundary = DAY_START + HOUR + 37 * MINUTE
    candles = [
        dataclasses.replace(c, is_closed=False)
        if (c.timeframe, c.open_time_ms) == ("1m", boundary - MINUTE)
        else c
        for c in live_candles(trades, START, END)
    ]
    await store(engine, [*trades, *candles, collected("BTC-USDT", START, boundary + 1_000)])
    check = dataclasses.replace(CHECK, end_ms=boundary + 1_000, allowed_lateness_ms=2_000)
    assert validate_pair(engine, check) == []
    await store(engine, [collected("BTC-USDT", boundary + 1_000, boundary + 3_000)])
    assert _kinds(validate_pair(engine, check)) == [
        ("candle_mismatch", "1m", boundary - MINUTE, boundary, "is_closed")
    ]
