"""The soak (``make soak``, not in ``make test``): see ``driver.py`` for what runs and what is checked.

``SOAK_MINUTES=2 make soak PYTEST_ARGS=tests/soak`` is the short smoke run; the default is 30 minutes.
"""

from __future__ import annotations

import pytest

from tests.soak.driver import Settings, soak, time_budget_s
from tests.soak.report import write_report

pytestmark = [pytest.mark.soak, pytest.mark.timeout(time_budget_s())]


async def test_soak_trades_candles_and_resources_hold() -> None:
    settings = Settings.from_env()
    print(f"soak seed {settings.seed} (SOAK_SEED={settings.seed} repeats the fault plan)")
    result = await soak(settings)
    report = write_report(result)
    print(f"soak report: {report}")
    failed = [name for name, ok in result.checks().items() if not ok]
    assert failed == [], f"{failed}; see {report}"
    assert len({f["kind"] for f in result.faults}) >= min(13, len(result.faults) // 3)
