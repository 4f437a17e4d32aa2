"""The scoring of ``make bench-peers`` (benchmarks/peers/score.py) on a synthetic tape and recordings whose
missing, duplicated and wrong counts are known; the JSONL and log readers that feed it; the TLS pipe in front of
the simulator for cryptofeed (real sockets)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.peers.bench import markdown, our_events, peer_rows
from benchmarks.peers.score import Fill, Received, Window, detect_s, score, windows_from_schedule
from benchmarks.peers.tls_pipe import TlsPipe, make_certificate

INST = "BTC-USDT"


def _tape() -> list[Fill]:
    """Ids 100..129, one every 100 ms from ts 1000; taker orders of three fills (one ts, price and side) at
    100-102 and 120-122, sizes 0.5 + 0.001 * n."""
    fills = []
    for n in range(30):
        trade_id = 100 + n
        order_start = {101: 100, 102: 100, 121: 120, 122: 120}.get(trade_id, trade_id)
        ts = 1000 + 100 * (order_start - 100)
        px = Decimal("64000.1") + (order_start - 100)
        side = "buy" if order_start % 2 == 0 else "sell"
        fills.append(Fill(INST, trade_id, px, Decimal("0.5") + Decimal("0.001") * n, side, ts))
    return fills


def _row(fill: Fill, **changes: object) -> Received:
    base = {"px": str(fill.px), "sz": str(fill.sz), "side": fill.side, "ts": fill.ts, "count": 1}
    base.update(changes)
    return Received(INST, fill.trade_id, **base)  # type: ignore[arg-type]


WINDOWS = windows_from_schedule([("drop", 2000), ("malformed", 3000)], begin_ms=1000, end_ms=4000)


def test_windows_from_schedule_cover_the_span_without_overlap() -> None:
    assert WINDOWS == [
        Window("baseline", 1000, 2000),
        Window("drop", 2000, 3000),
        Window("malformed", 3000, 4000),
    ]


def test_per_fill_recorder_missing_duplicated_wrong_per_window() -> None:
    tape = _tape()
    by_id = {f.trade_id: f for f in tape}
    received = [_row(f) for f in tape if f.trade_id not in (111, 112, 121, 122, 123)]
    received += [
        _row(by_id[105]),  # a second copy: duplicated in the baseline
        _row(by_id[105], px="1"),  # a third, with another price: still a duplicate, not a wrong row
        _row(by_id[121], px="-" + str(by_id[121].px)),  # negative price passed through: wrong, invalid
        _row(by_id[122], side="hold"),  # unknown side passed through: wrong, invalid
        _row(by_id[123], sz="0.6"),  # another size: wrong, a valid-looking value
        Received(INST, 999, "64000.1", "1", "buy", 3500),  # an id the tape does not hold: wrong
        Received(INST, 50, "64000.1", "1", "buy", 500),  # before the span: ignored
        Received("ETH-USDT", 100, "3000", "1", "buy", 1000),  # another pair's id, not in the tape: wrong
    ]
    results = score(tape, received, WINDOWS)
    counts = {name: c.as_dict() for name, c in results.items()}
    expect = {
        # (truth, received, missing, duplicated, wrong, invalid, reordered: 121-123 came after 129)
        "baseline": (10, 13, 0, 2, 1, 0, 0),
        "drop": (10, 8, 2, 0, 0, 0, 0),
        "malformed": (10, 11, 0, 0, 4, 2, 3),
        "total": (30, 32, 2, 2, 5, 2, 3),
    }
    fields = ("truth", "received", "missing", "duplicated", "wrong", "invalid", "reordered")
    assert {w: tuple(c[f] for f in fields) for w, c in counts.items()} == expect
    assert results["drop"].missing_ids == ["BTC-USDT 111 (ts 2100)", "BTC-USDT 112 (ts 2200)"]
    assert results["malformed"].examples[0] == (
        "BTC-USDT 121: px=-64020.1 sz=0.521 side=buy ts=3000 (tape px=64020.1 side=buy)"
    )


def test_aggregated_rows_stand_for_their_fills() -> None:
    """A ``trades`` row (count n, id = the order's last fill) covers n fills; its size is their sum."""
    tape = _tape()
    by_id = {f.trade_id: f for f in tape}
    order = [by_id[100], by_id[101], by_id[102]]
    received = [
        Received(INST, 102, "64000.1", str(sum(f.sz for f in order)), "buy", 1000, count=3),  # right
        Received(INST, 122, "64020.1", "1.5", "buy", 3000, count=3),  # size is not the sum: wrong
        Received(INST, 125, "64025.1", str(by_id[125].sz), "sell", 3500, count=1),  # right
        Received(INST, 126, "64026.1", str(by_id[126].sz), "buy", 3600, count=2),  # 125-126 differ: wrong
    ]
    counts = score(tape, received, WINDOWS)
    assert (counts["baseline"].missing, counts["baseline"].wrong) == (7, 0)  # 103..109
    assert (counts["drop"].missing, counts["drop"].wrong) == (10, 0)
    # 120-122 and 125-126 covered (one of them by a wrong row): 123, 124, 127, 128, 129 missing
    assert (counts["malformed"].missing, counts["malformed"].wrong, counts["malformed"].invalid) == (5, 2, 0)
    assert counts["total"].missing == 22


def test_stall_detection_is_the_first_event_after_the_stall() -> None:
    events = [10_000, 52_500, 53_000, 200_000]
    assert detect_s(events, start_ms=20_000, end_ms=150_000) == 32.5
    assert detect_s(events, start_ms=60_000, end_ms=150_000) is None


def test_peer_jsonl_and_our_log_are_read_as_the_recorders_wrote_them(tmp_path: Path) -> None:
    lines = [
        {
            "kind": "trade",
            "recv_ms": 5,
            "inst": INST,
            "id": "102",
            "px": "64000.1",
            "sz": "1.503",
            "side": "buy",
        }
        | {"ts": 1000, "count": "3"},
        {
            "kind": "trade",
            "recv_ms": 6,
            "inst": INST,
            "id": "103",
            "px": "64003.1",
            "sz": "0.503",
            "side": "sell",
        }
        | {"ts": 1300, "count": None},
        {
            "kind": "trade",
            "recv_ms": 7,
            "inst": INST,
            "id": None,
            "px": "1",
            "sz": "1",
            "side": "buy",
            "ts": 1,
        },
        {"kind": "event", "recv_ms": 8, "what": "error", "detail": "NetworkError: closed 1006"},
    ]
    path = tmp_path / "peer.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    rows, events = peer_rows(path)
    assert rows == [
        Received(INST, 102, "64000.1", "1.503", "buy", 1000, 3),
        Received(INST, 103, "64003.1", "0.503", "sell", 1300, 1),
    ]
    assert events == [8]
    log = tmp_path / "ours.log"
    log.write_text(
        "2026-11-26T19:06:41.560Z WARNING collectors.exchanges.okx.ws: business: connection 4 ended: no frame\n"
        "2026-11-26T19:06:42.000Z INFO collectors.exchanges.okx.ws: business: connection 5 open\n"
        "2026-11-26 19:06:43,250 WARNING collectors.exchanges.okx.ws: public: connection 4 ended: 1006\n",
        encoding="utf-8",
    )
    assert our_events(log) == [1795720001560, 1795720003250]


async def test_tls_pipe_copies_bytes_and_passes_the_ending_on(tmp_path: Path) -> None:
    """cryptofeed's path to the simulator: bytes both ways unchanged; an upstream end of stream (what the
    simulator's ``drop``, an asyncio ``abort()``, sends) reaches the client as an end of stream without more
    bytes, an upstream reset as a reset."""
    upstream: list[asyncio.StreamWriter] = []
    done = asyncio.Event()

    async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream.append(writer)
        writer.write(await reader.readexactly(5))
        await writer.drain()
        await done.wait()  # the test ends the connection, not the handler's return

    server = await asyncio.start_server(echo_once, "127.0.0.1", 0)
    cert, key = make_certificate(tmp_path)
    pipe = TlsPipe(upstream_port=server.sockets[0].getsockname()[1], cert=cert, key=key)
    await pipe.start()
    tls = ssl.create_default_context(cafile=str(cert))
    try:
        for ending in ("abort", "reset"):
            reader, writer = await asyncio.open_connection("127.0.0.1", pipe.port, ssl=tls)
            writer.write(b"hello")
            assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
            end = upstream[-1]
            if ending == "abort":
                end.transport.abort()
                assert await asyncio.wait_for(reader.read(1), 5) == b""
            else:
                end.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                end.transport.abort()
                with pytest.raises(ConnectionResetError):
                    await asyncio.wait_for(reader.read(1), 5)
            writer.transport.abort()
    finally:
        done.set()
        await pipe.stop()
        server.close()


def test_markdown_table_of_a_run_with_a_skipped_peer() -> None:
    """The docs table: one row per window and the total, missing / dup / wrong (invalid) / out of order per
    recorder that ran, ours without an order, the stall's detection times, and the skipped peer named."""
    counts = score(_tape(), [_row(f) for f in _tape() if f.trade_id != 111], WINDOWS)
    peer = score(_tape(), [_row(f, side="hold") if f.trade_id == 125 else _row(f) for f in _tape()], WINDOWS)
    result = {
        "date": "2026-11-26T19:38:27Z",
        "command": "make bench-peers",
        "simulator": {"pairs": ["BTC-USDT"], "trade_rate": 10.0, "seed": 11},
        "span": {"begin_ms": 1000, "end_ms": 4000, "fills": 30},
        "timeline": [
            {"window": w.name, "start_s": (w.start_ms - 1000) / 1000, "length_s": 1.0} for w in WINDOWS
        ],
        "recorders": {
            "ours": {"version": "okx-collector 0.1.0 (abc)", "channel": "trades-all", "skipped": None},
            "ccxt": {"version": "ccxt 4.5.90 (ccxt.pro okx)", "channel": "trades", "skipped": None},
            "cryptofeed": {"version": "-", "channel": "trades", "skipped": "no Python 3.13"},
        },
        "stall_window": "drop",
        "stall_detect_s": {"ours": 7.9, "ccxt": None},
        "counts": {"ours": {w: c.as_dict() for w, c in counts.items()}}
        | {"ccxt": {w: c.as_dict() for w, c in peer.items()}},
        "load_average": [9.0, 7.6, 6.4],
    }
    meta, table = markdown(result).split("\n\n")
    assert "ccxt: ccxt 4.5.90 (ccxt.pro okx), `trades`" in meta
    assert "cryptofeed: -, `trades` (skipped: no Python 3.13)" in meta
    assert table.splitlines() == [
        "| window (fault at s) | fills | ours: missing / dup / wrong / out of order"
        " | ccxt: missing / dup / wrong / out of order |",
        "|---|---|---|---|",
        "| baseline | 10 | 0 / 0 / 0 / n/a | 0 / 0 / 0 / 0 |",
        "| drop (1) | 10 | 1 / 0 / 0 / n/a | 0 / 0 / 0 / 0 |",
        "| malformed (2) | 10 | 0 / 0 / 0 / n/a | 0 / 0 / 1 (1 invalid) / 0 |",
        "| total | 30 | 1 / 0 / 0 / n/a | 0 / 0 / 1 (1 invalid) / 0 |",
        "| drop: detected after |  | 7.9 s | not detected |",
    ]
