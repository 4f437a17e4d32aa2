"""The one retry condition of every task: retry only when the error can pass."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import State, TaskRun

from collectors.errors import is_retryable

__all__ = ["retryable"]


def retryable(_task: Any, _run: TaskRun, state: State[Any]) -> bool:
    """Retry only when the error can pass (Prefect keeps the exception in the Failed state's data); a
    ``retry_condition_fn`` for ``@task``."""
    return isinstance(state.data, BaseException) and is_retryable(state.data)
