"""OKX trade frame parsing: parse + validate + normalise, beside ``json.loads`` plus Decimal of the same frames.

Frames have the real shapes (``trades-all`` as in OKX's docs example and the simulator; aggregated ``trades`` as
in the 2026 recording, with count, source and seqId), one fill each, with deterministic ids, prices (a BTC-like
random walk on a 0.1 tick, so prices repeat as they do live) and sizes. Ours is
:func:`collectors.exchanges.okx.parse.parse_frame`: a typed :class:`TradesPush` holding a
:class:`~collectors.model.Trade` that passed ``check_trade``. The baseline (issue 9) decodes each frame with
``json.loads`` and makes ``Decimal`` of px and sz. Repeats of ours and the baseline are interleaved and the
best of each is reported (frames/s), so load on the machine hits both alike.

Entries: ``parse.trades_all``, ``parse.trades`` (ours vs the baseline), and ``parse.stages``: the time of each
step of our fast path on the same frames (params, us per frame), with the baseline again, to show where time
goes. ``python -m benchmarks.bench_parse [--quick]`` prints the entries as JSON.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from collectors.exchanges.okx import fast
from collectors.exchanges.okx.parse import parse_frame
from collectors.model import Side, Trade
from collectors.validation import check_trade

SEED = 20_261_126
RECV_MS = 1_786_538_761_000
TRADES_ALL = (
    '{"arg":{"channel":"trades-all","instId":"%s"},"data":[{"instId":"%s","tradeId":"%d","px":"%s","sz":"%s",'
    '"side":"%s","source":"0","ts":"%d"}]}'
)
TRADES = (
    '{"arg":{"channel":"trades","instId":"%s"},"data":[{"instId":"%s","tradeId":"%d","px":"%s","sz":"%s",'
    '"side":"%s","ts":"%d","count":"%d","source":"0","seqId":%d}]}'
)


def frames(channel: str, count: int, seed: int = SEED) -> list[str]:
    """``count`` one-fill frames of ``channel`` for BTC-USDT, deterministic."""
    rng = random.Random(seed)
    ticks, trade_id, ts = 640_000, 1_040_968_613, 1_786_538_760_218
    out = []
    for _ in range(count):
        ticks += rng.randint(-3, 3)
        px = str(Decimal(ticks) / 10)
        sz = str(Decimal(rng.randint(1, 200_000_000)).scaleb(-8).normalize())
        side = rng.choice(("buy", "sell"))
        ts += rng.randint(0, 40)
        inst = "BTC-USDT"
        if channel == "trades-all":
            trade_id += 1
            out.append(TRADES_ALL % (inst, inst, trade_id, px, sz, side, ts))
        else:
            n = rng.randint(1, 3)
            trade_id += n
            out.append(TRADES % (inst, inst, trade_id, px, sz, side, ts, n, 79_706_765_242 + trade_id))
    return out


def baseline(texts: list[str]) -> None:
    for text in texts:
        for row in json.loads(text)["data"]:
            Decimal(row["px"])
            Decimal(row["sz"])


def ours(texts: list[str]) -> None:
    for text in texts:
        parse_frame(text, recv_ms=RECV_MS)


def _best_rates(runs: dict[str, Callable[[], None]], count: int, repeats: int) -> dict[str, float]:
    """Frames/s of each run, best of ``repeats``, the runs interleaved within each repeat."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: count / seconds for name, seconds in best.items()}


def _stages(texts: list[str]) -> dict[str, Callable[[], None]]:
    """Each step of the trades-all fast path alone, on the same frames."""
    regex = fast._TRADES_ALL.fullmatch
    groups = [regex(t).groups() for t in texts]  # type: ignore[union-attr]
    trades = [
        Trade(exchange="okx", inst_id=g[0], trade_id=int(g[2]), ts_ms=int(g[7]), price=Decimal(g[3]),
              size=Decimal(g[4]), side=Side(g[5]), recv_ms=RECV_MS, source=g[6])
        for g in groups
    ]  # fmt: skip

    def match() -> None:
        for t in texts:
            regex(t)

    def numbers() -> None:
        for g in groups:
            int(g[2]), int(g[7]), fast._decimal(g[3]), fast._decimal(g[4])

    def trade_init() -> None:
        for g in groups:
            Trade(exchange="okx", inst_id=g[0], trade_id=1, ts_ms=2, price=g[3], size=g[4], side=g[5],  # type: ignore[arg-type]
                  recv_ms=RECV_MS, source=g[6])  # fmt: skip

    def trade_slots() -> None:
        for g in groups:
            fast._trade("okx", g[0], 1, 2, g[3], g[4], g[5], RECV_MS, g[6])

    def validate() -> None:
        for trade in trades:
            check_trade(trade)

    def push() -> None:
        for trade in trades:
            fast._push("trades-all", "BTC-USDT", (trade,), (1,), RECV_MS, ())

    return {"regex": match, "numbers": numbers, "trade_init": trade_init, "trade_slots": trade_slots,
            "check_trade": validate, "push": push}  # fmt: skip


def _entry(name: str, value: float, base: float, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "metric": "frames_per_s",
        "value": round(value, 1),
        "unit": "frames/s",
        "baseline": "json.loads + Decimal(px, sz)",
        "baseline_value": round(base, 1),
        "ratio": round(value / base, 3),
        "params": params,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    count, repeats = (5_000, 3) if quick else (50_000, 7)
    entries = []
    for channel in ("trades-all", "trades"):
        texts = frames(channel, count)
        rates = _best_rates(
            {"ours": lambda t=texts: ours(t), "baseline": lambda t=texts: baseline(t)}, count, repeats
        )
        params = {"frames": count, "repeats": repeats, "channel": channel, "fills_per_frame": 1,
                  "bytes_per_frame": round(sum(map(len, texts)) / count, 1)}  # fmt: skip
        entries.append(_entry(f"parse.{channel.replace('-', '_')}", rates["ours"], rates["baseline"], params))
    texts = frames("trades-all", count)
    runs = {"ours": lambda: ours(texts), "baseline": lambda: baseline(texts), **_stages(texts)}
    rates = _best_rates(runs, count, repeats)
    us = {name: round(1e6 / rate, 3) for name, rate in rates.items()}
    entries.append(
        _entry("parse.stages", rates["ours"], rates["baseline"], {"us_per_frame": us, "frames": count})
    )
    return entries


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv), sys.stdout, indent=2)
    print()
