"""Settings of one simulator instance: the market, the timings and the switches for UNVERIFIED behaviour.

Every field has a module-level default; tests shorten the timings (``idle_timeout_s`` etc.) so they run fast.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Final, Literal

from okx_simulator.instruments import DEFAULT_PAIRS, SPECS

__all__ = ["DEFAULT_CONFIG", "Credentials", "SimulatorConfig"]

BeforeOnly = Literal["newest", "adjacent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """The one API key the simulator accepts for ``login`` and signed REST requests."""

    api_key: str = "sim-api-key"
    secret_key: str = "sim-secret-key"
    passphrase: str = "sim-passphrase"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """Everything that shapes one simulator run.

    Market: ``seed``, ``pairs``, ``trade_rate`` (mean fills per second per pair), ``history_hours`` (how far
    back the tape is visible; the tape itself is a function of seed and time, not of the start),
    ``history_trade_rate`` (rate before the server started; None = ``trade_rate``; the firehose keeps history
    at the default rate so REST history and 24 h statistics stay cheap, and then the tape after the start
    depends on the start), ``chunk_ms`` (tape generation unit; 60 000 by default, smaller for firehose rates),
    ``quiet_prob`` and ``burst_prob`` (share of minutes with no trade / with ``burst_factor`` times the rate).

    Switches for behaviour the reference marks UNVERIFIED are documented in docs/simulator.md.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    pairs: tuple[str, ...] = DEFAULT_PAIRS
    trade_rate: float = 2.0
    history_trade_rate: float | None = None
    history_hours: float = 6.0
    chunk_ms: int = 60_000
    quiet_prob: float = 0.08
    burst_prob: float = 0.05
    burst_factor: float = 6.0
    # WebSocket timings.
    tick_ms: int = 100
    idle_timeout_s: float = 30.0
    heartbeat_s: float = 60.0
    candle_push_ms: int = 1_000
    notice_close_s: float = 60.0
    # Switches (UNVERIFIED points).
    legacy_checksum: bool = False
    notice_clean_close: bool = False
    login_failure_close: bool = False
    notice_on_business: bool = True
    hk_aligned: bool = True
    history_trades_days: int = 90
    trades_all_seq_id: bool = False
    rest_trades_aggregated: bool = False
    candle_confirm_push: bool = True
    before_only: BeforeOnly = "newest"
    history_candles_max: int = 300
    rate_limits: bool = True
    # Who may use the /sim control plane: loopback always; also the peers in ``control_allow`` (CIDR networks);
    # everyone when ``control_loopback_only`` is False (``--open-control``). The OKX endpoints answer anyone.
    control_loopback_only: bool = True
    control_allow: tuple[str, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)
    # Replay a recorded capture on the WebSocket instead of generated data (see replay.py).
    replay_path: str | None = None

    def __post_init__(self) -> None:
        if self.trade_rate < 0:
            raise ValueError(f"trade_rate must be >= 0, got {self.trade_rate}")
        if self.history_hours < 0:
            raise ValueError(f"history_hours must be >= 0, got {self.history_hours}")
        if self.chunk_ms <= 0 or 60_000 % self.chunk_ms:
            raise ValueError(f"chunk_ms must divide 60000, got {self.chunk_ms}")
        unknown = [p for p in self.pairs if p not in SPECS]
        if unknown or not self.pairs:
            raise ValueError(f"unknown or no pairs {unknown}; known: {', '.join(SPECS)}")
        if self.tick_ms <= 0 or self.idle_timeout_s <= 0 or self.heartbeat_s <= 0:
            raise ValueError("tick_ms, idle_timeout_s and heartbeat_s must be positive")
        for network in self.control_allow:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"control_allow: {network!r} is not a CIDR network like 192.0.2.0/24"
                ) from None


DEFAULT_CONFIG: Final = SimulatorConfig()
