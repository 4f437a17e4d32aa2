"""Live collectors: a pure per-pair core (trade continuity, gaps, candles, books, health) and its I/O runner.

See docs/collectors.md.
"""
