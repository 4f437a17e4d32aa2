"""The simulated instruments: real OKX precision rules for the default pairs, and their REST/WS rows.

Sources of tickSz/lotSz/minSz (see docs/simulator.md): the real 2022-05-13 ``/public/instruments`` recording
(cryptofeed ``OKX.0``) for eight pairs; PEPE-USDT is not in that recording and its values come from a
third-party test fixture (an estimate). Start prices are rough 2026 levels, not data.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from collectors.model import format_decimal

__all__ = ["DEFAULT_PAIRS", "SPECS", "InstrumentSpec", "instrument_row", "spec_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    """Precision rules and the simulated starting level of one SPOT instrument."""

    inst_id: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    list_time_ms: int
    start_px: Decimal

    @property
    def base_ccy(self) -> str:
        return self.inst_id.split("-")[0]

    @property
    def quote_ccy(self) -> str:
        return self.inst_id.split("-")[1]

    @property
    def min_lots(self) -> int:
        return int(self.min_sz / self.lot_sz)

    @property
    def start_ticks(self) -> int:
        return int(self.start_px / self.tick_sz)

    def price(self, ticks: int) -> str:
        """Wire text of a price given in ticks: ``"64074"``, ``"64075.8"``, ``"0.00001234"``."""
        return _plain(Decimal(ticks) * self.tick_sz)

    def size(self, lots: int) -> str:
        """Wire text of a size given in lots."""
        return _plain(Decimal(lots) * self.lot_sz)

    def notional(self, ticks_x_lots: int) -> str:
        """Wire text of a sum of price x size given as a sum of ticks x lots."""
        return _plain(Decimal(ticks_x_lots) * self.tick_sz * self.lot_sz)


def _plain(value: Decimal) -> str:
    if value == 0:
        return "0"
    return format_decimal(value.normalize())


def _spec(inst_id: str, tick: str, lot: str, min_sz: str, listed: int, px: str) -> InstrumentSpec:
    return InstrumentSpec(
        inst_id=inst_id,
        tick_sz=Decimal(tick),
        lot_sz=Decimal(lot),
        min_sz=Decimal(min_sz),
        list_time_ms=listed,
        start_px=Decimal(px),
    )


SPECS: Final[dict[str, InstrumentSpec]] = {
    s.inst_id: s
    for s in (
        _spec("BTC-USDT", "0.1", "0.00000001", "0.00001", 1548133413000, "64000"),
        _spec("ETH-USDT", "0.01", "0.000001", "0.001", 1548133413000, "3400"),
        _spec("SOL-USDT", "0.001", "0.000001", "0.01", 1601431200000, "150"),
        _spec("DOGE-USDT", "0.000001", "0.000001", "10", 1548133413000, "0.15"),
        _spec("TON-USDT", "0.0001", "0.0001", "1", 1651204987000, "5.2"),
        _spec("ETH-USDC", "0.01", "0.000001", "0.001", 1585176747000, "3400"),
        _spec("BTC-USDC", "0.1", "0.00000001", "0.00001", 1585176747000, "64000"),
        _spec("UNI-USDT", "0.001", "0.000001", "0.1", 1600280910000, "8.5"),
        _spec("PEPE-USDT", "0.000000001", "1", "100000", 1683187200000, "0.00001234"),
    )
}
DEFAULT_PAIRS: Final = tuple(SPECS)


def spec_for(inst_id: str) -> InstrumentSpec:
    """The spec of a known pair; raises ``KeyError`` for pairs the simulator does not model."""
    return SPECS[inst_id]


def instrument_row(spec: InstrumentSpec) -> dict[str, object]:
    """A ``/public/instruments`` SPOT row, keys in the order of OKX's answers (alphabetical)."""
    return {
        "alias": "",
        "auctionEndTime": "",
        "baseCcy": spec.base_ccy,
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": spec.inst_id,
        "instType": "SPOT",
        "lever": "10",
        "listTime": str(spec.list_time_ms),
        "lotSz": format_decimal(spec.lot_sz),
        "maxIcebergSz": "9999999999.0000000000000000",
        "maxLmtAmt": "20000000",
        "maxLmtSz": "9999999999",
        "maxMktAmt": "1000000",
        "maxMktSz": "1000000",
        "maxStopSz": "1000000",
        "maxTriggerSz": "9999999999.0000000000000000",
        "maxTwapSz": "9999999999.0000000000000000",
        "minSz": format_decimal(spec.min_sz),
        "optType": "",
        "quoteCcy": spec.quote_ccy,
        "ruleType": "normal",
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": format_decimal(spec.tick_sz),
        "uly": "",
    }
