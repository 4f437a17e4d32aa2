"""The compiled trade fast path (``_fastparse.c``) against the pure-Python one, which is the reference.

For every input, real, mutated or hostile: the compiled path takes exactly the frames the pure-Python fast path
takes, with the same records (``repr`` equal: the same Decimal digits and exponent, the same int and str values),
and a parser on either path gives the same event, rejections and their reasons included. Plus: the extension is
built in this venv (so CI proves the compiled path), it leaks nothing over a million parses, and it survives
hostile input under ``python -X dev`` (debug memory allocators).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

from benchmarks.bench_parse import frames
from collectors.exchanges.okx import fast
from collectors.exchanges.okx.events import Rejected, TradesPush
from collectors.exchanges.okx.fast import TradeFastPath, new_fast_path
from collectors.exchanges.okx.parse import FrameParser, parse_frame
from collectors.model import Side, Trade
from collectors.validation import TS_MAX_MS, TS_MIN_MS
from tests.exchanges.okx_frames import RECV_2026_MS, all_frames, doc_examples

R = RECV_2026_MS
COMPILED = new_fast_path(compiled=True)
PURE = TradeFastPath(memo_size=64).parse  # small: the runs fill and clear it
PARSERS = (FrameParser(compiled=True), FrameParser(compiled=False, memo_size=64))
TRADE_FRAMES = tuple(t for t in all_frames() if t.startswith('{"arg":{"channel":"trades'))
BENCH_FRAMES = tuple(frames("trades-all", 20)) + tuple(frames("trades", 20))
SEEDS = TRADE_FRAMES + BENCH_FRAMES
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parents[2]

HOSTILE_TEXTS = [
    "", " ", "0", "-0", "0.0", "00", "-1", "1.", ".5", "1.2.3", "NaN", "nan", "Infinity", "-Infinity", "1e3",
    "1E-7", "0x10", "1_000", " 1", "1 ", "+1", "１２３", "٣", "\\u0031", "\\u0031.5", "9" * 19, "9" * 20,
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "9" * 40, "9" * 41,
    "1." + "9" * 40, "1." + "9" * 41, "9" * 40 + "." + "9" * 40, "buy", "sell", "BUY", "buy ", "\x00", "\ud800",
    "\u00e9", "BTC-USDT", "btc-usdt", "-BTC", "A" * 64, "A" * 65, "BTC\\u002dUSDT",
]  # fmt: skip
HOSTILE_JSON = ['{"a":[1]}', "[]", "null", "true", "1", "-1", "1.5", "1e3", '"x"', "[[[[[[[[[[]]]]]]]]]]"]
FIELDS = ("instId", "tradeId", "px", "sz", "side", "source", "ts", "count", "seqId")


def _same(text: Any, recv_ms: Any = R) -> None:
    """The compiled path and the pure-Python path agree on ``text`` (module docstring)."""
    compiled, pure = COMPILED(text, recv_ms), PURE(text, recv_ms)
    if currently_in_test_context():  # hypothesis's statistics: how often the compiled path took the input
        event("compiled path took it" if compiled is not None else "left to Python")
    if type(recv_ms) is int:
        assert (compiled is None) == (pure is None), (text, compiled, pure)
    else:
        assert compiled is None  # the compiled path leaves odd receive times to Python
    if compiled is not None:
        assert type(compiled) is TradesPush and type(compiled.trades[0]) is Trade
        assert repr(compiled) == repr(pure) and compiled == pure
        general = parse_frame(" " + text, recv_ms=recv_ms)  # a leading space forces the general path
        assert repr(compiled) == repr(general)
        assert hash(compiled.trades[0]) == hash(general.trades[0])  # type: ignore[union-attr]
    if isinstance(text, str | bytes) and type(recv_ms) is int:
        on_compiled, on_pure = (p.parse(text, recv_ms=recv_ms) for p in PARSERS)
        assert repr(on_compiled) == repr(on_pure)
        assert on_compiled == on_pure == parse_frame(text, recv_ms=recv_ms)


def test_the_extension_is_built_and_the_active_path() -> None:
    assert fast.compiled_available(), (
        "the C fast path was not built: make install needs gcc and Python headers"
    )
    from collectors.exchanges.okx import _fastparse

    assert Path(_fastparse.__file__).parent == ROOT / "collectors" / "exchanges" / "okx"
    forced = os.environ.get(fast.PURE_PYTHON_ENV) == "1"
    assert fast.ACTIVE_PATH == (fast.PURE_PYTHON if forced else fast.COMPILED)


@pytest.mark.parametrize(
    ("env", "built", "path", "line"),
    [
        ("", True, "compiled", "INFO OKX trade frames: compiled fast path (_fastparse) active"),
        ("1", True, "pure-python", "WARNING OKX trade frames: pure-Python fast path active (OKX_COLLECTOR_PURE_PYTHON=1)"),
        ("", False, "pure-python", "WARNING OKX trade frames: pure-Python fast path active, the extension is not built: "
         "import of collectors.exchanges.okx._fastparse halted; None in sys.modules"),
    ],
)  # fmt: skip
def test_the_environment_picks_the_path_and_the_first_parser_logs_it_once(
    env: str, built: bool, path: str, line: str
) -> None:
    script = textwrap.dedent(
        f"""
        import logging, sys
        if not {built}:  # as if the extension was not built: importing it raises ImportError
            sys.modules["collectors.exchanges.okx._fastparse"] = None
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
        from collectors.exchanges.okx import fast
        from collectors.exchanges.okx.parse import FrameParser, parse_frame
        FrameParser(), FrameParser()
        push = parse_frame({doc_examples()[-2]!r}, recv_ms={R})
        print(fast.ACTIVE_PATH, type(FrameParser()._fast).__name__, push.trades[0].price)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, fast.PURE_PYTHON_ENV: env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    method = "builtin_function_or_method" if path == "compiled" else "method"
    assert done.stdout.split() == [path, method, "42219.9"]
    assert [x for x in done.stderr.splitlines() if "OKX trade frames" in x] == [line]


