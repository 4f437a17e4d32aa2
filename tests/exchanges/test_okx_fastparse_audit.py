"""Security audit of the compiled trade fast path (``_fastparse.c``): one test per defect found, and the checks
that back what was found sound (docs/okx.md, "Fast path", "Audit").

The reference is the pure-Python fast path (``TradeFastPath``) and the general path (``parse._parse``); the
compiled path must answer exactly when the pure one does, with an equal ``repr``.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from collectors.exchanges.okx import fast
from collectors.exchanges.okx.events import TradesPush
from collectors.exchanges.okx.fast import TradeFastPath, new_fast_path
from collectors.exchanges.okx.parse import _parse
from collectors.model import Side, Trade
from collectors.validation import MAX_INT64, TS_MAX_MS, TS_MIN_MS
from tests.exchanges.okx_frames import RECV_2026_MS, doc_examples

R = RECV_2026_MS
COMPILED = new_fast_path(compiled=True)
PURE = TradeFastPath(memo_size=0).parse
ROOT = Path(__file__).resolve().parents[2]


def _trades(trade_id: str, count: str, *, px: str = "1", sz: str = "1", seq: str = "1") -> str:
    return (
        '{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        f'"tradeId":"{trade_id}","px":"{px}","sz":"{sz}","side":"buy","ts":"1786538761000",'
        f'"count":"{count}","source":"0","seqId":{seq}}}]}}'
    )


def _agree(text: str, recv_ms: int = R) -> TradesPush | None:
    """The compiled path's answer, checked against the pure-Python and the general path."""
    compiled, pure = COMPILED(text, recv_ms), PURE(text, recv_ms)
    assert repr(compiled) == repr(pure), (text, compiled, pure)
    if compiled is not None:
        assert repr(compiled) == repr(_parse(text, recv_ms))
    return compiled


# ---- defect 1: a count of 2**63 became -2**63 ----


@pytest.mark.parametrize(
    ("trade_id", "count"),
    [(str(MAX_INT64), str(2**63)), (str(MAX_INT64), str(2**63 - 1)), ("0", "1"), ("9" * 18, "1" + "0" * 18)],
)
def test_the_largest_counts_keep_their_value(trade_id: str, count: str) -> None:
    """tradeId 2**63-1 with count 2**63 passes the count rule (1..tradeId+1) on every path; the compiled path
    built the count with a signed conversion, so it gave -2**63 and the push's id span (2**64, 2**63-1) instead
    of (0, 2**63-1): the trade ids the row covers, which the gap accounting reads."""
    push = _agree(_trades(trade_id, count))
    assert push is not None and push.counts == (int(count),)
    assert push.id_spans() == ((int(trade_id) - int(count) + 1, int(trade_id)),)


# ---- defect 2: a failed second __init__ left the parser half reconfigured ----


def test_a_parser_cannot_be_reconfigured_and_a_failed_attempt_changes_nothing() -> None:
    """``TradeParser.__init__`` wrote the new trade class's slot offsets before it checked the push class; when
    that check failed, the parser kept the old ``Trade`` class with the new class's offsets and wrote the
    fields past the end of each ``Trade`` it allocated (a heap overflow; under ``-X dev`` the debug allocator
    aborts). A subprocess, since the old code corrupted the heap. Now a built parser refuses a second
    ``__init__`` and keeps parsing as built."""
    script = textwrap.dedent(
        f"""
        import sys
        from decimal import Decimal
        from collectors.exchanges.okx._fastparse import TradeParser
        from collectors.exchanges.okx.events import TradesPush
        from collectors.exchanges.okx.fast import TradeFastPath
        from collectors.model import Side, Trade
        assert sys.flags.dev_mode

        class Pad:
            __slots__ = ("pad",)

        class Wider(Pad):  # Trade's slot names, each one slot further than in Trade
            __slots__ = Trade.__slots__

        args = dict(buy=Side.BUY, sell=Side.SELL, decimal_type=Decimal, ts_min_ms=1, ts_max_ms=2**62)
        parser = TradeParser(trade_type=Trade, push_type=TradesPush, **args)
        text = {doc_examples()[-2]!r}
        want = repr(TradeFastPath(memo_size=0).parse(text, {R}))
        for bad in (dict(trade_type=Wider, push_type=dict), dict(trade_type=Wider, push_type=TradesPush),
                    dict(trade_type=Trade, push_type=TradesPush)):
            try:
                parser.__init__(**bad, **args)
            except (TypeError, RuntimeError) as exc:
                print(type(exc).__name__, exc)
            else:
                print("reconfigured")
            got = [repr(parser.parse(text, {R})) for _ in range(100)]
            print("same" if got == [want] * 100 else got[0])
        """
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script],
        env={k: v for k, v in os.environ.items() if k != fast.PURE_PYTHON_ENV},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["RuntimeError TradeParser is already initialised", "same"] * 3


