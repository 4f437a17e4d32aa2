"""Operations: what a running collector tells an operator (docs/observability.md).

``snapshot``: one consistent reading of a collector's health objects, taken on its event loop; ``metrics``: that
reading as Prometheus metric families; ``readiness``: the ``/ready`` rule; ``server``: the local HTTP endpoint
(``/metrics``, ``/health``, ``/ready``, ``/status``) beside :func:`collectors.live.app.run_collectors`;
``coverage``: the last 24 h of a pair's coverage ledger as seconds per kind; ``options``: the environment's
overrides of the config's ``ops`` section.
"""