def test_compiled_and_pure_need_what_they_ask_for() -> None:
    with pytest.raises(ValueError, match="memo_size must be >= 0"):
        new_fast_path(memo_size=-1, compiled=True)
    from collectors.exchanges.okx._fastparse import TradeParser

    with pytest.raises(TypeError, match="__slots__ is not the fields"):
        TradeParser(trade_type=TradesPush, push_type=TradesPush, buy=Side.BUY, sell=Side.SELL,  # type: ignore[arg-type]
                    decimal_type=Decimal, ts_min_ms=1, ts_max_ms=2)  # fmt: skip
    with pytest.raises(TypeError, match="not a plain slotted class"):
        TradeParser(trade_type=dict, push_type=TradesPush, buy=Side.BUY, sell=Side.SELL,  # type: ignore[arg-type]
                    decimal_type=Decimal, ts_min_ms=1, ts_max_ms=2)  # fmt: skip
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        COMPILED(doc_examples()[-2])  # type: ignore[call-arg]


def test_every_real_and_benchmark_trade_frame_takes_the_compiled_path_with_exact_values() -> None:
    for text in SEEDS:
        _same(text)
    docs = doc_examples()[-2]
    push = COMPILED(docs, R)
    assert push is not None and push.channel == "trades-all" and push.counts == (1,) and push.rejected == ()
    (trade,) = push.trades
    assert (trade.trade_id, trade.ts_ms, trade.side, trade.source, trade.recv_ms) == (
        130639474, 1630048897897, Side.BUY, "0", R
    )  # fmt: skip
    assert str(trade.price) == "42219.9" and str(trade.size) == "0.12060306" and trade.inst_id == "BTC-USDT"
    zeros = docs.replace('"px":"42219.9"', '"px":"42219.900"').replace('"sz":"0.12060306"', '"sz":"00.10"')
    trade = COMPILED(zeros, R).trades[0]  # type: ignore[union-attr]
    assert trade.price.as_tuple() == Decimal("42219.900").as_tuple() and repr(trade.size) == "Decimal('0.10')"
    _same(zeros)


def test_counted_trades_keep_their_count_and_the_count_rule_is_pythons_to_name() -> None:
    text = BENCH_FRAMES[-1]
    row = json.loads(text)["data"][0]
    push = COMPILED(text, R)
    assert push is not None and push.channel == "trades" and push.counts == (int(row["count"]),)
    for count in ("0", str(int(row["tradeId"]) + 2)):
        bad = text.replace(f'"count":"{row["count"]}"', f'"count":"{count}"')
        assert COMPILED(bad, R) is None
        event = PARSERS[0].parse(bad, recv_ms=R)
        assert isinstance(event, Rejected) and event.reason.startswith(
            f"data[0]: count={int(count)}: must be"
        )
        _same(bad)


