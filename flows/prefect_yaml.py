"""prefect.yaml read back: the one home of the deployments' names, parameters, schedules and limits.

``prefect deploy --all`` reads the file itself; ``okx-collector serve`` (one process, no workers) and the tests
read it here, so the served deployments are the deployed ones. Only the keys this project uses are understood;
anything else in a deployment entry is refused, so a key added to prefect.yaml is not silently lost by serve.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from collectors.errors import ConfigError

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Schedule

__all__ = ["PREFECT_YAML", "DeploymentSpec", "job_env", "load_specs", "runner_deployment", "schedule_of"]

PREFECT_YAML: Final = Path(__file__).resolve().parents[1] / "prefect.yaml"
_KEYS: Final = frozenset(
    {"name", "entrypoint", "description", "tags", "parameters", "enforce_parameter_schema", "schedules"}
    | {"concurrency_limit", "work_pool"}
)
_SCHEDULE_KEYS: Final = frozenset({"cron", "interval", "rrule", "timezone", "slug", "active", "parameters"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentSpec:
    """One deployment of prefect.yaml, as written there."""

    name: str
    entrypoint: str
    description: str | None = None
    tags: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    enforce_parameter_schema: bool = True
    schedules: tuple[Mapping[str, Any], ...] = ()
    concurrency_limit: int | Mapping[str, Any] | None = None
    work_pool: str | None = None
    job_env: Mapping[str, str] = field(default_factory=dict)


def _spec(entry: Mapping[str, Any], where: str) -> DeploymentSpec:
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: keys serve does not understand: {', '.join(unknown)}")
    for schedule in entry.get("schedules") or ():
        extra = sorted(set(schedule) - _SCHEDULE_KEYS)
        if extra or sum(k in schedule for k in ("cron", "interval", "rrule")) != 1:
            raise ConfigError(
                f"{where}: a schedule needs exactly one of cron/interval/rrule (extra: {extra})"
            )
    pool = entry.get("work_pool") or {}
    env = (pool.get("job_variables") or {}).get("env") or {}
    return DeploymentSpec(
        name=entry["name"],
        entrypoint=entry["entrypoint"],
        description=entry.get("description"),
        tags=tuple(entry.get("tags") or ()),
        parameters=dict(entry.get("parameters") or {}),
        enforce_parameter_schema=bool(entry.get("enforce_parameter_schema", True)),
        schedules=tuple(entry.get("schedules") or ()),
        concurrency_limit=entry.get("concurrency_limit"),
        work_pool=pool.get("name"),
        job_env={str(k): str(v) for k, v in env.items()},
    )


def load_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """Every deployment of ``path``; raises :class:`ConfigError` for an unreadable file or an unknown key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    entries = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: no deployments")
    return [_spec(entry, f"{path}: deployments[{i}]") for i, entry in enumerate(entries)]


def schedule_of(raw: Mapping[str, Any]) -> Schedule:
    """A prefect.yaml schedule item as a Prefect schedule (interval in seconds, cron or rrule)."""
    from prefect.schedules import Cron, Interval, RRule

    common: dict[str, Any] = {
        "timezone": raw.get("timezone"),
        "active": bool(raw.get("active", True)),
        "parameters": dict(raw.get("parameters") or {}),
        "slug": raw.get("slug"),
    }
    if "cron" in raw:
        return Cron(raw["cron"], **common)
    if "interval" in raw:
        return Interval(datetime.timedelta(seconds=float(raw["interval"])), **common)
    return RRule(raw["rrule"], **common)


async def runner_deployment(spec: DeploymentSpec, root: Path) -> RunnerDeployment:
    """The deployment ``serve`` registers for ``spec``: the flow loaded from its entrypoint under ``root``."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.flows import Flow, load_flow_from_entrypoint

    flow: Flow[..., Any] = load_flow_from_entrypoint(str(root / spec.entrypoint))
    limit: int | ConcurrencyLimitConfig | None
    if isinstance(spec.concurrency_limit, Mapping):
        limit = ConcurrencyLimitConfig(
            limit=int(spec.concurrency_limit["limit"]),
            collision_strategy=ConcurrencyLimitStrategy(
                spec.concurrency_limit.get("collision_strategy", "ENQUEUE")
            ),
        )
    else:
        limit = spec.concurrency_limit
    return await flow.ato_deployment(
        name=spec.name,
        description=spec.description,
        tags=list(spec.tags),
        parameters=dict(spec.parameters),
        enforce_parameter_schema=spec.enforce_parameter_schema,
        schedules=[schedule_of(s) for s in spec.schedules],
        concurrency_limit=limit,
    )


def job_env(specs: Sequence[DeploymentSpec]) -> dict[str, str]:
    """The union of the deployments' job environment (``serve`` gives it to every run it starts)."""
    env: dict[str, str] = {}
    for spec in specs:
        for key, value in spec.job_env.items():
            if env.get(key, value) != value:
                raise ConfigError(
                    f"prefect.yaml: {key} differs between deployments; serve has one environment"
                )
            env[key] = value
    return env
