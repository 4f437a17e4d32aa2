"""The exchange registry and OKX's spec: one spec module, no import loop, OKX facts in one place."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grimp
import pytest

from collectors.config import parse_config
from collectors.errors import ConfigError
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


class _EntryPoint:
    """What importlib.metadata gives for an installed plug-in, loading ``obj`` or failing with ``error``."""

    def __init__(self, name: str, value: str, obj: object = None, error: Exception | None = None) -> None:
        self.name, self.value, self._obj, self._error = name, value, obj, error

    def load(self) -> object:
        if self._error is not None:
            raise self._error
        return self._obj


def _installed(monkeypatch: pytest.MonkeyPatch, *points: _EntryPoint) -> None:
    def fake(*, group: str) -> tuple[_EntryPoint, ...]:
        assert group == "okx_collector.exchanges"
        return points

    monkeypatch.setattr("collectors.exchanges.registry.entry_points", fake)


_PLUGIN = ExchangeSpec(name="otherex", channels=frozenset({"trades"}), validate_symbol=str)


def test_an_installed_plug_in_is_listed_beside_okx(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, _EntryPoint("otherex", "otherex.spec:SPEC", _PLUGIN))
    registry = default_registry()
    assert registry.names() == ["okx", "otherex"] and registry.get("otherex") is _PLUGIN


def test_a_plug_in_that_cannot_be_loaded_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(
        monkeypatch,
        _EntryPoint("broken", "broken.spec:SPEC", error=ModuleNotFoundError("No module named 'broken'")),
    )
    with pytest.raises(ConfigError) as info:
        default_registry()
    assert str(info.value) == (
        "entry point 'broken' (broken.spec:SPEC) cannot be loaded: ModuleNotFoundError: No module named 'broken'"
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (
            [_EntryPoint("okx2", "okx2.spec:SPEC", dataclasses.replace(OKX, default_symbols=()))],
            "entry point 'okx2' (okx2.spec:SPEC): exchange 'okx' is registered twice",
        ),
        (
            [_EntryPoint("a", "a:SPEC", _PLUGIN), _EntryPoint("b", "b:SPEC", _PLUGIN)],
            "entry point 'b' (b:SPEC): exchange 'otherex' is registered twice",
        ),
    ],
)
def test_a_plug_in_reusing_a_name_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, points: list[_EntryPoint], message: str
) -> None:
    _installed(monkeypatch, *points)
    with pytest.raises(ConfigError) as info:
        default_registry()
    assert str(info.value) == message


def test_loading_a_config_with_a_broken_plug_in_installed_fails_as_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _installed(monkeypatch, _EntryPoint("x", "x:SPEC", error=ImportError("cannot import name 'SPEC'")))
    with pytest.raises(ConfigError, match="entry point 'x' \\(x:SPEC\\) cannot be loaded: ImportError"):
        parse_config({"exchanges": {"okx": {}}})
