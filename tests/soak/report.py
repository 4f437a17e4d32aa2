"""The soak's report directory: ``report.md`` (settings, pass/fail per check, figures, faults by kind),
``samples.csv``, ``faults.jsonl`` and three PNG plots (message rate, writer lag, collector RSS over time)."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, no display
import matplotlib.pyplot as plt

from tests.soak.analysis import (
    FLAT_LAG_P99_MS,
    FLAT_LAG_SLOPE_MS_PER_10MIN,
    FLAT_RSS_SLOPE_MB_PER_10MIN,
    recovery_s,
)
from tests.soak.driver import Result, Sample

__all__ = ["message_rates", "write_report"]


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def message_rates(samples: list[Sample]) -> list[tuple[int, float]]:
    """Messages per second between consecutive samples (pairs of samples with both counts)."""
    out = []
    for a, b in itertools.pairwise(samples):
        if a.messages is not None and b.messages is not None and b.t_ms > a.t_ms and b.messages >= a.messages:
            out.append((b.t_ms, (b.messages - a.messages) * 1000 / (b.t_ms - a.t_ms)))
    return out


def _plot(path: Path, title: str, ylabel: str, series: list[tuple[int, float]], result: Result) -> None:
    t0 = result.started_ms
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=80)
    ax.plot([(t - t0) / 60_000 for t, _ in series], [v for _, v in series], linewidth=0.9)
    if result.pg_outage:
        a, b = result.pg_outage
        ax.axvspan((a - t0) / 60_000, (b - t0) / 60_000, color="tab:red", alpha=0.25, label="PostgreSQL down")
        ax.legend(loc="upper left", fontsize=8)
    ax.axvline((result.faults_end_ms - t0) / 60_000, color="grey", linestyle="--", linewidth=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("minutes since start (dashed: faults end)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def write_report(result: Result) -> Path:
    s = result.settings
    out = s.out
    out.mkdir(parents=True, exist_ok=True)
    samples = result.samples
    rates = message_rates(samples)
    lag = [(x.t_ms, x.lag_ms / 1000) for x in samples if x.lag_ms is not None]
    rss = [(x.t_ms, x.rss_mb) for x in samples if x.rss_mb is not None]
    _plot(out / "message_rate.png", "messages received by the collector", "messages/s", rates, result)
    _plot(out / "lag.png", "writer lag (age of the oldest unwritten row)", "seconds", lag, result)
    _plot(out / "rss.png", "collector RSS", "MB", rss, result)
    with (out / "samples.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["t_ms", "messages", "trades_stored", "committed", "lag_ms", "rss_mb", "faults", "load1"]
        )
        for x in samples:
            writer.writerow(
                [x.t_ms, x.messages, x.trades_stored, x.committed, x.lag_ms, x.rss_mb, x.faults, x.load1]
            )
    with (out / "faults.jsonl").open("w") as f:
        for fault in result.faults:
            f.write(json.dumps(fault) + "\n")
    (out / "report.md").write_text(render(result, rates))
    return out / "report.md"


def render(result: Result, rates: list[tuple[int, float]]) -> str:
    s = result.settings
    checks = result.checks()
    samples = result.samples
    loads = [x.load1 for x in samples]
    committed = [x for x in samples if x.committed is not None]
    rss = [x.rss_mb for x in samples if x.rss_mb is not None]
    lags = [x.lag_ms for x in samples if x.lag_ms is not None]
    lines = [
        f"# Soak report: {'PASS' if all(checks.values()) else 'FAIL'}",
        "",
        f"* started {_utc(result.started_ms)}, faults for {s.minutes:g} min, seed **{s.seed}**"
        f" (`SOAK_SEED={s.seed} SOAK_MINUTES={s.minutes:g} make soak` repeats the fault plan)",
        f"* simulators: `main` the nine default pairs at the default market; `firehose` BTC-USDT at"
        f" {s.firehose_rate:g} fills/s; a fault every {s.fault_every_s[0]:g}-{s.fault_every_s[1]:g} s",
        f"* load average (1 min) during the run: min {_fmt(min(loads, default=None), '.2f')}, mean"
        f" {_fmt(sum(loads) / len(loads) if loads else None, '.2f')}, max {_fmt(max(loads, default=None), '.2f')}"
        " (2 cores, shared with other jobs)",
    ]
    if result.pg_outage:
        a, b = result.pg_outage
        lines.append(
            f"* PostgreSQL stopped at +{(a - result.started_ms) / 60_000:.1f} min for {(b - a) / 1000:.1f} s"
        )
    if result.caught_up_ms:
        lines.append(
            f"* caught up {(result.caught_up_ms - result.faults_end_ms) / 1000:.1f} s after the faults ended"
        )
    if result.error:
        lines.append(f"* **{result.error}**")
    lines += ["", "## Checks", "", "| check | result |", "|---|---|"]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in checks.items()]
    flat = result.flat
    lines += [
        "",
        f'"Flat": over the second half of the fault phase, the least-squares slope of the collector\'s RSS is'
        f" under {FLAT_RSS_SLOPE_MB_PER_10MIN:g} MB per 10 min; outside the PostgreSQL outage and the"
        f" {recovery_s(s.minutes * 60):g} s after it, the slope of the writer lag is under {FLAT_LAG_SLOPE_MS_PER_10MIN / 1000:g} s"
        f" per 10 min and its p99 under {FLAT_LAG_P99_MS / 1000:g} s. Slopes are judged only over a second half of"
        f" 5 minutes or more (this run: {'yes' if flat and flat.slopes_judged else 'no, only the p99'}).",
        "",
        "## Figures",
        "",
        "| figure | value |",
        "|---|---|",
        f"| RSS slope, second half | {_fmt(flat and flat.rss_slope_mb_per_10min, '.2f')} MB/10 min"
        f" ({flat.rss_points if flat else 0} samples) |",
        f"| writer lag slope, second half | {_fmt(flat and flat.lag_slope_ms_per_10min, '.0f')} ms/10 min"
        f" ({flat.lag_points if flat else 0} samples) |",
        f"| writer lag p99, second half | {_fmt(flat and flat.lag_p99_ms, '.0f')} ms |",
        f"| writer lag max, whole run | {_fmt(max(lags, default=None), '.0f')} ms |",
        f"| RSS first / max / last | {_fmt(rss[0] if rss else None)} / {_fmt(max(rss, default=None))} /"
        f" {_fmt(rss[-1] if rss else None)} MB |",
        f"| message rate mean / max | {_fmt(sum(v for _, v in rates) / len(rates) if rates else None, '.0f')} /"
        f" {_fmt(max((v for _, v in rates), default=None), '.0f')} msg/s |",
        f"| trades committed at the last sample | {committed[-1].committed if committed else '-'} |",
        f"| faults injected | {len(result.faults)} |",
        f"| samples | {len(samples)} every {s.sample_s:g} s |",
    ]
    for name, stats in result.sim_stats.items():
        lines.append(f"| simulator `{name}` /sim/stats | `{json.dumps(stats)}` |")
    lines += [
        "",
        "## Trades and candles per pair",
        "",
        "| run | pair | trades compared | missing | duplicated | extra | wrong | 1m candles compared | candles"
        " wrong/missing/extra | reconnects | gaps found/filled/unrecoverable | rejected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result.pairs:
        h = p.health
        lines.append(
            f"| {p.run} | {p.inst_id} | {p.tape.compared} | {p.tape.missing} | {p.tape.duplicated} | {p.tape.extra}"
            f" | {p.tape.wrong} | {p.candles_compared} | {p.candles_wrong}/{p.candles_missing}/{p.candles_extra}"
            f" | {h.get('reconnects', '-')} | {h.get('gaps_found', '-')}/{h.get('gaps_filled', '-')}/"
            f"{h.get('gaps_unrecoverable', '-')} | {h.get('rejected', '-')} |"
        )
    examples = [e for p in result.pairs for e in (p.tape.examples or []) + p.candle_examples]
    if examples:
        lines += ["", "First differences:", "", "```", *examples[:20], "```"]
    lines += ["", "rejected_messages against the malformed frames the simulators logged:", ""]
    for name, v in result.rejected.items():
        lines.append(
            f"* `{name}`: {v.stored} stored, {v.logged} logged; {len(v.spurious)} rejected but never corrupted,"
            f" {len(v.undelivered)} not rejected with a connection-ending fault within 8 s after it was queued"
            f" (may never have reached the collector), {v.unused_field} tickers that lost only instType (stored),"
            f" {len(v.unexplained)} not rejected without any of these"
        )
        for item in (v.unexplained + v.undelivered)[:5]:
            lines.append(f"  * `{json.dumps(item)}`")
    by_kind = Counter(f["kind"] for f in result.faults)
    by_target = Counter((f["kind"], f["target"]) for f in result.faults)
    lines += ["", "## Faults by kind", "", "| kind | main | firehose | total |", "|---|---|---|---|"]
    for kind in sorted(by_kind):
        lines.append(
            f"| {kind} | {by_target[(kind, 'main')]} | {by_target[(kind, 'firehose')]} | {by_kind[kind]} |"
        )
    lines += [
        "",
        "## Plots",
        "",
        "![message rate](message_rate.png)",
        "![writer lag](lag.png)",
        "![RSS](rss.png)",
        "",
        "Raw data: `samples.csv`, `faults.jsonl`; logs: `soak.log`, `collector.log`, `sim-*.log`.",
        "",
    ]
    return "\n".join(lines)
