"""Settings from the environment and the collectors config file: defaults, contracts, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors.config import load_config, parse_config
from collectors.errors import ConfigError
from collectors.exchanges.okx.spec import DEFAULT_PAIRS, OKX, REST_URL, WS_BUSINESS_URL, WS_PUBLIC_URL
from collectors.exchanges.registry import ExchangeRegistry, default_registry
from collectors.exchanges.spec import ExchangeSpec
from collectors.settings import DEFAULT_DATABASE_URL, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_lists_the_default_pairs_and_timeframes() -> None:
    config = load_config(REPO / "config" / "collectors.yaml", known_exchanges=default_registry().names())
    okx = config.exchanges["okx"]
    assert [p.inst_id for p in okx.pairs] == list(DEFAULT_PAIRS)
    assert len(DEFAULT_PAIRS) == 9 and "PEPE-USDT" in DEFAULT_PAIRS
    assert okx.timeframes == ("1m", "5m", "15m", "1h", "4h", "1d")
    assert okx.channels_for(okx.pairs[0]) == ("trades", "books5", "tickers", "candles")
    assert config.batching.max_batch_rows == 5000 and config.batching.spill_dir == Path("data/spill")
    assert config.retention.raw_messages_days == 7


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    config = load_config(path)
    assert [p.inst_id for p in config.exchanges["okx"].pairs] == list(DEFAULT_PAIRS)


def test_json_files_are_read_and_pairs_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "exchanges": {
                    "okx": {
                        "timeframes": ["1m", "1h"],
                        "pairs": [
                            "BTC-USDT",
                            {"inst_id": "PEPE-USDT", "channels": ["trades"], "timeframes": ["1s"]},
                        ],
                    }
                },
                "candles": {"empty_intervals": "carry"},
            }
        )
    )
    config = load_config(path)
    okx = config.exchanges["okx"]
    btc, pepe = okx.pairs
    assert okx.timeframes_for(btc) == ("1m", "1h") and okx.channels_for(btc) == okx.channels
    assert okx.timeframes_for(pepe) == ("1s",) and okx.channels_for(pepe) == ("trades",)
    assert config.candles.empty_intervals == "carry"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "exchanges: {okx: {pairs: [BTCUSDT]}}",
            "exchanges.okx.pairs[0].inst_id: unknown pair format 'BTCUSDT'",
        ),
        (
            "exchanges: {okx: {pairs: [btc-usdt]}}",
            "exchanges.okx.pairs[0].inst_id: unknown pair format 'btc-usdt'",
        ),
        ("exchanges: {okx: {timeframes: [1m, 7m]}}", "exchanges.okx.timeframes: unknown timeframe '7m'"),
        (
            "exchanges: {okx: {pairs: [{inst_id: ETH-USDT, timeframes: [2d]}]}}",
            "exchanges.okx.pairs[0].timeframes: unknown timeframe '2d'",
        ),
        (
            "exchanges: {okx: {pairs: [BTC-USDT, ETH-USDT, BTC-USDT]}}",
            "exchanges.okx.pairs[2]: duplicate pair 'BTC-USDT'",
        ),
        (
            "batching: {flush_interval_s: -1}",
            "batching.flush_interval_s: Input should be greater than 0 (got -1)",
        ),
        ("batching: {max_batch_rows: 0}", "batching.max_batch_rows: Input should be greater than 0 (got 0)"),
        (
            "batching: {max_batch_rows: 5000, max_pending_rows: 6000}",
            "batching: max_pending_rows (6000) must be >= 2 x max_batch_rows (5000)",
        ),
        ("retention: {tickers_days: -3}", "retention.tickers_days: Input should be greater than 0 (got -3)"),
        (
            "candles: {empty_intervals: fill}",
            "candles.empty_intervals: Input should be 'skip' or 'carry' (got 'fill')",
        ),
        (
            "exchanges: {okx: {channels: [trade]}}",
            "exchanges.okx.channels[0]: unknown channel 'trade'; okx serves: books5, candles, tickers, trades",
        ),
        (
            "exchanges: {okx: {pairs: [{inst_id: BTC-USDT, channels: [trades, depth]}]}}",
            "exchanges.okx.pairs[0].channels[1]: unknown channel 'depth'; okx serves:",
        ),
        ("exchanges: {okx: {pair: [BTC-USDT]}}", "exchanges.okx.pair: unknown field"),
        ("exchanges: {kraken: {}}", "exchanges: unknown exchange 'kraken'; known: okx"),
        ("exchanges: {}", "exchanges: at least one exchange is needed"),
        ("- a\n- b", "the top level must be a mapping"),
        ("exchanges: [", "not valid YAML"),
    ],
)
def test_bad_config_names_the_field_and_value(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, known_exchanges=["okx"])
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_parse_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "exchanges": {"okx": {"pairs": ["X"], "timeframes": ["9m"]}},
                "batching": {"flush_interval_s": 0},
            }
        )
    text = str(info.value)
    assert "pairs[0].inst_id" in text and "'9m'" in text and "flush_interval_s" in text


def test_settings_defaults_and_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "OKX_REST_URL",
        "OKX_WS_PUBLIC_URL",
        "OKX_WS_BUSINESS_URL",
        "COLLECTOR_CONFIG",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///data/marketdata.db"
    assert settings.okx_rest_url == REST_URL == OKX.endpoints["rest"] == "https://www.okx.com"
    assert settings.okx_ws_public_url == WS_PUBLIC_URL == "wss://ws.okx.com:8443/ws/v5/public"
    assert settings.okx_ws_business_url == WS_BUSINESS_URL == "wss://ws.okx.com:8443/ws/v5/business"
    assert settings.collector_config == Path("config/collectors.yaml")

    monkeypatch.setenv("DATABASE_URL", "postgresql://collector:s3cret@db.internal:5432/market")
    monkeypatch.setenv("OKX_REST_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("OKX_API_KEY", "key-123")
    monkeypatch.setenv("OKX_API_SECRET", "very-secret")
    monkeypatch.setenv("COLLECTOR_CONFIG", "/etc/okx/c.json")
    settings = load_settings()
    assert settings.okx_rest_url == "http://127.0.0.1:8080"
    assert settings.collector_config == Path("/etc/okx/c.json")
    assert settings.okx_api_secret is not None and settings.okx_api_secret.get_secret_value() == "very-secret"
    shown = settings.masked()
    assert shown["OKX_API_KEY"] == "********" and shown["OKX_API_SECRET"] == "********"
    assert shown["OKX_API_PASSPHRASE"] == "<unset>"
    assert "s3cret" not in json.dumps(shown) and "very-secret" not in json.dumps(shown)
    assert "key-123" not in repr(settings) and "very-secret" not in repr(settings)
    assert shown["DATABASE_URL"] == "postgresql+psycopg://collector:***@db.internal:5432/market"


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_WS_PUBLIC_URL", "https://ws.okx.com")
    with pytest.raises(ConfigError, match=r"OKX_WS_PUBLIC_URL: .*ws://"):
        load_settings()


def _no_dash_upper(symbol: str) -> str:
    """A second exchange's symbol rule (BTCUSDT), unlike OKX's BASE-QUOTE."""
    if not (symbol.isalnum() and symbol.isupper()):
        raise ValueError(
            f"unknown symbol {symbol!r}: expected letters and digits in capitals, like 'BTCUSDT'"
        )
    return symbol


_OTHER = ExchangeSpec(
    name="otherex",
    channels=frozenset({"trades", "depth"}),
    validate_symbol=_no_dash_upper,
    default_symbols=("BTCUSDT",),
)


def test_a_second_exchange_brings_its_own_symbols_and_channels() -> None:
    registry = ExchangeRegistry([OKX, _OTHER])
    config = parse_config(
        {
            "exchanges": {
                "otherex": {
                    "channels": ["depth"],
                    "pairs": ["ETHUSDT", {"inst_id": "BTCUSDT", "channels": ["trades"]}],
                },
                "okx": {"pairs": ["BTC-USDT"]},
            }
        },
        registry=registry,
    )
    other, okx = config.exchanges["otherex"], config.exchanges["okx"]
    assert [(p.inst_id, other.channels_for(p)) for p in other.pairs] == [
        ("ETHUSDT", ("depth",)),
        ("BTCUSDT", ("trades",)),
    ]
    assert [(p.inst_id, okx.channels_for(p)) for p in okx.pairs] == [
        ("BTC-USDT", ("trades", "books5", "tickers", "candles"))
    ]
    # left-out channels and pairs are the exchange's own defaults (all its channels, sorted, when it names none)
    defaults = parse_config({"exchanges": {"otherex": {}}}, registry=registry).exchanges["otherex"]
    assert (defaults.channels, [p.inst_id for p in defaults.pairs]) == (("depth", "trades"), ["BTCUSDT"])


def test_each_exchange_is_checked_by_its_own_rules() -> None:
    registry = ExchangeRegistry([OKX, _OTHER])
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "exchanges": {
                    "otherex": {"channels": ["books5"], "pairs": ["BTC-USDT"]},
                    "okx": {"channels": ["depth"], "pairs": ["BTCUSDT"]},
                },
                "batching": {"max_batch_rows": 0},
            },
            source="two.yaml",
            registry=registry,
        )
    assert str(info.value).splitlines() == [
        "two.yaml: invalid config:",
        "  exchanges.otherex.channels[0]: unknown channel 'books5'; otherex serves: depth, trades",
        "  exchanges.otherex.pairs[0].inst_id: unknown symbol 'BTC-USDT': expected letters and digits in capitals,"
        " like 'BTCUSDT'",
        "  exchanges.okx.channels[0]: unknown channel 'depth'; okx serves: books5, candles, tickers, trades",
        "  exchanges.okx.pairs[0].inst_id: unknown pair format 'BTCUSDT': expected BASE-QUOTE in capitals,"
        " like 'BTC-USDT'",
        "  batching.max_batch_rows: Input should be greater than 0 (got 0)",
    ]
    # the default registry knows only OKX
    with pytest.raises(ConfigError, match="exchanges: unknown exchange 'otherex'; known: okx"):
        parse_config({"exchanges": {"otherex": {}}})


def test_config_module_names_no_exchange_fact() -> None:
    """Adding an exchange touches no core file: config.py holds no channel, pair or URL of OKX."""
    text = (REPO / "collectors" / "config.py").read_text()
    for fact in ("books5", "BTC-USDT", "okx.com", "validate_inst_id", "OKX"):
        assert fact not in text, fact


@pytest.mark.parametrize(
    ("exchange", "expected"),
    [
        (
            {"channels": ["trades", "books5", "trades"]},
            "exchanges.okx.channels: duplicate channel 'trades' in ['trades', 'books5', 'trades']",
        ),
        (
            {"pairs": [{"inst_id": "BTC-USDT", "channels": ["candles", "candles"]}]},
            "exchanges.okx.pairs[0].channels: duplicate channel 'candles' in ['candles', 'candles']",
        ),
        (
            {"channels": []},
            "exchanges.okx.channels: at least one channel is needed; leave channels out for the exchange's"
            " defaults",
        ),
        (
            {"pairs": [{"inst_id": "BTC-USDT", "channels": []}]},
            "exchanges.okx.pairs[0].channels: at least one channel is needed; leave channels out for the"
            " exchange's defaults",
        ),
        (
            {"pairs": []},
            "exchanges.okx.pairs: at least one pair is needed; leave pairs out for the exchange's defaults",
        ),
    ],
)
def test_a_channel_list_or_pair_list_that_collects_nothing_or_twice_is_refused(
    exchange: dict[str, object], expected: str
) -> None:
    """An entry that records nothing looks healthy while it loses everything; a channel named twice
    would subscribe twice."""
    with pytest.raises(ConfigError) as info:
        parse_config({"exchanges": {"okx": exchange}}, source="c.yaml")
    assert str(info.value).splitlines() == ["c.yaml: invalid config:", f"  {expected}"]


def _lenient_symbols(symbol: str) -> str:
    if symbol == "ETHUSD":
        raise ValueError("ETHUSD: not listed on otherex")
    return None if symbol == "NONE" else symbol  # type: ignore[return-value]  # a plug-in's bug


def test_a_plug_in_message_is_shown_as_written_and_a_non_symbol_answer_is_refused() -> None:
    registry = ExchangeRegistry(
        [OKX, ExchangeSpec(name="otherex", channels=frozenset({"trades"}), validate_symbol=_lenient_symbols)]
    )
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"exchanges": {"otherex": {"pairs": ["ETHUSD", "NONE"]}}}, source="c.yaml", registry=registry
        )
    assert str(info.value).splitlines() == [
        "c.yaml: invalid config:",
        "  exchanges.otherex.pairs[0].inst_id: ETHUSD: not listed on otherex (got 'ETHUSD')",
        "  exchanges.otherex.pairs[1].inst_id: otherex's validate_symbol returned None for 'NONE', not a"
        " symbol",
    ]


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OKX_REST_URL", "https://", "has no host"),
        ("OKX_REST_URL", "https:///api", "has no host"),
        ("OKX_REST_URL", "https://www.okx.com/ ", "contains whitespace"),
        ("OKX_REST_URL", "https://www.okx.com:99999", "has a bad port"),
        ("OKX_REST_URL", "https://www.okx.com:http", "has a bad port"),
        ("OKX_REST_URL", "https://www.okx.com/?x=1", "a base URL takes no query or fragment"),
        ("OKX_REST_URL", "https://www.okx.com#top", "a base URL takes no query or fragment"),
        ("OKX_WS_PUBLIC_URL", "wss://", "has no host"),
        ("OKX_WS_PUBLIC_URL", "wss://:8443/ws/v5/public", "has no host"),
        ("OKX_WS_BUSINESS_URL", "ws://x y", "contains whitespace"),
        ("OKX_WS_BUSINESS_URL", "wss://ws.okx.com:0/ws/v5/business", "has a bad port"),
        ("OKX_WS_BUSINESS_URL", "wss://ws.okx.com/ws/v5/business#x", "a WebSocket URL takes no fragment"),
    ],
)
def test_an_okx_url_override_that_cannot_be_connected_to_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == f"invalid settings: {variable}: Value error, {value!r} {reason}"


def test_okx_url_overrides_reach_the_settings_and_stay_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_REST_URL", "http://[::1]:8080/")
    monkeypatch.setenv("OKX_WS_PUBLIC_URL", "ws://127.0.0.1:9000/ws/v5/public")
    monkeypatch.setenv("OKX_WS_BUSINESS_URL", "ws://localhost:9000/ws/v5/business?x=1")
    settings = load_settings()
    shown = (settings.okx_rest_url, settings.okx_ws_public_url, settings.okx_ws_business_url)
    assert shown == (
        "http://[::1]:8080",
        "ws://127.0.0.1:9000/ws/v5/public",
        "ws://localhost:9000/ws/v5/business?x=1",
    )
    # what settings hold passes their own checks again
    again = load_settings(okx_rest_url=shown[0], okx_ws_public_url=shown[1], okx_ws_business_url=shown[2])
    assert (again.okx_rest_url, again.okx_ws_public_url, again.okx_ws_business_url) == shown


def test_live_section_defaults_and_shipped_values() -> None:
    shipped = load_config(REPO / "config" / "collectors.yaml").live
    default = parse_config({}).live
    for live in (shipped, default):
        assert (live.trades_mode, live.book_snapshot_interval_ms, live.raw_archive) == (
            "every_fill",
            1000,
            "all",
        )
        assert (live.full_depth_book, live.full_depth_levels) == (False, 50)


def test_live_section_accepts_aggregated_trades_and_other_modes() -> None:
    live = parse_config(
        {
            "live": {
                "trades_mode": "aggregated",
                "book_snapshot_interval_ms": 0,
                "raw_archive": "trades",
                "full_depth_book": True,
                "full_depth_levels": 400,
            }
        }
    ).live
    assert (live.trades_mode, live.book_snapshot_interval_ms, live.raw_archive) == ("aggregated", 0, "trades")
    assert (live.full_depth_book, live.full_depth_levels) == (True, 400)


def test_live_section_refuses_bad_values_naming_each() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "live": {
                    "trades_mode": "trades-all",
                    "book_snapshot_interval_ms": -1,
                    "raw_archive": "some",
                    "full_depth_levels": 0,
                    "depth": 5,
                }
            }
        )
    lines = str(caught.value).splitlines()[1:]
    assert [line.strip().split(":")[0] for line in lines] == [
        "live.trades_mode",
        "live.book_snapshot_interval_ms",
        "live.raw_archive",
        "live.full_depth_levels",
        "live.depth",
    ]
    assert "live.depth: unknown field" in str(caught.value)
    assert "'every_fill' or 'aggregated' (got 'trades-all')" in str(caught.value)
