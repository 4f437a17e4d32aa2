"""Benchmarks: each ``bench_<name>.py`` module exposes ``run(quick: bool = False) -> list[dict]``.

Run them with ``make bench`` (or ``python -m benchmarks [--only NAME] [--quick]``). Every entry compares our
figure with a baseline measured in the same run; results go to ``benchmarks/results/latest.json``.
"""
