"""The soak's report writer on a made-up result (fast; part of ``make test``): figures, verdicts and PNGs."""

from __future__ import annotations

from pathlib import Path

from tests.soak.analysis import TapeVerdict, compare_rejected, flatness
from tests.soak.driver import PairCheck, Result, Sample, Settings
from tests.soak.report import message_rates, write_report

MINUTE = 60_000


def _result(out: Path, *, missing: int = 0) -> Result:
    settings = Settings(minutes=10, seed=99, firehose_rate=500, pg_down_s=15, sample_s=60, out=out)
    start = 1_800_000_000_000
    samples = [
        Sample(t_ms=start + i * MINUTE, messages=i * 6_000, trades_stored=i * 5_000, committed=i * 5_000,
               lag_ms=400, rss_mb=150.0, faults=i * 15, load1=3.5)
        for i in range(12)
    ]  # fmt: skip
    tape = TapeVerdict()
    truth = [(1, 1, "1", "1", "buy"), (2, 2, "1", "1", "buy")]
    tape.add(truth, truth[: len(truth) - missing])
    result = Result(
        settings=settings,
        started_ms=start,
        faults_end_ms=start + 10 * MINUTE,
        caught_up_ms=start + 10 * MINUTE + 5_000,
        stopped_ms=start + 11 * MINUTE,
        collector_exit=0,
        pg_outage=(start + 5 * MINUTE, start + 5 * MINUTE + 15_000),
        samples=samples,
        faults=[{"t_ms": start, "target": "main", "kind": "drop", "bodies": [{"kind": "drop"}]}],
        pairs=[
            PairCheck(
                run="main",
                inst_id="BTC-USDT",
                tape=tape,
                candles_compared=3,
                health={"gaps_unrecoverable": 0},
            )
        ],
        rejected={"main": compare_rejected(["a", "b"], [{"frame": "a"}, {"frame": "b"}], [])},
    )
    result.flat = flatness(
        [(s.t_ms, s.rss_mb or 0.0) for s in samples],
        [(s.t_ms, float(s.lag_ms or 0)) for s in samples],
        window=(start + 5 * MINUTE, start + 10 * MINUTE),
        outage=result.pg_outage,
        recovery_s=60,
    )
    return result


def test_a_passing_result_is_reported_with_every_figure_and_plot(tmp_path: Path) -> None:
    result = _result(tmp_path, missing=0)
    assert message_rates(result.samples)[0] == (result.started_ms + MINUTE, 100.0)
    report = write_report(result).read_text()
    assert report.startswith("# Soak report: PASS")
    assert "seed **99**" in report and "load average (1 min) during the run: min 3.50" in report
    assert "| RSS slope, second half | 0.00 MB/10 min" in report
    assert "| drop | 1 | 0 | 1 |" in report
    assert "| main | BTC-USDT | 2 | 0 | 0 | 0 | 0 | 3 | 0/0/0 |" in report
    for name in ("message_rate.png", "lag.png", "rss.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) < 100_000
    assert len((tmp_path / "samples.csv").read_text().splitlines()) == 13


def test_a_missing_trade_fails_the_report(tmp_path: Path) -> None:
    result = _result(tmp_path, missing=1)
    checks = result.checks()
    assert not checks["trades equal /sim/tape (missing = duplicated = extra = wrong = 0)"]
    assert [name for name, ok in checks.items() if not ok] == [
        "trades equal /sim/tape (missing = duplicated = extra = wrong = 0)"
    ]
    report = write_report(result).read_text()
    assert report.startswith("# Soak report: FAIL") and "missing (2, 2, '1', '1', 'buy')" in report
