"""A :class:`~collectors.ops.snapshot.Snapshot` as Prometheus metric families (pure; names in
docs/observability.md). Counters are the collector's own running totals since the process started (they reset
at a restart, which Prometheus' ``rate()`` handles)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from collectors.live.health import PairHealth
from collectors.ops.snapshot import Snapshot

__all__ = ["PREFIX", "SnapshotCollector", "metric_families", "registry_for"]

PREFIX: Final = "okx_collector_"

# per pair counters: (name, help, the PairHealth field)
_PAIR_COUNTERS: Final = (
    ("reconnects", "New connections after the first of every endpoint the pair uses", "reconnects"),
    ("rest_trades", "Trades REST returned for the pair (gap fills and catch-up polls)", "rest_trades"),
    ("duplicates", "Trades dropped because their id was already delivered", "duplicates"),
    ("gaps_found", "Holes in the trade-id sequence found", "gaps_found"),
    ("gaps_filled", "Holes filled completely from REST", "gaps_filled"),
    ("gaps_unrecoverable", "Holes REST could not fill (ids lost for good)", "gaps_unrecoverable"),
    ("rejected", "Frames and REST rows refused by validation (kept in rejected_messages)", "rejected"),
    (
        "candle_revision_requests",
        "Late trades older than the engine's memory (revision asked)",
        "revision_requests",
    ),
)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, labels=labels)


def _pair_metrics(snap: Snapshot) -> Iterator[Metric]:
    state = _gauge(
        "pair_state",
        "1 for the pair's current state (live, catching_up, down, failed, stopped)",
        ["pair", "state"],
    )
    trades = _counter(
        "trades_stored", "Trades handed to the writer (each id once; stream and REST)", ["pair", "channel"]
    )
    revisions = _counter(
        "candle_revisions", "Closed candles changed by late trades (CandleRevised)", ["pair"]
    )
    gaps_open = _gauge("gaps_open", "Holes being filled from REST now", ["pair"])
    counters = {name: _counter(name, doc, ["pair"]) for name, doc, _ in _PAIR_COUNTERS}
    for pair in snap.pairs:
        state.add_metric([pair.inst_id, pair.state], 1)
        trades.add_metric([pair.inst_id, pair.trades_channel or ""], pair.trades_stored)
        revisions.add_metric([pair.inst_id], snap.revisions.get(pair.inst_id, 0))
        gaps_open.add_metric([pair.inst_id], pair.gaps_open)
        for name, _, field in _PAIR_COUNTERS:
            counters[name].add_metric([pair.inst_id], getattr(pair, field))
    yield from (state, trades, revisions, gaps_open, *counters.values())


def _channel_metrics(pairs: tuple[PairHealth, ...]) -> Iterator[Metric]:
    labels = ["pair", "channel"]
    messages = _counter("messages", "Data pushes received per pair and channel (acks excluded)", labels)
    rate = _gauge("messages_per_second", "Data pushes per second over the last 10 s", labels)
    age = _gauge(
        "last_message_age_seconds", "Age of the channel's last data push (absent before the first)", labels
    )
    rejected = _counter("channel_rejected", "Frames of the channel refused by validation", labels)
    state = _gauge(
        "channel_state",
        "1 for the channel's state (live, waiting, down, failed, stopped)",
        [*labels, "state"],
    )
    for pair in pairs:
        for ch in pair.channels:
            key = [pair.inst_id, ch.channel]
            messages.add_metric(key, ch.messages)
            rate.add_metric(key, ch.messages_per_s)
            rejected.add_metric(key, ch.rejected)
            state.add_metric([*key, ch.state], 1)
            if ch.last_message_age_ms is not None:
                age.add_metric(key, ch.last_message_age_ms / 1000)
    yield from (messages, rate, age, rejected, state)


def _writer_metrics(snap: Snapshot) -> Iterator[Metric]:
    w = snap.writer
    for name, doc, value in (
        ("writer_queue_rows", "Rows waiting in memory for the database", w.pending_rows),
        ("writer_spilled_rows", "Rows spilled to disk while the database was away", w.spilled_rows),
        ("writer_lag_seconds", "Age of the oldest row not yet written (0: nothing waits)", w.lag_ms / 1000),
        ("writer_healthy", "1 while the database accepts writes", int(w.healthy)),
    ):
        gauge = _gauge(name, doc, [])
        gauge.add_metric([], value)
        yield gauge
    for name, doc, value in (
        ("writer_written_rows", "Rows written (inserted or changed)", w.written_rows),
        ("writer_dead_rows", "Rows the database refused for good (dead letters)", w.dead_rows),
        ("writer_retries", "Batch writes retried after a transient database error", w.retries),
    ):
        counter = _counter(name, doc, [])
        counter.add_metric([], value)
        yield counter


def _rest_metrics(snap: Snapshot) -> Iterator[Metric]:
    requests = _counter(
        "rest_requests", "OKX REST attempts per endpoint path (retries included)", ["endpoint"]
    )
    limited = _counter(
        "rest_rate_limited", "REST answers refused for rate: HTTP 429 or code 50011", ["endpoint"]
    )
    for path, count in sorted(snap.rest_requests.items()):
        requests.add_metric([path], count)
        limited.add_metric([path], snap.rest_rate_limited.get(path, 0))
    yield from (requests, limited)


def metric_families(snap: Snapshot) -> list[Metric]:
    """Every metric of one snapshot."""
    info = _gauge("info", "1, labelled with the collector's id", ["collector_id"])
    info.add_metric([snap.collector_id], 1)
    pairs, channels = _pair_metrics(snap), _channel_metrics(snap.pairs)
    return [info, *pairs, *channels, *_writer_metrics(snap), *_rest_metrics(snap)]


class SnapshotCollector(Collector):
    """A prometheus-client collector that takes a fresh snapshot at every scrape."""

    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self._take = take

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._take())


def registry_for(take: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry of its own (never the global one: two collectors in one test process must not mix)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(take))
    return registry
