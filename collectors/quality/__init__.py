"""Data quality: re-aggregation of stored trades into candles, and the completeness check (docs/quality.md).

Plain library code (no Prefect): :mod:`~collectors.quality.reaggregate` reruns the candle engine over stored
trades and upserts what changed; :mod:`~collectors.quality.validate` checks a pair over a range and records
``validation_runs`` and ``validation_findings``. Tasks and flows (tasks/, flows/) and the CLI call these.
"""
