"""``make bench-peers``: our collector beside ccxt.pro and cryptofeed through one fault timeline (bench.py).

The recorder scripts ``rec_*.py`` run in the peers' own virtualenvs and are never imported by the project.
"""
