"""The completeness check of one pair over a range (blocking reads; run it in a thread from async code).

Checks, in order (docs/quality.md lists the finding kinds):

1. trade-id continuity: ids missing between stored trades (OKX ``trades-all`` ids are contiguous);
2. candle presence and values: the candles recomputed from the stored trades (the engine's batch path, as
   re-aggregation does) against the stored ones, per timeframe and field, only buckets entirely inside the
   range and ended by ``now_ms``;
3. quiet or missing: buckets of the finest timeframe without trades that the coverage ledger does not show
   as watched (``collected`` / ``backfilled``);
4. our candles against OKX's stored ones (``exchange_candles``) through
   :func:`~collectors.exchanges.okx.reconcile.reconcile`, with the OKX bar :func:`okx_bar` names for each of
   our timeframes (UTC-aligned ``1Dutc`` for our ``1d``: OKX's plain ``1D`` opens at 00:00 UTC+8 and is
   never compared with a UTC day);
5. freshness of the live streams asked for: newest stored row older than ``max_staleness_ms``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from collectors.candles import DEFAULT_ENGINE_CONFIG, EmptyPolicy
from collectors.exchanges.okx.reconcile import CandleDiff, DiffKind, reconcile
from collectors.exchanges.okx.spec import okx_bar
from collectors.model import Candle, DataType, Timeframe
from collectors.quality.compare import CandleChange, ChangeKind, compare_candles, inside
from collectors.quality.coverage_check import held_open, uncovered_buckets
from collectors.quality.findings import Finding, FindingKind
from collectors.quality.reads import (
    coverage_spans,
    exchange_candles,
    ledger_end,
    newest_per_stream,
    stored_candles,
    trade_id_gaps,
)
from collectors.quality.recompute import recompute

__all__ = ["PairCheck", "validate_pair"]

_IsOpen = Callable[[int, int], bool]


@dataclass(frozen=True, slots=True, kw_only=True)
class PairCheck:
    """What to check for one pair. ``streams``: live streams whose freshness is checked (none for a
    historical range); ``now_ms``: the current time (candles of buckets not ended by then are skipped);
    ``allowed_lateness_ms``: the live engine's (the config's ``candles.allowed_lateness_ms``): a bucket ending
    less than that before the ledger's end is still open (:func:`~collectors.quality.coverage_check.held_open`)."""

    exchange: str
    inst_id: str
    start_ms: int
    end_ms: int
    now_ms: int
    timeframes: tuple[str, ...]
    empty_policy: EmptyPolicy = EmptyPolicy.SKIP
    streams: tuple[DataType, ...] = ()
    max_staleness_ms: int = 120_000
    allowed_lateness_ms: int = DEFAULT_ENGINE_CONFIG.allowed_lateness_ms


def validate_pair(engine: Engine, check: PairCheck) -> list[Finding]:
    """Every finding of ``check``; raises ``StorageError`` when the database cannot be read."""
    if check.end_ms <= check.start_ms:
        raise ValueError(f"empty or reversed range [{check.start_ms}, {check.end_ms})")
    findings = _gaps(engine, check)
    newest = ledger_end(engine, exchange=check.exchange, inst_id=check.inst_id, data_type=DataType.TRADES)
    is_open = held_open(newest, check.allowed_lateness_ms)
    findings += _candles(engine, check, is_open)
    if check.exchange == "okx":
        findings += _okx(engine, check, is_open)
    findings += _freshness(engine, check)
    return findings


def _finding(
    check: PairCheck, kind: FindingKind, start: int, end: int, detail: str, **extra: str | None
) -> Finding:
    return Finding(
        exchange=check.exchange,
        inst_id=check.inst_id,
        kind=kind,
        start_ms=start,
        end_ms=end,
        detail=detail,
        **extra,
    )


def _gaps(engine: Engine, check: PairCheck) -> list[Finding]:
    gaps = trade_id_gaps(
        engine, exchange=check.exchange, inst_id=check.inst_id, start_ms=check.start_ms, end_ms=check.end_ms
    )
    return [
        _finding(
            check,
            FindingKind.TRADE_GAP,
            g.ts_before_ms,
            g.ts_after_ms,
            f"trade ids {g.first_id}-{g.last_id} missing ({g.last_id - g.first_id + 1})",
        )
        for g in gaps
    ]


def _ended(candles: list[Candle], tf: Timeframe, check: PairCheck, is_open: _IsOpen) -> list[Candle]:
    """The candles of buckets inside the range, ended by now, and not held open at the ledger's end."""
    end = min(check.end_ms, check.now_ms)
    return [
        c
        for c in inside(candles, tf, check.start_ms, end)
        if not is_open(c.open_time_ms, c.open_time_ms + tf.duration_ms)
    ]


