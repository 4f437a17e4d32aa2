"""The sans-I/O core of one pair collector: events and ``now_ms`` in, records and REST requests out.

Trades go through :class:`~collectors.live.tape.TradeTape` (each id once, in id order, holes found), then to the
writer and the candle engine. A hole is marked ``mark_no_data`` on the engine while open and asked of REST at
once (:class:`FillRequest`); its trades are fed as late trades (touched candles are revised) and the span is
``mark_filled``. While the trade stream is down, or silent for ``poll_after_ms``, the core asks REST for the
trades after its frontier every ``poll_interval_ms`` so the stored tape keeps up. Coverage spans say what was
collected, what was a gap, what was backfilled and what REST could not return; which time the candles are told
has no data is :class:`~collectors.live.no_data.NoDataMarks`' business. Nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from collectors.candles import CandleEngine
from collectors.exchanges.okx.events import BooksPush, CandlePush, Event, Rejected, TickerPush, TradesPush
from collectors.live.archive import Archive
from collectors.live.candle_out import LiveCandles
from collectors.live.coverage import CoverageLedger
from collectors.live.health import ChannelMeter, PairHealth
from collectors.live.market import MarketState
from collectors.live.no_data import NoDataMarks
from collectors.live.requests import FillRequest, RestRequests
from collectors.live.tape import Delivery, Hole, TradeTape, aggregate_fills
from collectors.model import Trade
from collectors.storage.records import CoverageStatus

__all__ = ["CoreSettings", "FillRequest", "PairCore"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSettings:
    trades_channel: str = "trades-all"
    book_interval_ms: int = 1_000
    full_depth_levels: int | None = None
    reorder_window_ms: int = 1_500
    poll_after_ms: int = 3_000
    poll_interval_ms: int = 1_000
    candle_update_ms: int = 1_000
    coverage_interval_ms: int = 60_000
    fill_attempts: int = 5
    fill_retry_ms: int = 1_000


class PairCore:
    """One instrument. ``resume``: the last stored trade of a previous session (its id is the frontier);
    ``resume_holes``: id spans missing below it; ``resume_uncovered_ms``: where the coverage ledger of the
    stored trades stops (a killed session's last span is recorded up to ``resume``)."""

    def __init__(
        self,
        *,
        exchange: str,
        inst_id: str,
        engine: CandleEngine,
        archive: Archive,
        settings: CoreSettings,
        now_ms: int,
        resume: Trade | None = None,
        resume_holes: Sequence[tuple[int, int, int, int]] = (),
        resume_uncovered_ms: int | None = None,
    ) -> None:
        self.exchange, self.inst_id, self.settings = exchange, inst_id, settings
        self.archive = archive
        self.tape = TradeTape(
            reorder_window_ms=settings.reorder_window_ms,
            last_id=None if resume is None else resume.trade_id,
            last_ts_ms=None if resume is None else resume.ts_ms,
        )
        self.market = MarketState(
            inst_id=inst_id,
            interval_ms=settings.book_interval_ms,
            full_depth_levels=settings.full_depth_levels,
        )
        self.meters: dict[str, ChannelMeter] = {}
        self.records: list[object] = []
        self.resubscribe: list[str] = []
        self.rest = RestRequests(
            poll_after_ms=settings.poll_after_ms,
            poll_interval_ms=settings.poll_interval_ms,
            fill_attempts=settings.fill_attempts,
            fill_retry_ms=settings.fill_retry_ms,
        )
        self.stream_up = False
        self._down_since_ms = now_ms
        # a restart is an outage from the last stored trade until the tape catches up; a fresh start watched
        # nothing before its first trade: that part of the bucket holding it is no data
        self.no_data = NoDataMarks(
            candles=LiveCandles(engine=engine, update_interval_ms=settings.candle_update_ms),
            tape=self.tape,
            outage_from_ms=None if resume is None else resume.ts_ms,
            fresh=resume is None,
        )
        self._ever_up = False
        self._last_trade_msg_ms = now_ms
        self.coverage = CoverageLedger(
            exchange=exchange, inst_id=inst_id, interval_ms=settings.coverage_interval_ms
        )
        self.counts = dict.fromkeys(
            ("reconnects", "trades", "duplicates", "found", "filled", "unrecoverable", "rest", "rejected"), 0
        )
        if self.no_data.outage_ms is not None:
            self.records += self.no_data.outage_to(now_ms)
        if resume is not None and resume_uncovered_ms is not None:
            # trades a killed session stored after its last coverage row (``resume.uncovered_from``); its holes
            # are ``resume_holes`` (gap rows, then backfilled or unrecoverable, as in a live session)
            self.coverage.span(
                resume_uncovered_ms,
                resume.ts_ms,
                CoverageStatus.COLLECTED,
                "stored by an earlier session after its last coverage row (restart)",
            )
        # ids a previous session stored around but never filled (``reads.stored_holes``): asked of REST at once
        restart = [
            Hole(first_id=a, last_id=b, start_ms=s, end_ms=e + 1, reason="restart")
            for a, b, s, e in resume_holes
        ]
        self.tape.holes.extend(restart)
        self._apply(Delivery(opened=restart), now_ms)

    @property
    def candles(self) -> LiveCandles:
        """The pair's live candles (one engine: the no-data marks drive the same one)."""
        return self.no_data.candles

    @candles.setter
    def candles(self, candles: LiveCandles) -> None:
        self.no_data.candles = candles

    # -- inputs ------------------------------------------------------------------------------------------

    def on_event(self, event: Event, now_ms: int, text: str | None = None) -> None:
        """One parsed frame of this pair (``text`` its exact text, for the raw archive)."""
        channel = getattr(event, "channel", None) or ("tickers" if isinstance(event, TickerPush) else None)
        if channel is not None:
            self._meter(channel).seen(now_ms)
            if text is not None and not isinstance(event, Rejected):
                self._keep(self.archive.raw(channel=channel, inst_id=self.inst_id, recv_ms=now_ms, text=text))
        if isinstance(event, TradesPush):
            self._on_trades(event, now_ms, text)
        elif isinstance(event, BooksPush):
            snapshots, broken = self.market.books(event, now_ms)
            self.records.extend(snapshots)
            if broken:
                self.resubscribe.append(event.channel)
        elif isinstance(event, TickerPush):
            self.records.extend(self.market.tickers(event))
            self._rejected(event.rejected, now_ms, text)
        elif isinstance(event, CandlePush):
            self.records.extend(self.market.candles(event))
            self._rejected(event.rejected, now_ms, text)
        elif isinstance(event, Rejected):
            self._rejected((event,), now_ms, text)

    def subscription_failed(self, channel: str, message: str) -> None:
        self._meter(channel).failed = message

    def stream_down(self, now_ms: int) -> None:
        """The trade stream's connection went away: held pushes become holes, the outage is no data."""
        if not self.stream_up:
            return
        self.stream_up = False
        self._down_since_ms = now_ms
        out = Delivery()
        self.tape.flush_held(out, reason="reconnect")
        self._apply(out, now_ms)
        if self.no_data.outage_ms is None:
            self.coverage.close(self.no_data.outage_begins(now_ms))
        self.records += self.no_data.outage_to(now_ms)

    def stream_up_again(self, now_ms: int) -> None:
        if self.stream_up:
            return
        if self._ever_up:
            self.counts["reconnects"] += 1
        self._ever_up = self.stream_up = True
        self._last_trade_msg_ms = now_ms

    def on_fill(
        self,
        request: FillRequest,
        trades: list[Trade],
        unrecoverable: tuple[int, int] | None,
        now_ms: int,
    ) -> None:
        """REST's answer to ``request``."""
        self.rest.answered(request)
        self.counts["rest"] += len(trades)
        counts = None
        if (
            self.settings.trades_channel == "trades"
        ):  # aggregated mode: the pushes' shape (docs/collectors.md)
            trades, counts = aggregate_fills(trades)
        if request.kind == "recent":
            if not trades:
                return
            after = min(t.trade_id for t in trades) - 1 if counts is None else trades[0].trade_id - counts[0]
            out = self.tape.fill(trades, after_id=after, before_id=None, unrecoverable=None, counts=counts)
        else:
            out = self.tape.fill(
                trades,
                after_id=request.after_id,
                before_id=request.before_id,
                unrecoverable=unrecoverable,
                counts=counts,
            )
        self._apply(out, now_ms)
        self._catch_up(now_ms)

    def rest_rejected(self, rows: list[tuple[str, str]], now_ms: int) -> None:
        """``(reason, text)`` of REST rows a domain rule refused: archived, never stored (their ids stay a hole)."""
        for reason, text in rows:
            self.counts["rejected"] += 1
            self.records.append(
                self.archive.rejected(
                    channel="history-trades", inst_id=self.inst_id, recv_ms=now_ms, reason=reason, text=text
                )
            )

    def fill_failed(self, request: FillRequest, reason: str, now_ms: int) -> None:
        """REST could not answer ``request`` (its client already retried): retry later, then give up."""
        attempts = self.rest.failed(request, now_ms)
        if attempts is None:
            return
        first = request.after_id + 1
        for hole in [h for h in self.tape.holes if h.first_id == first]:
            self.tape.holes.remove(hole)
            hole.reason = f"REST failed {attempts} times: {reason}"
            self._hole_closed(hole, now_ms)

    def tick(self, now_ms: int) -> None:
        """Time passes: release held pushes, extend an outage, close candles, poll REST, record coverage."""
        self._apply(self.tape.release_due(now_ms), now_ms)
        if self.no_data.outage_ms is not None:
            self.records += self.no_data.outage_to(now_ms)
        self.records.extend(self.candles.tick(now_ms))
        quiet_since = self._last_trade_msg_ms if self.stream_up else self._down_since_ms
        self.rest.plan(
            now_ms,
            holes=self.tape.holes,
            quiet_ms=now_ms - quiet_since,
            catching_up=self.no_data.outage_ms is not None,
            frontier_id=self.tape.frontier_id,
        )
        self.coverage.tick(now_ms)

    def stop(self, now_ms: int) -> None:
        """Stopping: pending candle updates and the coverage of the session so far."""
        self.records.extend(self.candles.tick(now_ms))
        self.records.extend(self.candles.flush())
        self.coverage.close(now_ms)
        self.stream_up = False

    # -- outputs -----------------------------------------------------------------------------------------

    def drain(self) -> list[object]:
        records, self.records = self.records, []
        records.extend(self.coverage.take())
        return records

    @property
    def has_requests(self) -> bool:
        return self.rest.pending

    def take_requests(self) -> list[FillRequest]:
        return self.rest.take()

    def health(self, now_ms: int, *, writer_lag_ms: int | None = None) -> PairHealth:
        c = self.counts
        if not self.stream_up:
            state = "down"
        elif self.no_data.outage_ms is not None or self.tape.holes:
            state = "catching_up"
        else:
            state = "live"
        return PairHealth(
            inst_id=self.inst_id,
            state=state,
            channels=tuple(m.health(now_ms, down=not self.stream_up) for m in self.meters.values()),
            reconnects=c["reconnects"],
            trades_stored=c["trades"],
            duplicates=c["duplicates"],
            gaps_found=c["found"],
            gaps_filled=c["filled"],
            gaps_unrecoverable=c["unrecoverable"],
            gaps_open=len(self.tape.holes),
            rest_trades=c["rest"],
            rejected=c["rejected"],
            revision_requests=len(self.candles.revision_requests),
            frontier_id=self.tape.frontier_id,
            writer_lag_ms=writer_lag_ms,
        )

    # -- internals ---------------------------------------------------------------------------------------

    def _meter(self, channel: str) -> ChannelMeter:
        meter = self.meters.get(channel)
        if meter is None:
            meter = self.meters[channel] = ChannelMeter(channel)
        return meter

    def _keep(self, record: object | None) -> None:
        if record is not None:
            self.records.append(record)

    def _rejected(self, rejected: tuple[Rejected, ...], now_ms: int, text: str | None) -> None:
        for item in rejected:
            self.counts["rejected"] += 1
            if item.channel is not None:
                self._meter(item.channel).rejected += 1
            self.records.append(
                self.archive.rejected(
                    channel=item.channel,
                    inst_id=item.inst_id,
                    recv_ms=now_ms,
                    reason=item.reason,
                    text=item.text if text is None else text,
                )
            )

    def _on_trades(self, push: TradesPush, now_ms: int, text: str | None) -> None:
        if push.rejected:
            self._rejected(push.rejected, now_ms, text)
        if not self.stream_up:
            self.stream_up_again(now_ms)
        self._last_trade_msg_ms = now_ms
        frontier = self.tape.frontier_id
        out = self.tape.offer(push.trades, push.counts, now_ms)
        self._apply(out, now_ms)
        if self.no_data.outage_ms is not None and (out.trades or self._behind_frontier(push, frontier)):
            start, records = self.no_data.outage_ends(now_ms)
            self.records += records
            # the stream joined the frontier: every later id comes from it in order or opens a hole of its own
            self.coverage.collecting(start)

    def _behind_frontier(self, push: TradesPush, frontier: int | None) -> bool:
        """The push only repeated ids REST already stored (a stream behind a fast catch-up, which may never
        deliver a trade past the frontier) and nothing is held ahead of it: the stream is back at the tape."""
        return (
            bool(push.trades)
            and frontier is not None
            and not self.tape.held
            and max(t.trade_id for t in push.trades) <= frontier
        )

    def _apply(self, out: Delivery, now_ms: int) -> None:
        self.counts["duplicates"] += out.duplicates
        for hole in out.opened:
            self.counts["found"] += 1
            self.records += self.no_data.mark(hole.start_ms, hole.end_ms)
            self.coverage.span(
                hole.start_ms,
                hole.end_ms,
                CoverageStatus.GAP,
                f"trade ids {hole.first_id}-{hole.last_id} missing ({hole.reason})",
            )
            self.rest.hole(hole)
        if out.trades:
            self.counts["trades"] += len(out.trades)
            self.records.extend(out.trades)
            self.candles.add(out.trades)
            if self.no_data.outage_ms is None:
                self.records += self.no_data.watching_from(out.trades[0].ts_ms)
                self.coverage.collecting(out.trades[0].ts_ms)
        for hole in out.closed:
            self._hole_closed(hole, now_ms)

    def _hole_closed(self, hole: Hole, now_ms: int) -> None:
        if hole.missing:
            self.counts["unrecoverable"] += 1
            ids = ", ".join(f"{a}-{b}" for a, b in hole.missing)
            reason = hole.reason if hole.reason.startswith("REST failed") else "REST did not return them"
            log.warning("%s: trade ids %s unrecoverable: %s", self.inst_id, ids, reason)
            self.no_data.lost(hole.start_ms, hole.end_ms)
            self.coverage.span(
                hole.start_ms, hole.end_ms, CoverageStatus.UNRECOVERABLE, f"trade ids {ids}: {reason}"
            )
            return
        self.counts["filled"] += 1
        self.coverage.span(
            hole.start_ms, hole.end_ms, CoverageStatus.BACKFILLED, f"trade ids {hole.first_id}-{hole.last_id}"
        )
        self.records += self.no_data.filled(hole.start_ms, hole.end_ms, now_ms)

    def _catch_up(self, now_ms: int) -> None:
        """During an outage, REST trades move the start of the no-data span up to the frontier's time."""
        outage, frontier_ts = self.no_data.outage_ms, self.tape.frontier_ts_ms
        if outage is not None and frontier_ts is not None and frontier_ts > outage:
            self.coverage.span(outage, frontier_ts, CoverageStatus.BACKFILLED, "caught up from REST")
            self.records += self.no_data.caught_up_to(frontier_ts, now_ms)
