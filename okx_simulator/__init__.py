"""A local OKX v5 exchange: REST, WebSocket, a deterministic market, fault injection and ground truth.

Public surface: :class:`SimulatorServer` (``async with SimulatorServer(config=...) as sim``),
:class:`SimulatorConfig`, and the CLI functions in :mod:`okx_simulator.cli`. See docs/simulator.md.
"""

from __future__ import annotations

from okx_simulator.config import Credentials, SimulatorConfig
from okx_simulator.instruments import DEFAULT_PAIRS, SPECS, InstrumentSpec
from okx_simulator.server import SimulatorServer

__all__ = ["DEFAULT_PAIRS", "SPECS", "Credentials", "InstrumentSpec", "SimulatorConfig", "SimulatorServer"]