def _candles(engine: Engine, check: PairCheck, is_open: _IsOpen) -> list[Finding]:
    fresh, _ = recompute(
        engine, exchange=check.exchange, inst_id=check.inst_id, timeframes=check.timeframes,
        start_ms=check.start_ms, end_ms=check.end_ms, empty_policy=check.empty_policy,
    )  # fmt: skip
    stored = stored_candles(
        engine, exchange=check.exchange, inst_id=check.inst_id, timeframes=check.timeframes,
        start_ms=check.start_ms, end_ms=check.end_ms,
    )  # fmt: skip
    end = min(check.end_ms, check.now_ms)
    findings: list[Finding] = []
    for name in check.timeframes:
        tf = Timeframe.parse(name)
        changes = compare_candles(
            _ended(stored[name], tf, check, is_open), _ended(fresh.get(name, []), tf, check, is_open)
        )
        findings += [f for change in changes for f in _change_findings(check, tf, change)]
    finest = min((Timeframe.parse(n) for n in check.timeframes), key=lambda tf: tf.duration_ms)
    traded = {c.open_time_ms for c in fresh.get(finest.name, []) if c.trade_count}
    spans = coverage_spans(
        engine, exchange=check.exchange, inst_id=check.inst_id, data_type=DataType.TRADES,
        start_ms=check.start_ms, end_ms=end,
    )  # fmt: skip
    for start, stop, why in uncovered_buckets(check.start_ms, end, finest, traded, spans):
        findings.append(_finding(check, FindingKind.NOT_COVERED, start, stop, f"no trades and {why}"))
    return findings


def _change_findings(check: PairCheck, tf: Timeframe, change: CandleChange) -> list[Finding]:
    start, end = change.open_time_ms, change.open_time_ms + tf.duration_ms
    if change.kind is ChangeKind.NEW:
        assert change.recomputed is not None
        count = change.recomputed.trade_count
        return [
            _finding(
                check,
                FindingKind.CANDLE_MISSING,
                start,
                end,
                f"{count} stored trades, no candle",
                timeframe=tf.name,
            )
        ]
    if change.kind is ChangeKind.UNBACKED:
        assert change.stored is not None
        count = change.stored.trade_count
        return [
            _finding(
                check,
                FindingKind.CANDLE_UNBACKED,
                start,
                end,
                f"candle of {count} trades, none stored",
                timeframe=tf.name,
            )
        ]
    assert change.stored is not None and change.recomputed is not None
    return [
        _finding(
            check,
            FindingKind.CANDLE_MISMATCH,
            start,
            end,
            f"{name}: stored {getattr(change.stored, name)}, recomputed {getattr(change.recomputed, name)}",
            timeframe=tf.name,
            field=name,
        )
        for name in change.fields
    ]


_OKX_KINDS = {
    DiffKind.VALUE: FindingKind.OKX_MISMATCH,
    DiffKind.MISALIGNED: FindingKind.OKX_MISMATCH,
    DiffKind.MISSING_OURS: FindingKind.OKX_MISSING_OURS,
    DiffKind.MISSING_OKX: FindingKind.OKX_MISSING_OKX,
}


def _okx(engine: Engine, check: PairCheck, is_open: _IsOpen) -> list[Finding]:
    end = min(check.end_ms, check.now_ms)
    findings: list[Finding] = []
    for name in check.timeframes:
        tf = Timeframe.parse(name)
        bar = okx_bar(name)
        theirs = exchange_candles(
            engine,
            exchange=check.exchange,
            inst_id=check.inst_id,
            bar=bar,
            start_ms=check.start_ms,
            end_ms=end,
        )
        theirs = [
            r
            for r in theirs
            if r.open_time_ms + tf.duration_ms <= end
            and not is_open(r.open_time_ms, r.open_time_ms + tf.duration_ms)
        ]
        if not theirs:
            continue
        ours = stored_candles(
            engine, exchange=check.exchange, inst_id=check.inst_id, timeframes=[name],
            start_ms=check.start_ms, end_ms=end,
        )[name]  # fmt: skip
        ours = [c for c in ours if not is_open(c.open_time_ms, c.open_time_ms + tf.duration_ms)]
        for diff in reconcile(ours, theirs, inst_id=check.inst_id, timeframe=name):
            findings.append(_okx_finding(check, tf, bar, diff))
    return findings


def _okx_finding(check: PairCheck, tf: Timeframe, bar: str, diff: CandleDiff) -> Finding:
    if diff.kind is DiffKind.VALUE:
        detail = f"{diff.field}: ours {diff.ours}, okx {diff.okx} (bar {bar})"
    elif diff.kind is DiffKind.MISALIGNED:
        detail = f"okx candle not on our {tf.name} grid (bar {bar})"
    else:
        detail = f"{diff.kind.value} (bar {bar})"
    return _finding(
        check, _OKX_KINDS[diff.kind], diff.open_time_ms, diff.open_time_ms + tf.duration_ms, detail,
        timeframe=tf.name, field=diff.field,
    )  # fmt: skip


def _freshness(engine: Engine, check: PairCheck) -> list[Finding]:
    if not check.streams:
        return []
    newest = newest_per_stream(engine, exchange=check.exchange, inst_id=check.inst_id, streams=check.streams)
    findings = []
    for stream in check.streams:
        seen = newest[stream]
        if seen is None:
            findings.append(
                _finding(
                    check, FindingKind.STALE, check.start_ms, check.now_ms, f"{stream.value}: nothing stored"
                )
            )
        elif check.now_ms - seen > check.max_staleness_ms:
            age_s = (check.now_ms - seen) / 1000
            findings.append(
                _finding(
                    check,
                    FindingKind.STALE,
                    seen,
                    check.now_ms,
                    f"{stream.value}: newest row {age_s:.0f} s old",
                )
            )
    return findings
