"""Process settings from the environment (a contract for users and scripts), built once at the edge.

=====================  ===============================================  =======================================
variable               meaning                                          default
=====================  ===============================================  =======================================
DATABASE_URL           SQLAlchemy URL (sqlite or postgresql)            sqlite:///data/marketdata.db
OKX_REST_URL           OKX REST base                                    ``okx.spec.REST_URL``
OKX_WS_PUBLIC_URL      OKX public WebSocket                             ``okx.spec.WS_PUBLIC_URL``
OKX_WS_BUSINESS_URL    OKX business WebSocket (candles, trades-all)     ``okx.spec.WS_BUSINESS_URL``
OKX_API_KEY            optional; never logged, never stored             (unset)
OKX_API_SECRET         optional; never logged, never stored             (unset)
OKX_API_PASSPHRASE     optional; never logged, never stored             (unset)
COLLECTOR_CONFIG       path of the collectors config file               config/collectors.yaml
=====================  ===============================================  =======================================

``COLLECTOR_METRICS_PORT`` (the metrics/health port, 0: off) and ``COLLECTOR_LOG_FORMAT`` (``text``, ``json``,
``kv``) override the config file's ``ops.metrics_port`` and ``ops.log_format`` when set (docs/observability.md).

A ``.env`` file in the working directory is read too; real environment variables win over it. A ``.env`` holding
an ``OKX_API_*`` secret must be private (mode 0600 or stricter) unless ``COLLECTOR_ALLOW_READABLE_SECRETS=1``
(collectors/env_file.py). The OKX URL
defaults are OKX facts and live in ``collectors/exchanges/okx/spec.py`` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from collectors.env_file import check_env_file, ensure_readable
from collectors.errors import ConfigError
from collectors.exchanges.okx.spec import REST_URL, WS_BUSINESS_URL, WS_PUBLIC_URL

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings"]

DEFAULT_DATABASE_URL = "sqlite:///data/marketdata.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, case_sensitive=False)

    database_url: str = Field(default=DEFAULT_DATABASE_URL)
    okx_rest_url: str = Field(default=REST_URL)
    okx_ws_public_url: str = Field(default=WS_PUBLIC_URL)
    okx_ws_business_url: str = Field(default=WS_BUSINESS_URL)
    okx_api_key: SecretStr | None = None
    okx_api_secret: SecretStr | None = None
    okx_api_passphrase: SecretStr | None = None
    collector_config: Path = Field(default=Path("config/collectors.yaml"))
    collector_metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    collector_log_format: Literal["text", "json", "kv"] | None = None
    collector_allow_readable_secrets: bool = (
        False  # accept a .env with secrets open to others (collectors/env_file.py)
    )

    @field_validator("okx_rest_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        _check_url(value)
        if "?" in value or "#" in value:  # paths are appended to the base
            raise ValueError(f"{value!r} a base URL takes no query or fragment")
        return value.rstrip("/")

    @field_validator("okx_ws_public_url", "okx_ws_business_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(f"must start with ws:// or wss://, got {value!r}")
        _check_url(value)
        if "#" in value:
            raise ValueError(f"{value!r} a WebSocket URL takes no fragment")
        return value

    def masked(self) -> dict[str, Any]:
        """Effective settings for display: secrets shown as ``********`` (or ``<unset>``), passwords in URLs hidden."""
        from collectors.storage.engine import normalize_url

        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif value is None:
                value = "<unset>"
            elif name == "database_url":
                value = normalize_url(value).render_as_string(hide_password=True)
            shown[name.upper()] = str(value)
        return shown


def _check_url(value: str) -> None:
    """A URL a client can connect to: a host, a port in 1..65535 if any, no whitespace."""
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} contains whitespace")
    parts = urlsplit(value)
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{value!r} has a bad port")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raises :class:`ConfigError` naming the variable and the bad value, or naming a
    ``.env`` that holds OKX secrets and is open to other users (:func:`~collectors.env_file.check_env_file`)."""
    env_file = Path(str(Settings.model_config.get("env_file")))
    ensure_readable(env_file)  # pydantic-settings would raise a bare OSError (a traceback) for it
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    check_env_file(env_file, allow_readable=settings.collector_allow_readable_secrets)
    return settings
