"""A local OKX v5 exchange: REST, WebSocket, a deterministic market, fault injection and ground truth.

Public surface: :class:`SimulatorServer` (``async with SimulatorServer(config=...) as sim``),
:class:`SimulatorConfig`, and the CLI functions in :mod:`collectors.simulator.cli`. See docs/simulator.md.
"""

from __future__ import annotations

from collectors.simulator.config import Credentials, SimulatorConfig
from collectors.simulator.instruments import DEFAULT_PAIRS, SPECS, InstrumentSpec
from collectors.simulator.server import SimulatorServer

__all__ = ["DEFAULT_PAIRS", "SPECS", "Credentials", "InstrumentSpec", "SimulatorConfig", "SimulatorServer"]
