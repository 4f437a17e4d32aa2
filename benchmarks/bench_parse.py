"""OKX trade frame parsing: parse + validate + normalise, beside ``json.loads`` plus Decimal of the same frames.

Frames have the real shapes (``trades-all`` as in OKX's docs example and the simulator; aggregated ``trades`` as
in the 2026 recording, with count, source and seqId), one fill each, with deterministic ids, prices (a BTC-like
random walk on a 0.1 tick, so prices repeat as they do live) and sizes. Ours is
:class:`collectors.exchanges.okx.parse.FrameParser` (one per connection, as the WebSocket client keeps it, with
its fast path's bounded Decimal memo): a typed :class:`TradesPush` holding a :class:`~collectors.model.Trade`
that passed ``check_trade``; the stateless :func:`~collectors.exchanges.okx.parse.parse_frame` (no memo) is
measured beside it and reported in the entries' params, and so is the pure-Python fast path
(``FrameParser(compiled=False)``, the fallback when the C extension is not built). ``params.fast_path`` says which
path ``ours`` ran (``compiled`` unless the extension is missing or ``OKX_COLLECTOR_PURE_PYTHON=1``). The baseline
(issue 9) decodes each frame with
``json.loads`` and makes ``Decimal`` of px and sz. Repeats of ours and the baseline are interleaved and the
best of each is reported (frames/s), so load on the machine hits both alike.

Entries: ``parse.trades_all``, ``parse.trades`` (ours vs the baseline), and ``parse.stages``: the time of each
step of the pure-Python fast path on the same frames (and of the whole pure path, ``pure_python``) (params, us per frame, each including its ``loop``), with the
baseline again, to show where time goes. ``python -m benchmarks.bench_parse [--quick]`` prints the entries as JSON.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from collectors.exchanges.okx import fast
from collectors.exchanges.okx.events import new_trades_push
from collectors.exchanges.okx.parse import FrameParser, parse_frame
from collectors.exchanges.okx.rows import SIDES
from collectors.model import Trade, new_trade
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


def ours(parse: Callable[..., object], texts: list[str]) -> None:
    for text in texts:
        parse(text, recv_ms=RECV_MS)


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
    """Each step of the trades-all fast path alone, on the same frames (each run includes its loop)."""
    match = fast._TRADES_ALL
    groups = [match(t).groups() for t in texts]  # type: ignore[union-attr]
    trades = [
        new_trade("okx", g[0], int(g[1]), int(g[6]), Decimal(g[2]), Decimal(g[3]), SIDES[g[4]], RECV_MS, g[5])
        for g in groups
    ]

    def regex() -> None:
        for t in texts:
            match(t)

    def regex_groups() -> None:
        for t in texts:
            match(t).groups()  # type: ignore[union-attr]

    def ints() -> None:
        for g in groups:
            int(g[1]), int(g[6])

    def decimals() -> None:
        for g in groups:
            Decimal(g[2]), Decimal(g[3])

    def trade_init() -> None:
        for g in groups:
            Trade(exchange="okx", inst_id=g[0], trade_id=1, ts_ms=2, price=g[2], size=g[3], side=g[4],  # type: ignore[arg-type]
                  recv_ms=RECV_MS, source=g[5])  # fmt: skip

    def trade_new() -> None:
        for g in groups:
            new_trade("okx", g[0], 1, 2, g[2], g[3], g[4], RECV_MS, g[5])  # type: ignore[arg-type]

    def validate() -> None:
        for trade in trades:
            check_trade(trade)

    def push() -> None:
        for trade in trades:
            new_trades_push("trades-all", "BTC-USDT", (trade,), (1,), RECV_MS, ())

    def loop() -> None:
        for _ in groups:
            pass

    return {"regex": regex, "regex_groups": regex_groups, "ints": ints, "decimals": decimals,
            "trade_init": trade_init, "trade_new": trade_new, "check_trade": validate, "push": push,
            "loop": loop}  # fmt: skip


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
        parser = FrameParser()  # one per collector connection, as OkxWebSocket keeps it
        pure = FrameParser(compiled=False)
        rates = _best_rates(
            {
                "ours": partial(ours, parser.parse, texts),
                "baseline": partial(baseline, texts),
                "stateless": partial(ours, parse_frame, texts),
                "pure": partial(ours, pure.parse, texts),
            },
            count,
            repeats,
        )
        params = {"frames": count, "repeats": repeats, "channel": channel, "fills_per_frame": 1,
                  "fast_path": fast.ACTIVE_PATH,
                  "bytes_per_frame": round(sum(map(len, texts)) / count, 1),
                  "parse_frame_no_memo_frames_per_s": round(rates["stateless"], 1),
                  "parse_frame_no_memo_ratio": round(rates["stateless"] / rates["baseline"], 3),
                  "pure_python_frames_per_s": round(rates["pure"], 1),
                  "pure_python_ratio": round(rates["pure"] / rates["baseline"], 3)}  # fmt: skip
        entries.append(_entry(f"parse.{channel.replace('-', '_')}", rates["ours"], rates["baseline"], params))
    texts = frames("trades-all", count)
    parser = FrameParser()
    pure = FrameParser(compiled=False)
    runs = {"ours": lambda: ours(parser.parse, texts), "baseline": lambda: baseline(texts),
            "pure_python": lambda: ours(pure.parse, texts), **_stages(texts)}  # fmt: skip
    rates = _best_rates(runs, count, repeats)
    us = {name: round(1e6 / rate, 3) for name, rate in rates.items()}
    entries.append(
        _entry("parse.stages", rates["ours"], rates["baseline"], {"us_per_frame": us, "frames": count})
    )
    return entries


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv), sys.stdout, indent=2)
    print()
