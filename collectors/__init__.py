"""okx-collector's library: model, candle engine, storage, exchanges and the OKX simulator.

A plain asyncio library: it never imports Prefect (enforced by import-linter). Import from the submodules,
for example ``from collectors.model import Trade``.
"""

__version__ = "0.1.0"
