"""ccxt.pro's OKX ``watch_trades`` pointed at a simulator; every trade it hands back goes to a JSONL file.

Runs in its own virtualenv (``data/peers/ccxt-venv``, ``requirements-ccxt.txt``) with the ``ccxt`` package only;
the project never imports this file. It does what a ccxt user recording trades writes: one task per symbol
looping on ``watch_trades`` with ccxt's defaults (OKX's ``trades`` channel, one push per taker order:
``tradeId`` is its last fill, ``count`` its fills, read from the trade's ``info``; ccxt's other choice,
``trades-all``, makes it log in, which needs API keys), and on an error it notes the error and calls
``watch_trades`` again after a short pause (the next call reconnects). ccxt's trade fields are written as ccxt
returns them (price and amount are floats: their ``repr`` is written).

Lines: ``{"kind": "trade", "recv_ms", "inst", "id", "px", "sz", "side", "ts", "count"}`` and
``{"kind": "event", "recv_ms", "what": "error", "detail"}``. SIGTERM/SIGINT end it (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any, TextIO

import ccxt
import ccxt.pro as ccxtpro

RETRY_PAUSE_S = 0.5  # between a failed watch_trades and the next call (which reconnects)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _emit(out: TextIO, line: dict[str, Any]) -> None:
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
    out.flush()


def _text(value: Any) -> str | None:
    return None if value is None else repr(value) if isinstance(value, float) else str(value)


async def _watch(exchange: Any, symbol: str, inst: str, out: TextIO) -> None:
    while True:
        try:
            trades = await exchange.watch_trades(symbol)
        except ccxt.BaseError as exc:  # what ccxt raises for a lost or bad connection: note it, watch again
            _emit(
                out,
                {
                    "kind": "event",
                    "recv_ms": _now_ms(),
                    "what": "error",
                    "detail": f"{type(exc).__name__}: {exc}"[:300],
                },
            )
            await asyncio.sleep(RETRY_PAUSE_S)
            continue
        now = _now_ms()
        for t in trades:
            _emit(
                out,
                {
                    "kind": "trade",
                    "recv_ms": now,
                    "inst": inst,
                    "id": _text(t.get("id")),
                    "px": _text(t.get("price")),
                    "sz": _text(t.get("amount")),
                    "side": _text(t.get("side")),
                    "ts": t.get("timestamp"),
                    "count": (t.get("info") or {}).get("count"),
                },
            )


async def _main(args: argparse.Namespace, out: TextIO) -> None:
    exchange = ccxtpro.okx(
        {
            "urls": {"api": {"rest": args.rest, "ws": args.ws_base}},
            "options": {"fetchMarkets": {"types": ["spot"]}},  # the simulator lists SPOT only
        }
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await exchange.load_markets()
        insts = args.pairs.split(",")
        tasks = [asyncio.ensure_future(_watch(exchange, inst.replace("-", "/"), inst, out)) for inst in insts]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await exchange.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", required=True, help="REST base, e.g. http://127.0.0.1:PORT")
    parser.add_argument(
        "--ws-base", required=True, help="WebSocket base without /public, e.g. ws://127.0.0.1:PORT/ws/v5"
    )
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "a", encoding="utf-8") as out:
        asyncio.run(_main(args, out))
    print(f"ccxt {ccxt.__version__} recorder stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