def test_a_failed_first_init_leaves_the_parser_unbuilt_and_buildable() -> None:
    from collectors.exchanges.okx._fastparse import TradeParser

    args: dict[str, Any] = dict(
        buy=Side.BUY, sell=Side.SELL, decimal_type=Decimal, ts_min_ms=1, ts_max_ms=2**62
    )
    parser = TradeParser.__new__(TradeParser)
    text = doc_examples()[-2]
    with pytest.raises(RuntimeError, match="not initialised"):
        parser.parse(text, R)
    with pytest.raises(TypeError, match="dict is not a plain slotted class"):
        parser.__init__(trade_type=Trade, push_type=dict, **args)  # type: ignore[misc]
    with pytest.raises(RuntimeError, match="not initialised"):
        parser.parse(text, R)
    parser.__init__(trade_type=Trade, push_type=TradesPush, **args)  # type: ignore[misc]
    assert repr(parser.parse(text, R)) == repr(PURE(text, R)) != "None"


# ---- checked and found sound: the evidence ----


def test_the_longest_frame_the_pattern_admits_is_under_the_length_cap() -> None:
    """Every field at its length limit (leading zeros keep the values in range): both paths take it, and it is
    shorter than MAX_FRAME_LEN, so the cap never sends a frame the pattern takes to Python."""
    from collectors.exchanges.okx._fastparse import MAX_FRAME_LEN

    inst, big = "A" + "-" * 63, "9" * 40 + "." + "9" * 40
    for channel, tail in (
        ("trades-all", f'"source":"{"9" * 16}","ts":"{"0" * 6}1786538761000","seqId":-{"9" * 18}'),
        ("trades", f'"ts":"{"0" * 6}1786538761000","count":"{"0" * 18}1","source":"{"9" * 16}","seqId":-{"9" * 18}'),
    ):  # fmt: skip
        text = (
            f'{{"arg":{{"channel":"{channel}","instId":"{inst}"}},"data":[{{"instId":"{inst}",'
            f'"tradeId":"{MAX_INT64}","px":"{big}","sz":"{big}","side":"sell",{tail}}}]}}'
        )
        push = _agree(text)
        assert push is not None and push.trades[0].price == Decimal(big)
        assert len(text) < MAX_FRAME_LEN
        assert _agree(text.replace(inst, inst + "-")) is None  # one past a limit: both leave it


def test_very_long_frames_are_left_to_python_before_any_scan() -> None:
    """Past MAX_FRAME_LEN the compiled path answers None at once (the length is read, not scanned); the pure
    path's bounded pattern fails fast too."""
    docs = doc_examples()[-2]
    for text in (docs[:-3] + " " * 5_000_000 + "}]}", docs.replace("BTC-USDT", "A" * 5_000_000)):
        started = time.perf_counter()
        assert COMPILED(text, R) is None and PURE(text, R) is None
        assert time.perf_counter() - started < 1.0


def test_memory_errors_at_every_allocation_raise_and_leak_nothing() -> None:
    """Each allocation of a parse made to fail in turn (``_testcapi.set_nomemory``): the parse either gives the
    full push or raises MemoryError (never a SystemError, a crash or a half-built record), and the shared
    objects' reference counts are unchanged afterwards (every error path releases what it took)."""
    testcapi = pytest.importorskip("_testcapi")
    recv_ms = int(str(R))  # an object of our own, to count its references
    texts = (doc_examples()[-2], _trades("130639474", "3"))
    expected = [repr(PURE(t, recv_ms)) for t in texts]
    watched = (Side.BUY, Side.SELL, recv_ms, Trade, TradesPush, *texts)
    refs = [sys.getrefcount(o) for o in watched]
    outcomes: set[str] = set()
    for text, want in zip(texts, expected, strict=True):
        for start in range(40):
            testcapi.set_nomemory(start, start + 1)
            try:
                push = COMPILED(text, recv_ms)
            except MemoryError:
                push = None
            finally:
                testcapi.remove_mem_hooks()
            outcomes.add("MemoryError" if push is None else "push")
            if push is not None:
                assert repr(push) == want
            del push
    del text
    assert outcomes == {"MemoryError", "push"}
    assert [sys.getrefcount(o) for o in watched] == refs