@pytest.mark.parametrize("recv_ms", [None, True, 1.5, "1", 0, -1, 2**63, 2**64, 4_102_444_800_000, R])
def test_odd_receive_times_are_left_to_python(recv_ms: Any) -> None:
    for text in (doc_examples()[-2], BENCH_FRAMES[-1]):
        _same(text, recv_ms)


def test_other_text_types_are_left_to_python() -> None:
    class Text(str):
        pass

    docs = doc_examples()[-2]
    for text in (docs.encode(), bytearray(docs.encode()), Text(docs), memoryview(docs.encode()), None, 1):
        assert COMPILED(text, R) is None


def _rows_with(seed: str, field: str, raw: str) -> str:
    """``seed`` with ``field``'s raw JSON value replaced by ``raw`` (or the field added before the row's end)."""
    row = json.loads(seed)["data"][0]
    if field in row:
        old = json.dumps(row[field], separators=(",", ":"))
        return seed.replace(f'"{field}":{old}', f'"{field}":{raw}', 1 if field != "instId" else 2)
    return seed[:-3] + f',"{field}":{raw}' + "}]}"


@FUZZ
@given(st.sampled_from(SEEDS), st.sampled_from(FIELDS), st.sampled_from(HOSTILE_TEXTS), st.booleans())
@example(doc_examples()[-2], "px", "1e3", True)
@example(doc_examples()[-2], "instId", "BTC\\u002dUSDT", True)
def test_hostile_values_in_every_field(seed: str, field: str, value: str, quoted: bool) -> None:
    _same(_rows_with(seed, field, json.dumps(value) if quoted else value or '""'))


@FUZZ
@given(st.sampled_from(SEEDS), st.sampled_from(FIELDS), st.sampled_from(HOSTILE_JSON))
def test_nested_junk_and_duplicate_keys(seed: str, field: str, junk: str) -> None:
    _same(_rows_with(seed, field, junk))
    row_start = seed.index('"data":[{') + len('"data":[{')
    _same(seed[:row_start] + f'"{field}":{junk},' + seed[row_start:])  # a duplicate key before the real one
    _same(seed[:-3] + f',"{field}":{junk}' + "}]}")  # and after it
    _same(seed[:-2] + "," + seed[seed.index('"data":[') + 8 : -2] + "]}")  # two rows


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_truncations_flips_and_insertions(seed: str, data: st.DataObject) -> None:
    _same(seed[: data.draw(st.integers(0, len(seed)))])
    chars = list(seed)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(chars) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        char = data.draw(st.characters(codec="utf-8") | st.sampled_from(list('0123456789-."\\:,{}[] aA')))
        if action == "flip":
            chars[i] = char
        elif action == "insert":
            chars.insert(i, char)
        elif len(chars) > 1:
            del chars[i]
    text = "".join(chars)
    _same(text)
    _same(text.encode("utf-8", "surrogatepass"))


# Mostly wire-valid values around the length limits (so the compiled path takes many), some hostile ones.
DIGITS = st.text("0123456789", min_size=1, max_size=20)
ODD_DIGITS = st.text("0123456789", max_size=21) | st.sampled_from(HOSTILE_TEXTS)
NUMBERS = st.from_regex(r"-?[0-9]{1,41}(\.[0-9]{1,41})?", fullmatch=True)
ODD_NUMBERS = st.from_regex(r"-?[0-9]{0,42}(\.[0-9]{0,42})?", fullmatch=True) | st.sampled_from(HOSTILE_TEXTS)
INSTS = st.from_regex(r"[A-Z0-9][A-Z0-9-]{0,64}", fullmatch=True)
ODD_INSTS = st.text("AB09-a_ \\", max_size=66) | st.sampled_from(
    ["A" * 64, "A" * 65, "0-", "-0", "BTC\\u002dUSDT"]
)
TIMES = st.integers(946_684_799_990, 946_684_800_010) | st.integers(4_102_444_799_990, 4_102_444_800_010)


