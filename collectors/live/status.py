"""Text views of :class:`~collectors.live.health.PairHealth` for the ``collect`` and ``demo`` commands.

:class:`StatusBoard` prints one line per pair: redrawn in place on a terminal, plain periodic blocks otherwise
(a log file or a pipe gets one block every ``plain_every_s``). :func:`summary_table` is the end-of-run table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TextIO

from collectors.live.health import PairHealth
from collectors.logs import printable

__all__ = ["StatusBoard", "status_line", "summary_table", "table"]

_SUMMARY_HEADER: Final = (
    "pair",
    "state",
    "trades",
    "from REST",
    "dups dropped",
    "gaps found",
    "filled",
    "unrecoverable",
    "rejected",
    "reconnects",
)


def _stream(health: PairHealth) -> str:
    """The trade stream's state and last message age (``trades-all live 0.2s``): a dead trade stream must show
    even while books5 or tickers flow. A pair without a trade channel shows its youngest channel."""
    channel = None if health.trades_channel is None else health.channel(health.trades_channel)
    if channel is None:
        others = [c for c in health.channels if c.last_message_age_ms is not None]
        channel = min(others, key=lambda c: c.last_message_age_ms or 0, default=None)
    if channel is None:
        return "no message yet"
    age = "-" if channel.last_message_age_ms is None else f"{channel.last_message_age_ms / 1000:.1f}s"
    return f"{channel.channel} {channel.state} {age}"


def status_line(health: PairHealth) -> str:
    """``BTC-USDT live trades 1234 (rest 56) gaps 2/2 dups 3 rejected 0 reconnects 1 trades-all live 0.2s lag 0.1s``.

    The age is the trade stream's last data push (its channel named), not the youngest channel's."""
    lag = "-" if health.writer_lag_ms is None else f"{health.writer_lag_ms / 1000:.1f}s"
    return printable(
        f"{health.inst_id:<10} {health.state:<11} trades {health.trades_stored:>7} (rest {health.rest_trades})"
        f"  gaps {health.gaps_filled}/{health.gaps_found}  dups {health.duplicates}"
        f"  rejected {health.rejected}  reconnects {health.reconnects}  {_stream(health)}  lag {lag}"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: left-aligned first column, right-aligned numbers; text from the wire (a pair, a
    channel) with its control characters escaped."""
    cells = [list(header), *([printable(str(v)) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def summary_table(health: Sequence[PairHealth]) -> str:
    """The end-of-run table of ``collect``: one row per pair."""
    rows = [
        (
            h.inst_id,
            h.state,
            h.trades_stored,
            h.rest_trades,
            h.duplicates,
            h.gaps_found,
            h.gaps_filled,
            h.gaps_unrecoverable,
            h.rejected,
            h.reconnects,
        )
        for h in health
    ]
    failed = [printable(f"{h.inst_id} {h.state}: {h.error}") for h in health if h.error is not None]
    return "\n".join([table(_SUMMARY_HEADER, rows), *failed])


class StatusBoard:
    """Prints the status of every pair: in place on a tty, else a plain block every ``plain_every_s``."""

    def __init__(self, *, out: TextIO, monotonic_s: Callable[[], float], plain_every_s: float = 10.0) -> None:
        self.out, self.monotonic_s, self.plain_every_s = out, monotonic_s, plain_every_s
        self.tty = out.isatty()
        self._drawn = 0
        self._last_plain_s: float | None = None

    def __call__(self, health: list[PairHealth]) -> None:
        lines = [status_line(h) for h in health]
        if self.tty:
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:
            now = self.monotonic_s()
            if self._last_plain_s is not None and now - self._last_plain_s < self.plain_every_s:
                return
            self._last_plain_s = now
            self.out.write("".join(f"{line}\n" for line in lines))
        self.out.flush()