def test_a_legacy_non_compact_str_reads_as_its_characters() -> None:
    """A str built by the deprecated ``PyUnicode_FromUnicode(NULL, n)`` (a legacy, non-compact string whose
    characters live in a separate buffer until ``PyUnicode_READY``): the parser readies it and reads the right
    buffer (Python 3.11; the API is gone in 3.12)."""
    api = ctypes.pythonapi
    if not hasattr(api, "PyUnicode_FromUnicode"):
        pytest.skip("no legacy strings in this Python")
    text = doc_examples()[-2]
    api.PyUnicode_FromUnicode.restype = ctypes.py_object
    api.PyUnicode_FromUnicode.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    api.PyUnicode_AsUnicode.restype = ctypes.POINTER(ctypes.c_wchar)
    api.PyUnicode_AsUnicode.argtypes = (ctypes.py_object,)
    with pytest.warns(DeprecationWarning, match="PyUnicode_FromUnicode"):
        legacy = api.PyUnicode_FromUnicode(None, len(text))
    buffer = api.PyUnicode_AsUnicode(legacy)
    for i, ch in enumerate(text):
        buffer[i] = ch
    assert repr(COMPILED(legacy, R)) == repr(PURE(text, R)) != "None"


def test_parses_from_many_threads_on_one_parser_agree() -> None:
    """The parser keeps no mutable state (no memo, no cache): one parser shared by threads (the module-level
    ``parse_frame`` one is) gives every thread the same records as the pure path."""
    frames = [doc_examples()[-2], _trades("130639474", "3"), _trades("5", "7")]
    want = [repr(PURE(t, R)) for t in frames]
    errors: list[str] = []

    def work() -> None:
        for _ in range(3_000):
            for text, expected in zip(frames, want, strict=True):
                got = repr(COMPILED(text, R))
                if got != expected:
                    errors.append(got)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and want[2] == "None"


def test_the_timestamp_bounds_are_the_validation_ones() -> None:
    docs = doc_examples()[-2]
    ts = '"ts":"1630048897897"'
    assert ts in docs
    for value, taken in (
        (TS_MIN_MS - 1, False),
        (TS_MIN_MS, True),
        (TS_MAX_MS - 1, True),
        (TS_MAX_MS, False),
    ):
        assert (_agree(docs.replace(ts, f'"ts":"{value}"')) is not None) is taken
        assert (_agree(docs, value) is not None) is taken


# ---- the differential mutation fuzzer (also a script, for long runs under ASan: docs/okx.md "Fast path") ----

_I63 = 2**63
_TOKENS = (
    "0", "1", "-0", "-1", "00", "01", "9" * 18, "9" * 19, "9" * 20, "1" + "0" * 18, str(_I63 - 1), str(_I63),
    str(_I63 + 1), str(2**64 - 1), str(2**64), "9" * 39, "9" * 40, "9" * 41, "0." + "0" * 39 + "1",
    "0." + "0" * 40 + "1", "1." + "0" * 40, "-" + "9" * 40 + "." + "9" * 40, "9" * 40 + "." + "9" * 40,
    str(TS_MIN_MS), str(TS_MIN_MS - 1), str(TS_MAX_MS), str(TS_MAX_MS - 1), "1e3", "1E-7", "NaN", "Infinity",
    "1.", ".1", "+1", " 1", "1 ", "\\u0031", "\u0661", "\uff11", "\x00", "\ud800", "\U0010ffff", "A" * 63,
    "A" * 64, "A" * 65, "A-" * 32, "-A", "BTC-USDT", "BTC\\u002dUSDT", "buy", "sell", "BUY", "b\\u0075y",
    "true", "null", "[]", "{}", "[1]", '""', '"', "\\", "\\\\", '\\"', ",", ":", "}", "]", "}]}", "\t", "\n",
    "0" * 19, "0" * 41, "1" + "0" * 17, "-" + "1" * 18, "-" + "1" * 19,
)  # fmt: skip
_FIELDS = ("instId", "tradeId", "px", "sz", "side", "source", "ts", "count", "seqId")
_CHARS = (0, 9, 10, 32, 34, 43, 44, 45, 46, 48, 49, 57, 58, 65, 90, 91, 92, 93, 97, 123, 125, 127, 128, 233,
          0x661, 0xFF11, 0xD800, 0x10FFFF)  # fmt: skip


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))


