"""parse_frame on real OKX frames (2026 and 2022 recordings, docs examples): exact values, and rejections."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from collectors.exchanges.okx.events import (
    BooksPush,
    CandlePush,
    ErrorEvent,
    LoggedIn,
    Notice,
    Pong,
    Rejected,
    Subscribed,
    TickerPush,
    TradesPush,
    Unsubscribed,
)
from collectors.exchanges.okx.fast import TradeFastPath, new_fast_path
from collectors.exchanges.okx.messages import OkxBookLevel
from collectors.exchanges.okx.parse import FrameParser, parse_frame
from collectors.model import BookLevel, Side, Ticker, Trade
from tests.exchanges.okx_frames import (
    RECV_2022_MS,
    RECV_2026_MS,
    all_frames,
    compact,
    doc_examples,
    recorded_2022,
    recorded_2026,
)

R = RECV_2026_MS


def test_every_real_and_documented_frame_parses_without_a_rejection() -> None:
    kinds: dict[str, int] = {}
    for text in all_frames():
        event = parse_frame(text, recv_ms=R)
        assert not isinstance(event, Rejected), (event, text)
        assert not getattr(event, "rejected", ()), text
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
    assert kinds == {
        "Subscribed": 27, "TickerPush": 35, "CandlePush": 5, "TradesPush": 81, "BooksPush": 297,
    }  # fmt: skip


def test_a_2026_aggregated_trade_keeps_its_count_and_exact_strings() -> None:
    text = recorded_2026()[17]
    assert '"tradeId":"2832749645"' in text
    event = parse_frame(text, recv_ms=R)
    assert event == TradesPush(
        channel="trades",
        inst_id="BTC-USDT-SWAP",
        trades=(
            Trade(
                exchange="okx", inst_id="BTC-USDT-SWAP", trade_id=2832749645, ts_ms=1786540436090,
                price=Decimal("63913.4"), size=Decimal("34.95"), side=Side.SELL, recv_ms=R, source="0",
            ),
        ),
        counts=(10,),
        recv_ms=R,
    )  # fmt: skip
    assert event.id_spans() == ((2832749636, 2832749645),)


def test_consecutive_2026_aggregated_trades_step_by_count() -> None:
    a, b = (parse_frame(recorded_2026()[i], recv_ms=R) for i in (19, 20))
    assert isinstance(a, TradesPush) and isinstance(b, TradesPush)
    assert a.id_spans() == ((1040968612, 1040968613),)
    assert b.id_spans() == ((1040968614, 1040968614),)
    assert a.trades[0].size == Decimal("0.00240857") and str(a.trades[0].size) == "0.00240857"


def test_trades_all_docs_example_is_one_fill() -> None:
    event = parse_frame(doc_examples()[-2], recv_ms=R)
    assert event == TradesPush(
        channel="trades-all",
        inst_id="BTC-USDT",
        trades=(
            Trade(
                exchange="okx", inst_id="BTC-USDT", trade_id=130639474, ts_ms=1630048897897,
                price=Decimal("42219.9"), size=Decimal("0.12060306"), side=Side.BUY, recv_ms=R, source="0",
            ),
        ),
        counts=(1,),
        recv_ms=R,
    )  # fmt: skip


def test_a_2022_trade_without_count_or_source() -> None:
    text = next(t for t in recorded_2022() if '{"arg":{"channel":"trades","instId":"BTC-USDT"}' in t)
    event = parse_frame(text, recv_ms=RECV_2022_MS)
    row = json.loads(text)["data"][0]
    assert isinstance(event, TradesPush) and event.counts == (1,)
    (trade,) = event.trades
    assert (trade.trade_id, trade.ts_ms, str(trade.price), str(trade.size), trade.side.value, trade.source) == (
        int(row["tradeId"]), int(row["ts"]), row["px"], row["sz"], row["side"], None,
    )  # fmt: skip


def test_a_2026_ticker_maps_every_field() -> None:
    event = parse_frame(recorded_2026()[1], recv_ms=R)
    assert event == TickerPush(
        inst_id="BTC-USDT",
        tickers=(
            Ticker(
                exchange="okx", inst_id="BTC-USDT", ts_ms=1786613174873, last=Decimal("63707.3"),
                last_size=Decimal("0.00164251"), bid_price=Decimal("63707.2"), bid_size=Decimal("1.70080521"),
                ask_price=Decimal("63707.3"), ask_size=Decimal("0.15455902"), open_24h=Decimal("63958.9"),
                high_24h=Decimal("64496.9"), low_24h=Decimal("63309.4"), volume_24h=Decimal("3601.1585121"),
                volume_ccy_24h=Decimal("229576048.730317321"), recv_ms=R,
            ),
        ),
        recv_ms=R,
    )  # fmt: skip


def test_a_candle_push_before_its_ack_and_its_trailing_zeros() -> None:
    event = parse_frame(recorded_2026()[9], recv_ms=R)
    assert isinstance(event, CandlePush)
    assert (event.channel, event.inst_id, event.bar) == ("candle1m", "BTC-USDT-SWAP", "1m")
    (candle,) = event.candles
    assert (candle.open_time_ms, str(candle.open), str(candle.high), str(candle.volume)) == (
        1786540440000, "63913.0", "63951.8", "1803.61",
    )  # fmt: skip
    assert (str(candle.volume_ccy_quote), candle.confirmed) == ("1153203.99426000", False)
    assert parse_frame(recorded_2026()[10], recv_ms=R) == Subscribed(
        channel="candle1m", inst_id="BTC-USDT-SWAP", conn_id="37f37c07"
    )


def test_books5_is_a_validated_top_of_book() -> None:
    event = parse_frame(recorded_2026()[25], recv_ms=R)
    assert isinstance(event, BooksPush) and event.snapshot is not None
    assert (event.channel, event.action, event.ts_ms, event.seq_id, event.checksum) == (
        "books5", None, 1786538744703, 79706756139, None,
    )  # fmt: skip
    assert event.snapshot.asks[2] == BookLevel(price=Decimal("64074"), size=Decimal("0.0000102"), orders=1)
    assert event.snapshot.bids[0] == BookLevel(price=Decimal("64073"), size=Decimal("0.58849577"), orders=44)
    assert event.asks[0] == OkxBookLevel(px="64073.1", sz="1.07909367", orders="8")
    assert (len(event.snapshot.bids), len(event.snapshot.asks)) == (5, 5)


def test_a_2022_books_update_keeps_raw_levels_and_checksum() -> None:
    text = next(t for t in recorded_2022() if '"action":"update"' in t and '["30249.4","0","0","0"]' in t)
    event = parse_frame(text, recv_ms=RECV_2022_MS)
    assert isinstance(event, BooksPush) and event.snapshot is None
    assert (event.action, event.checksum, event.seq_id, event.prev_seq_id) == (
        "update",
        -914047754,
        None,
        None,
    )
    assert event.asks[0] == OkxBookLevel(px="30249.4", sz="0", orders="0")


def test_events_acks_errors_and_notice() -> None:
    assert parse_frame("pong", recv_ms=R) == Pong()
    assert parse_frame(b"pong", recv_ms=R) == Pong()
    assert parse_frame(recorded_2022()[0], recv_ms=R) == Subscribed(
        channel="tickers", inst_id="BTC-USD-220527", conn_id=None
    )
    unsub = '{"event":"unsubscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"d0b44253"}'
    assert parse_frame(unsub, recv_ms=R) == Unsubscribed(
        channel="tickers", inst_id="BTC-USDT", conn_id="d0b44253"
    )
    login = '{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}'
    assert parse_frame(login, recv_ms=R) == LoggedIn(conn_id="a4d3ae55")
    error = (
        '{"event":"error","msg":"Subscribe failed, wrong URL or channel:candle1m,instId:BTC-USDT doesn\'t exist. '
        'Please use the correct URL, channel and parameters referring to API document.","code":"60018",'
        '"connId":"25ebf8bb"}'
    )
    event = parse_frame(error, recv_ms=R)
    assert isinstance(event, ErrorEvent)
    assert (event.code, event.channel, event.inst_id, event.conn_id) == (
        "60018",
        "candle1m",
        "BTC-USDT",
        "25ebf8bb",
    )
    bad_op = '{"id":"1512","event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\"}","connId":"a4d3ae55"}'
    assert parse_frame(bad_op, recv_ms=R) == ErrorEvent(
        code="60012",
        msg='Invalid request: {"op": "subscribe"}',
        channel=None,
        inst_id=None,
        conn_id="a4d3ae55",
    )
    notice = (
        '{"event":"notice","msg":"The connection will soon be closed for a service upgrade. Please reconnect.",'
        '"code":"64008","connId":"a4d3ae55"}'
    )
    assert parse_frame(notice, recv_ms=R) == Notice(
        code="64008",
        msg="The connection will soon be closed for a service upgrade. Please reconnect.",
        conn_id="a4d3ae55",
    )


def _trade_frame(*rows: dict[str, object], inst: str = "BTC-USDT", channel: str = "trades-all") -> str:
    return compact({"arg": {"channel": channel, "instId": inst}, "data": list(rows)})


_ROW = json.loads(doc_examples()[-2])["data"][0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"px": "-42219.9"}, "price=Decimal('-42219.9'): must be a finite number > 0"),
        ({"px": "0"}, "price=Decimal('0'): must be a finite number > 0"),
        ({"sz": "0.0"}, "size=Decimal('0.0'): must be a finite number > 0"),
        ({"side": "hold"}, "side='hold': must be 'buy' or 'sell'"),
        (
            {"side": {"a": [1]}},
            "side={'a': [1]}: must be 'buy' or 'sell'",
        ),  # unhashable: once raised TypeError
        ({"side": []}, "side=[]: must be 'buy' or 'sell'"),
        ({"px": "1e5"}, "px='1e5': must be a string in plain decimal notation"),
        ({"px": "NaN"}, "px='NaN': must be a string in plain decimal notation"),
        ({"px": 42219.9}, "px=42219.9: must be a string in plain decimal notation"),
        ({"tradeId": "１２３"}, "tradeId='１２３': must be a string of 1-19 ASCII digits"),
        ({"ts": "1630048897"}, "ts_ms=1630048897: outside 2000-01-01..2100-01-01 UTC"),
        ({"instId": "ETH-USDT"}, "instId 'ETH-USDT' does not match the subscription's 'BTC-USDT'"),
        ({"tradeId": None}, "tradeId=None: must be a string of 1-19 ASCII digits"),
    ],
)
def test_a_bad_trade_row_is_rejected_with_its_reason_and_the_exact_text(
    change: dict[str, object], reason: str
) -> None:
    text = _trade_frame({**_ROW, **change})
    assert parse_frame(text, recv_ms=R) == Rejected(
        reason=f"data[0]: {reason}", channel="trades-all", inst_id="BTC-USDT", text=text, row=0
    )


def test_a_frame_with_one_bad_row_keeps_the_good_rows_and_lists_the_bad() -> None:
    good2 = {**_ROW, "tradeId": "130639476"}
    text = _trade_frame(_ROW, {**_ROW, "tradeId": "130639475", "px": "-1"}, good2)
    event = parse_frame(text, recv_ms=R)
    assert isinstance(event, TradesPush)
    assert [t.trade_id for t in event.trades] == [130639474, 130639476]
    assert event.rejected == (
        Rejected(
            reason="data[1]: price=Decimal('-1'): must be a finite number > 0",
            channel="trades-all", inst_id="BTC-USDT", text=text, row=1,
        ),
    )  # fmt: skip


def test_a_book_frame_with_one_bad_level_is_rejected_whole() -> None:
    frame = json.loads(recorded_2026()[25])
    frame["data"][0]["bids"][3][0] = "64074"  # above the level before it: bids must descend
    text = compact(frame)
    event = parse_frame(text, recv_ms=R)
    assert event == Rejected(
        reason="bids[3].price=Decimal('64074'): levels must be strictly descending by price",
        channel="books5", inst_id="BTC-USDT", text=text,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[{"instId"', "not JSON: "),
        ("[1,2]", "frame is not a JSON object"),
        ('{"foo":1}', "frame has neither 'event' nor 'arg' and 'data'"),
        (
            '{"event":"channel-conn-count","channel":"orders","connCount":"2"}',
            "unknown event 'channel-conn-count'",
        ),
        (
            '{"arg":{"channel":"instruments","instId":"BTC-USDT"},"data":[{}]}',
            "unsupported channel 'instruments'",
        ),
        ('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[]}', "push data is not a non-empty list"),
        ('{"arg":{"channel":"trades"},"data":[{}]}', "push without a string arg.channel and arg.instId"),
        ('"ping"', "frame is not a JSON object"),
    ],
)
def test_malformed_frames_are_rejected(text: str, reason: str) -> None:
    event = parse_frame(text, recv_ms=R)
    assert isinstance(event, Rejected) and event.text == text
    assert event.reason.startswith(reason)


def test_invalid_utf8_bytes_are_rejected_with_an_escaped_text() -> None:
    event = parse_frame(b'{"arg":\xff}', recv_ms=R)
    assert isinstance(event, Rejected) and event.text == '{"arg":\\xff}'


def test_the_fast_path_takes_the_common_shapes_and_agrees_with_the_general_path() -> None:
    docs = doc_examples()[-2]
    with_seq = docs[:-3] + ',"seqId":79706765242}]}'
    fast_path, stateless = TradeFastPath(), TradeFastPath(memo_size=0)
    for text in (docs, with_seq, recorded_2026()[17], recorded_2026()[19]):
        general = parse_frame(" " + text, recv_ms=R)  # a leading space forces the general path
        assert isinstance(general, TradesPush)
        for fast in (
            fast_path.parse(text, R),
            fast_path.parse(text, R),
            stateless.parse(text, R),
        ):  # twice: from the memo
            assert fast == general and type(fast) is TradesPush and type(fast.trades[0]) is Trade
    assert fast_path.parse(doc_examples()[-1], R) is None  # no source: the general path decides


def test_a_frame_parser_gives_the_events_of_parse_frame() -> None:
    parser = FrameParser()
    for text in all_frames():
        assert parser.parse(text, recv_ms=R) == parse_frame(text, recv_ms=R)


@pytest.mark.parametrize("compiled", [False, True])
def test_the_fast_path_leaves_a_bad_value_to_the_general_path_which_names_it(compiled: bool) -> None:
    fast_path = new_fast_path(compiled=compiled)
    for change, reason in [
        ('"px":"-1"', "price=Decimal('-1'): must be a finite number > 0"),
        ('"sz":"0"', "size=Decimal('0'): must be a finite number > 0"),
        ('"ts":"1630048897"', "ts_ms=1630048897: outside 2000-01-01..2100-01-01 UTC"),
        ('"tradeId":"9223372036854775808"', "trade_id=9223372036854775808: must be an int in 0..2**63-1"),
    ]:
        key = change.split(":")[0]
        text = re.sub(key + r':"[^"]*"', change, doc_examples()[-2])
        assert fast_path(text, R) is None and fast_path(text, R) is None, text
        assert parse_frame(text, recv_ms=R) == Rejected(
            reason=f"data[0]: {reason}", channel="trades-all", inst_id="BTC-USDT", text=text, row=0
        )


def test_the_memo_is_bounded_and_keeps_each_text_exact() -> None:
    fast_path = TradeFastPath(memo_size=2)
    texts = [
        doc_examples()[-2].replace('"px":"42219.9"', f'"px":"{px}"') for px in ("1.10", "1.1", "2", "1.10")
    ]
    prices = [fast_path.parse(t, R).trades[0].price for t in texts]  # type: ignore[union-attr]
    assert [str(p) for p in prices] == ["1.10", "1.1", "2", "1.10"]
    with pytest.raises(ValueError, match="memo_size must be >= 0"):
        TradeFastPath(memo_size=-1)


@pytest.mark.parametrize(
    ("seq_id", "reason"),
    [
        ("00", "not JSON: number with leading zero is not allowed"),
        ("-01", "not JSON: number with leading zero is not allowed"),
        ("-9999999999999999999", "data[0]: seqId=-1e+19: must be an integer"),  # orjson: a float past int64
    ],
)
@pytest.mark.parametrize("compiled", [False, True])
def test_the_fast_path_leaves_a_seq_id_json_or_the_general_path_refuses(
    seq_id: str, reason: str, compiled: bool
) -> None:
    text = re.sub(r'"seqId":\d+', f'"seqId":{seq_id}', recorded_2026()[17])
    assert f'"seqId":{seq_id}' in text
    assert new_fast_path(compiled=compiled)(text, R) is None
    event = parse_frame(text, recv_ms=R)
    assert isinstance(event, Rejected) and event.reason.startswith(reason) and event.text == text
