"""The exchange registry and OKX's spec: one spec module, no import loop, OKX facts in one place."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

from collectors.exchanges.okx.spec import (
    DEFAULT_PAIRS,
    OKX,
    OKX_BARS,
    REST_URL,
    WS_BUSINESS_URL,
    WS_PUBLIC_URL,
)
from collectors.exchanges.registry import ExchangeRegistry, default_registry
from collectors.exchanges.spec import ExchangeSpec


def test_registry_and_okx_spec_do_not_import_each_other() -> None:
    graph = grimp.build_graph("collectors")
    assert (
        graph.find_shortest_chain(
            importer="collectors.exchanges.okx.spec", imported="collectors.exchanges.registry"
        )
        is None
    )
    assert (
        graph.find_shortest_chain(
            importer="collectors.exchanges.spec", imported="collectors.exchanges.okx.spec"
        )
        is None
    )
    assert "collectors.exchanges.okx.spec" in graph.find_modules_directly_imported_by(
        "collectors.exchanges.registry"
    )


def test_okx_spec_holds_endpoints_bars_channels_and_default_pairs() -> None:
    assert (
        dict(OKX.endpoints)
        == {
            "rest": REST_URL,
            "ws_public": WS_PUBLIC_URL,
            "ws_business": WS_BUSINESS_URL,
        }
        == {
            "rest": "https://www.okx.com",
            "ws_public": "wss://ws.okx.com:8443/ws/v5/public",
            "ws_business": "wss://ws.okx.com:8443/ws/v5/business",
        }
    )
    assert OKX.bars is OKX_BARS
    assert OKX.channels_by_default() == ("trades", "books5", "tickers", "candles")
    assert OKX.default_symbols == DEFAULT_PAIRS
    assert [OKX.validate_symbol(p) for p in DEFAULT_PAIRS] == list(DEFAULT_PAIRS)
    with pytest.raises(ValueError, match="unknown pair format 'BTCUSDT'"):
        OKX.validate_symbol("BTCUSDT")


def test_a_spec_refuses_default_channels_it_does_not_serve() -> None:
    with pytest.raises(
        ValueError, match=r"otherex: default channels \['books5'\] are not among its channels"
    ):
        ExchangeSpec(
            name="otherex", channels=frozenset({"trades"}), validate_symbol=str, default_channels=("books5",)
        )


def test_default_registry_is_fresh_each_call() -> None:
    first, second = default_registry(), default_registry()
    assert first is not second and first.names() == second.names() == ["okx"]
    assert first.get("okx") is OKX
    assert ExchangeRegistry().names() == []


COLLECTORS = Path(__file__).resolve().parents[2] / "collectors"


@pytest.mark.parametrize(
    "fact",
    ['"1Dutc"', '"6Hutc"', "https://www.okx.com", "wss://ws.okx.com:8443/ws/v5/public", '"PEPE-USDT"'],
)
def test_each_okx_fact_is_written_once_under_exchanges_okx(fact: str) -> None:
    homes = sorted(str(p.relative_to(COLLECTORS)) for p in COLLECTORS.rglob("*.py") if fact in p.read_text())
    assert homes == ["exchanges/okx/spec.py"]


def test_the_candle_row_is_modelled_once() -> None:
    """Only the wire type (messages.py) names OKX's ``vol``/``volCcy``; everything else uses ExchangeCandle."""
    users = sorted(
        str(p.relative_to(COLLECTORS)) for p in COLLECTORS.rglob("*.py") if "vol_ccy_quote" in p.read_text()
    )
    assert users == ["exchanges/okx/messages.py"]