def _generated(rng: random.Random) -> str:
    """A frame field by field, mostly valid, every field near its limits."""
    inst = rng.choice(["BTC-USDT", "A", "0", "A" * 64, "A" * 65, "X-" * 31 + "X", "ETH-USD-SWAP"])
    row_inst = inst if rng.random() < 0.9 else rng.choice(["BTC-USDT", inst + "A", inst[:-1] or "A"])
    tid = rng.choice([_digits(rng, 1, 19), str(_I63 - 1), str(_I63), _digits(rng, 19, 20), "0"])
    ts = rng.choice([rng.randrange(TS_MIN_MS, TS_MAX_MS), TS_MIN_MS, TS_MIN_MS - 1, TS_MAX_MS - 1, TS_MAX_MS])
    count = rng.choice(["1", "0", "2", str(int(tid) + 1), str(int(tid) + 2), _digits(rng, 1, 19), str(_I63)])
    source = rng.choice(["0", "1", _digits(rng, 1, 16), _digits(rng, 16, 17)])
    seq = rng.choice(["0", "-0", _digits(rng, 1, 18), "-" + _digits(rng, 1, 18), "1" + _digits(rng, 18, 18)])
    side = rng.choice(["buy", "sell", "buy", "sell", "Buy", "bu"])
    px, sz = (
        ("-" if rng.random() < 0.05 else "")
        + _digits(rng, 1, rng.choice([3, 10, 40, 41]))
        + ("." + _digits(rng, 1, rng.choice([3, 10, 40, 41])) if rng.random() < 0.6 else "")
        for _ in range(2)
    )
    channel = rng.choice(["trades-all", "trades"])
    head = f'{{"arg":{{"channel":"{channel}","instId":"{inst}"}},"data":[{{"instId":"{row_inst}",'
    body = f'"tradeId":"{tid}","px":"{px}","sz":"{sz}","side":"{side}",'
    if channel == "trades-all":
        body += f'"source":"{source}","ts":"{ts}"' + ("" if rng.random() < 0.3 else f',"seqId":{seq}')
    else:
        body += f'"ts":"{ts}","count":"{count}","source":"{source}","seqId":{seq}'
    return head + body + "}]}"


def _field_mutated(rng: random.Random, text: str) -> str:
    """One field's JSON value replaced by a boundary or hostile token (or the field added)."""
    try:
        row = json.loads(text)["data"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return text
    if not isinstance(row, dict):
        return text
    field, token = rng.choice(_FIELDS), rng.choice(_TOKENS)
    raw = token if rng.random() < 0.3 else json.dumps(token) if rng.random() < 0.5 else f'"{token}"'
    if field not in row:
        return text[:-3] + f',"{field}":{raw}' + "}]}"
    old = json.dumps(row[field], separators=(",", ":"), ensure_ascii=False)
    return text.replace(f'"{field}":{old}', f'"{field}":{raw}', 2 if field == "instId" else 1)


def _chars_mutated(rng: random.Random, text: str, seeds: list[str]) -> str:
    """Character flips, insertions, deletions, duplicated chunks, splices with another frame, truncation."""
    chars = list(text)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 8])):
        if not chars:
            break
        i, op = rng.randrange(len(chars)), rng.randrange(6)
        if op == 0:
            chars[i] = chr(rng.choice([*_CHARS, rng.randrange(0x110000)]))
        elif op == 1:
            chars.insert(i, chr(rng.randrange(32, 127)))
        elif op == 2:
            del chars[i]
        elif op == 3:
            chars[i:i] = chars[i : rng.randrange(i, min(len(chars), i + 40) + 1)]
        elif op == 4:
            other = rng.choice(seeds)
            chars = chars[:i] + list(other[rng.randrange(len(other)) :])
        else:
            chars = chars[: rng.randrange(len(chars) + 1)]
    return "".join(chars)