@FUZZ
@given(
    channel=st.sampled_from(["trades-all", "trades"]),
    inst=INSTS | ODD_INSTS,
    row_inst=st.none() | st.none() | INSTS | ODD_INSTS,
    trade_id=DIGITS | ODD_DIGITS | st.sampled_from(["9223372036854775807", "9223372036854775808"]),
    px=NUMBERS | NUMBERS | ODD_NUMBERS,
    sz=NUMBERS | NUMBERS | ODD_NUMBERS,
    side=st.sampled_from(["buy", "sell", "buy", "sell", "Buy", "", "bu", "sell "]),
    source=DIGITS | ODD_DIGITS,
    ts=(TIMES | st.integers(TS_MIN_MS, TS_MAX_MS)).map(str) | ODD_DIGITS,
    count=st.integers(0, 4).map(str) | DIGITS | ODD_DIGITS,
    seq_id=st.none()
    | st.from_regex(r"-?[0-9]{1,21}", fullmatch=True)
    | st.sampled_from(["0", "-0", "00", "-"]),
)
def test_generated_frames_field_by_field(
    channel: str, inst: str, row_inst: str | None, trade_id: str, px: str, sz: str, side: str, source: str,
    ts: str, count: str, seq_id: str | None,
) -> None:  # fmt: skip
    row_inst = inst if row_inst is None else row_inst
    head = f'{{"arg":{{"channel":"{channel}","instId":"{inst}"}},"data":[{{"instId":"{row_inst}",'
    body = f'"tradeId":"{trade_id}","px":"{px}","sz":"{sz}","side":"{side}",'
    seq = "" if seq_id is None else f',"seqId":{seq_id}'
    if channel == "trades-all":
        body += f'"source":"{source}","ts":"{ts}"{seq}'
    else:
        body += f'"ts":"{ts}","count":"{count}","source":"{source}"{seq}'
    _same(head + body + "}]}")


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_a_million_parses_leak_no_reference_and_no_memory() -> None:
    recv_ms = int(str(R))  # an object of our own, to count its references
    declined = [t[:-1] for t in BENCH_FRAMES[:5]] + [_rows_with(BENCH_FRAMES[0], "px", '"0"')]
    texts = (list(BENCH_FRAMES) + declined) * 10
    watched = (Side.BUY, Side.SELL, recv_ms, Trade, TradesPush, *texts[:3])
    refs = [sys.getrefcount(o) for o in watched]
    for _ in range(2_000):  # warm up: the allocator's arenas, the types' caches
        for text in texts[:50]:
            COMPILED(text, recv_ms)
    rss, n = _rss_kb(), 0
    while n < 1_000_000:
        for text in texts:
            COMPILED(text, recv_ms)
        n += len(texts)
    assert [sys.getrefcount(o) for o in watched] == refs
    assert _rss_kb() - rss < 1024, (rss, _rss_kb())
    tracemalloc.start()
    try:
        kept = [COMPILED(text, recv_ms) for text in texts]  # live results, so the parses do allocate
        for text in texts * 20:
            COMPILED(text, recv_ms)
        before = tracemalloc.get_traced_memory()[0]
        for text in texts * 200:  # 92 000 parses (traced: slow), every result dropped
            COMPILED(text, recv_ms)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 16 * 1024, (before, after)
    assert sum(k is not None for k in kept) == 400


def test_hostile_input_under_python_dev_mode() -> None:
    """Debug allocators (-X dev: PYTHONMALLOC=debug) catch writes past a buffer and use after free."""
    script = textwrap.dedent(
        """
        import random, sys
        from collectors.exchanges.okx.fast import new_fast_path, TradeFastPath
        from tests.exchanges.test_okx_fastparse import SEEDS
        assert sys.flags.dev_mode
        compiled, pure = new_fast_path(compiled=True), TradeFastPath(memo_size=0).parse
        rng, n = random.Random(7), 0
        for seed in SEEDS:
            for cut in range(len(seed) + 1):
                for text in (seed[:cut], seed[cut:], seed[:cut] + "\\u00e9" + seed[cut:]):
                    assert (compiled(text, 1786538761000) is None) == (pure(text, 1786538761000) is None)
                    n += 1
            for _ in range(200):
                chars = list(seed)
                chars[rng.randrange(len(chars))] = chr(rng.choice([0, 34, 44, 45, 46, 48, 57, 92, 125, 233, 0x10FFFF]))
                text = "".join(chars)
                assert repr(compiled(text, 1786538761000)) == repr(pure(text, 1786538761000))
                n += 1
        print(n)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != fast.PURE_PYTHON_ENV}  # no WARNING line on stderr
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout) > 50_000 and done.stderr == ""
