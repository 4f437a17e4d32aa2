"""cryptofeed's OKX feed pointed at a simulator; every trade its callback receives goes to a JSONL file.

Runs in its own virtualenv (``data/peers/cryptofeed-venv``, Python >= 3.13, ``requirements-cryptofeed.txt``)
with the ``cryptofeed`` package only; the project never imports this file. The feed is cryptofeed's own ``OKX``
class with its endpoints replaced by the simulator's (a subclass overriding ``websocket_endpoints`` and
``rest_endpoints``, the same routes). cryptofeed accepts only ``wss://`` WebSocket addresses, so the bench puts a
TLS byte pipe in front of the simulator and passes its self-signed certificate here (``--cafile``, given to
``websockets.connect`` through the endpoint's ``options``, which cryptofeed hands to it); every other setting is cryptofeed's default (``timeout`` 120 s, checked every
30 s, ``retries`` 10). cryptofeed subscribes OKX's ``trades`` channel (one push per taker order: ``tradeId`` is its
last fill, ``count`` its fills); the row's ``count`` is read from ``Trade.raw``.

Lines: ``{"kind": "trade", "recv_ms", "inst", "id", "px", "sz", "side", "ts", "count"}`` and, for every WARNING or
ERROR cryptofeed logs (reconnects, timeouts, bad frames), ``{"kind": "event", "recv_ms", "what": "log", "detail"}``.
SIGTERM/SIGINT end it (cryptofeed's own graceful shutdown).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import ssl
import sys
import time
from typing import Any, TextIO

from cryptofeed import FeedHandler
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import OKX


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _emit(out: TextIO, line: dict[str, Any]) -> None:
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
    out.flush()


class _Events(logging.Handler):
    def __init__(self, out: TextIO) -> None:
        super().__init__(level=logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        detail = f"{record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            detail += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        _emit(self.out, {"kind": "event", "recv_ms": _now_ms(), "what": "log", "detail": detail[:300]})


def _feed_class(rest: str, ws_public: str, ws_business: str, cafile: str) -> type[OKX]:
    """OKX with the simulator's addresses: the same channel filters, options and REST routes."""
    public, business = OKX.websocket_endpoints
    tls = ssl.create_default_context(cafile=cafile)
    return type(
        "SimulatedOKX",
        (OKX,),
        {
            "websocket_endpoints": [
                WebsocketEndpoint(
                    ws_public, channel_filter=public.channel_filter, options={**public.options, "ssl": tls}
                ),
                WebsocketEndpoint(
                    ws_business,
                    channel_filter=business.channel_filter,
                    options={**business.options, "ssl": tls},
                ),
            ],
            "rest_endpoints": [RestEndpoint(rest, routes=OKX.rest_endpoints[0].routes)],
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rest", required=True)
    parser.add_argument("--ws-public", required=True)
    parser.add_argument("--ws-business", required=True)
    parser.add_argument(
        "--cafile", required=True, help="certificate of the TLS pipe in front of the simulator"
    )
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "a", encoding="utf-8") as out:
        logging.getLogger("cryptofeed").addHandler(_Events(out))
        logging.getLogger("cryptofeed").setLevel(logging.WARNING)

        async def on_trade(trade: Any, receipt_timestamp: float) -> None:
            raw = trade.raw if isinstance(trade.raw, dict) else {}
            _emit(
                out,
                {
                    "kind": "trade",
                    "recv_ms": _now_ms(),
                    "inst": raw.get("instId", trade.symbol),
                    "id": None if trade.id is None else str(trade.id),
                    "px": str(trade.price),
                    "sz": str(trade.amount),
                    "side": str(trade.side),
                    "ts": None if trade.timestamp is None else round(trade.timestamp * 1000),
                    "count": raw.get("count"),
                },
            )

        feed = _feed_class(args.rest, args.ws_public, args.ws_business, args.cafile)
        handler = FeedHandler()
        handler.add_feed(feed(symbols=args.pairs.split(","), channels=[TRADES], callbacks={TRADES: on_trade}))
        handler.run()
    print(f"cryptofeed {importlib.metadata.version('cryptofeed')} recorder stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