def fuzz(compiled: Callable[[object, int], TradesPush | None], seed: int, *, count: int = 0,
         seconds: float = 0.0) -> tuple[int, int]:  # fmt: skip
    """Differential fuzzing of ``compiled`` (a ``TradeParser.parse``) against the pure-Python and the general
    path, for ``count`` inputs or ``seconds``; raises AssertionError naming the first input they disagree on.
    Returns (inputs, inputs the compiled path took)."""
    from benchmarks.bench_parse import frames
    from tests.exchanges.okx_frames import all_frames

    seeds = [t for t in all_frames() if t.startswith('{"arg":{"channel":"trades')]
    seeds += [*frames("trades-all", 20), *frames("trades", 20)]
    corpus, rng, pure = list(seeds), random.Random(seed), TradeFastPath(memo_size=64).parse
    recvs = (TS_MIN_MS, TS_MIN_MS - 1, TS_MAX_MS - 1, TS_MAX_MS, 2**63, -1, True, None, 1.0)
    n = took = 0
    end = time.monotonic() + seconds
    while (n < count) if count else (time.monotonic() < end):
        draw = rng.random()
        if draw < 0.35:
            text = _generated(rng)
        elif draw < 0.6:
            text = _field_mutated(rng, rng.choice(corpus))
        else:
            text = _chars_mutated(rng, rng.choice(corpus), seeds)
        recv = R if rng.random() < 0.95 else rng.choice(recvs)
        got = compiled(text, recv)  # type: ignore[arg-type]
        if type(recv) is int:
            want = pure(text, recv)
            assert repr(got) == repr(want), (text, recv, got, want)
        else:
            assert got is None, (text, recv, got)
        if got is not None:
            assert repr(got) == repr(_parse(text, recv)), text  # type: ignore[arg-type]
            took += 1
            if len(corpus) < 5_000 and rng.random() < 0.05:
                corpus.append(text)
        n += 1
    return n, took


def test_seeded_random_mutations_agree() -> None:
    """A fixed-seed run of the fuzzer: generated frames around every limit (tradeId and count at 2**63, numbers
    at 40 + 40 digits, instId at 64), boundary tokens in each field, character-level mutations and splices,
    odd receive times. The compiled path takes a good share, so the records are compared too."""
    n, took = fuzz(COMPILED, 20261126, count=30_000)
    assert n == 30_000 and took > 1_000


if (
    __name__ == "__main__"
):  # python -m tests.exchanges.test_okx_fastparse_audit SECONDS SEED [path/to/_fastparse.so]
    import importlib.util

    module: Any = fast._fastparse
    if len(sys.argv) > 3:  # e.g. an ASan build (docs/okx.md)
        spec = importlib.util.spec_from_file_location("collectors.exchanges.okx._fastparse", sys.argv[3])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    parser = module.TradeParser(trade_type=Trade, push_type=TradesPush, buy=Side.BUY, sell=Side.SELL,
                                decimal_type=Decimal, ts_min_ms=TS_MIN_MS, ts_max_ms=TS_MAX_MS)  # fmt: skip
    n, took = fuzz(parser.parse, int(sys.argv[2]), seconds=float(sys.argv[1]))
    print(f"{module.__file__}: {n} inputs, the compiled path took {took}, no disagreement")


def test_an_init_reentered_from_the_class_lookup_cannot_build_the_parser_twice() -> None:
    """``__init__`` reads each class's ``__slots__`` through the metaclass, which runs Python code: here it builds
    the same parser meanwhile. The outer ``__init__`` then stored over the inner one's fields (a parser built
    twice, and a reference to the inner ``Trade`` class leaked); now it sees the parser built and refuses."""
    from collectors.exchanges.okx._fastparse import TradeParser

    args: dict[str, Any] = dict(
        buy=Side.BUY, sell=Side.SELL, decimal_type=Decimal, ts_min_ms=1, ts_max_ms=2**62
    )
    built = [TradeParser.__new__(TradeParser)]
    entered: list[bool] = []

    class Reentering(type):
        def __getattribute__(cls, name: str) -> Any:
            if name == "__slots__" and not entered:
                entered.append(True)
                built[0].__init__(trade_type=Trade, push_type=TradesPush, **args)  # type: ignore[misc]
            return super().__getattribute__(name)

    class Other(metaclass=Reentering):
        __slots__ = Trade.__slots__

    trade_refs = sys.getrefcount(Trade)
    with pytest.raises(RuntimeError, match="already initialised"):
        built[0].__init__(trade_type=Other, push_type=TradesPush, **args)  # type: ignore[misc]
    assert entered == [True]
    text = doc_examples()[-2]
    assert repr(built[0].parse(text, R)) == repr(PURE(text, R)) != "None"  # the inner build, whole
    built.clear()  # the parser and its class references go
    assert sys.getrefcount(Trade) == trade_refs
