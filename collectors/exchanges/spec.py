"""What the core knows about an exchange: one frozen :class:`ExchangeSpec` per exchange.

This module imports nothing of the exchanges themselves, so an exchange package (``exchanges/okx/spec.py``)
and the registry both import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["ExchangeSpec"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeSpec:
    """What the core needs to know about an exchange.

    ``validate_symbol`` returns the symbol or raises ``ValueError`` with a readable reason that names the
    value (the config loader shows it beside the field). ``default_channels`` and ``default_symbols`` are what
    a config entry for this exchange collects when it leaves ``channels`` or ``pairs`` out; empty
    ``default_channels`` means every channel in ``channels``.
    """

    name: str
    # channel names of the collectors config that this exchange can serve
    channels: frozenset[str]
    validate_symbol: Callable[[str], str]
    default_channels: tuple[str, ...] = ()
    default_symbols: tuple[str, ...] = ()
    # our timeframe name -> the exchange's candle bar name, for the timeframes it publishes
    bars: Mapping[str, str] = field(default_factory=dict)
    # default endpoints, by role ("rest", "ws_public", ...)
    endpoints: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [c for c in self.default_channels if c not in self.channels]
        if unknown:
            raise ValueError(f"{self.name}: default channels {unknown} are not among its channels")

    def channels_by_default(self) -> tuple[str, ...]:
        """The channels a config entry collects when it names none."""
        return self.default_channels or tuple(sorted(self.channels))
