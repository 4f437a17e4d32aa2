"""Exchange registry: the core knows exchanges only through :class:`ExchangeSpec`.

A second exchange plugs in beside ``exchanges/okx`` without touching the core: its package exposes an
``ExchangeSpec`` and registers it under the ``okx_collector.exchanges`` entry-point group (in its own
``pyproject.toml``: ``[project.entry-points."okx_collector.exchanges"] myex = "myex.spec:SPEC"``), or a caller
builds its own :class:`ExchangeRegistry`. No module-level mutable registry exists: each call to
:func:`default_registry` builds a fresh one.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from collectors.errors import ConfigError
from collectors.exchanges.okx.spec import OKX
from collectors.exchanges.spec import ExchangeSpec

__all__ = ["ENTRY_POINT_GROUP", "ExchangeRegistry", "ExchangeSpec", "default_registry"]

ENTRY_POINT_GROUP = "okx_collector.exchanges"


class ExchangeRegistry:
    """Exchange specs by name; built by the caller, never module-level."""

    def __init__(self, specs: Iterable[ExchangeSpec] = ()) -> None:
        self._specs: dict[str, ExchangeSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ExchangeSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"exchange {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ExchangeSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown exchange {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._specs)


def default_registry() -> ExchangeRegistry:
    """The built-in exchanges plus every spec published under :data:`ENTRY_POINT_GROUP`."""
    registry = ExchangeRegistry([OKX])
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        spec = entry.load()
        if not isinstance(spec, ExchangeSpec):
            raise ConfigError(f"entry point {entry.name!r} ({entry.value}) is not an ExchangeSpec")
        registry.register(spec)
    return registry
