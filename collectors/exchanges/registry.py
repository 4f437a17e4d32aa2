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
    """The built-in exchanges plus every spec published under :data:`ENTRY_POINT_GROUP`.

    An installed plug-in that cannot be loaded, is not an :class:`ExchangeSpec` or reuses a registered name
    is a :class:`ConfigError` naming the entry point (the environment is misconfigured, not the caller).
    """
    registry = ExchangeRegistry([OKX])
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry.name!r} ({entry.value})"
        try:
            spec = entry.load()
        except Exception as exc:  # a broken third-party package: any import-time failure
            raise ConfigError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not isinstance(spec, ExchangeSpec):
            raise ConfigError(f"{where} is not an ExchangeSpec")
        try:
            registry.register(spec)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return registry
