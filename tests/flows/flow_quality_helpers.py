"""Helpers of the quality flow tests: a one-pair config file, the session's PostgreSQL database as DATABASE_URL,
and reading artifacts back from the harness's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey


def point_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> None:
    """DATABASE_URL and COLLECTOR_CONFIG (BTC-USDT only, trades only, 1m..1h) for the flows."""
    config = tmp_path / "collectors.yaml"
    config.write_text(
        "exchanges:\n  okx:\n    channels: [trades]\n    timeframes: [1m, 5m, 15m, 1h]\n    pairs: [BTC-USDT]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("COLLECTOR_CONFIG", str(config))


async def artifacts(flow_run_id: Any) -> dict[str, Any]:
    """Artifacts of one flow run by key: tables as lists of rows, markdown as text."""
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found if a.key}


async def artifact_versions(key: str) -> int:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return len(found)
