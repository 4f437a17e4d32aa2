"""The effective ``ops`` section: the config file's, with the environment's overrides (settings) applied."""

from __future__ import annotations

from collectors.config import CollectorsConfig, OpsConfig
from collectors.settings import Settings

__all__ = ["effective_ops", "with_settings"]


def effective_ops(config: OpsConfig, settings: Settings) -> OpsConfig:
    """``COLLECTOR_METRICS_PORT`` and ``COLLECTOR_LOG_FORMAT`` win over the file when set."""
    update: dict[str, object] = {}
    if settings.collector_metrics_port is not None:
        update["metrics_port"] = settings.collector_metrics_port
    if settings.collector_log_format is not None:
        update["log_format"] = settings.collector_log_format
    return config.model_copy(update=update) if update else config


def with_settings(config: CollectorsConfig, settings: Settings) -> CollectorsConfig:
    """``config`` with :func:`effective_ops` as its ``ops`` section (what a collector process serves by)."""
    ops = effective_ops(config.ops, settings)
    return config if ops is config.ops else config.model_copy(update={"ops": ops})
