"""The reference pages cannot fall behind the code: every setting, environment variable and config key is in
docs/configuration.md, every table and column in docs/schema.md, every page in the docs/README.md index, and
the relative links of those pages resolve."""

from __future__ import annotations

import re
import time
import types
import typing
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Engine, insert

from collectors.config import CollectorsConfig
from collectors.settings import Settings
from collectors.storage.schema import Base

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# where the programs, the tests' fixtures and the benchmarks read the environment
_ENV_READERS = (
    "collectors",
    "tasks",
    "flows",
    "okx_simulator",
    "benchmarks",
    "tests/soak",
    "tests/conftest.py",
)
_ENV_NAME = re.compile(r'"((?:OKX|COLLECTOR|DATABASE|PREFECT|TEST|BENCH|SOAK|PY)_[A-Z0-9_]+|CI)"')
_NOT_VARIABLES = {"PREFECT_YAML"}  # flows/prefect_yaml.py: a module constant's name in __all__
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# pages written for the hardening issue; their links are checked (the others' pages belong to other owners)
_CHECKED_PAGES = (
    "README.md",
    "quickstart.md",
    "configuration.md",
    "schema.md",
    "database.md",
    "troubleshooting.md",
)


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _environment_variables() -> set[str]:
    names: set[str] = set()
    for entry in _ENV_READERS:
        path = ROOT / entry
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            text = file.read_text(encoding="utf-8")
            if "environ" in text or "getenv" in text:
                names.update(_ENV_NAME.findall(text))
    return names - _NOT_VARIABLES


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def _config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        keys.append(key)
        origin = typing.get_origin(field.annotation)
        args = typing.get_args(field.annotation)
        if origin is dict:
            for nested in _nested_models(args[1]):
                keys.extend(_config_keys(nested, f"{key}.<name>."))
        elif origin is tuple or (
            origin in (typing.Union, types.UnionType) and any(typing.get_args(a) for a in args)
        ):
            for nested in _nested_models(field.annotation):
                keys.extend(_config_keys(nested, f"{key}[]."))
        else:
            for nested in _nested_models(field.annotation):
                keys.extend(_config_keys(nested, f"{key}."))
    return keys


def test_every_setting_and_environment_variable_is_in_configuration_md() -> None:
    page = _page("configuration.md")
    settings = {name.upper() for name in Settings.model_fields}
    assert {"DATABASE_URL", "OKX_API_SECRET", "COLLECTOR_ALLOW_READABLE_SECRETS"} <= settings
    read = _environment_variables()
    assert {
        "OKX_COLLECTOR_PURE_PYTHON",
        "TEST_PG_ADMIN_URL",
        "OKX_PREFECT_STATE_DIR",
    } <= read  # the scan works
    missing = sorted(name for name in settings | read if f"`{name}`" not in page)
    assert missing == [], f"docs/configuration.md lacks {missing}"


def test_every_config_key_is_in_configuration_md() -> None:
    page = _page("configuration.md")
    keys = _config_keys(CollectorsConfig)
    assert "exchanges.<name>.pairs[].inst_id" in keys and "batching.max_pending_rows" in keys
    missing = [key for key in keys if f"`{key}`" not in page]
    assert missing == [], f"docs/configuration.md lacks {missing}"


def _sections(page: str) -> dict[str, str]:
    """``### `table` `` headings of schema.md and the text under each, up to the next heading."""
    parts = re.split(r"^### `(\w+)`.*$", page, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_table_and_column_is_in_schema_md() -> None:
    sections = _sections(_page("schema.md"))
    assert set(Base.metadata.tables) <= set(sections), sorted(set(Base.metadata.tables) - set(sections))
    missing = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if not re.search(rf"^\| `{column.name}` \|", sections[table.name], flags=re.MULTILINE)
    ]
    assert missing == [], f"docs/schema.md lacks the rows of {missing}"
    for table in Base.metadata.tables.values():  # every index is named under its table
        for index in table.indexes:
            assert f"`{index.name}`" in sections[table.name], index.name


def test_the_index_links_every_page_and_the_links_resolve() -> None:
    index = _page("README.md")
    linked = set(_LINK.findall(index))
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert [p for p in pages if p not in linked] == []
    for name in _CHECKED_PAGES:
        for target in _LINK.findall(_page(name)):
            if "://" not in target:
                assert (DOCS / target).resolve().exists(), f"docs/{name}: broken link {target}"


def test_troubleshooting_covers_each_okx_case_with_symptom_action_and_fix() -> None:
    page = _page("troubleshooting.md")
    parts = re.split(r"^## ", page, flags=re.MULTILINE)[1:]
    titles = [part.splitlines()[0] for part in parts]
    for topic in ("4004", "64008", "50011", "60018", "UTC+8", "history", "clock"):
        matching = [part for title, part in zip(titles, parts, strict=True) if topic.lower() in title.lower()]
        assert len(matching) == 1, (topic, titles)
        for label in ("**Symptom.**", "**What the collector does.**", "**What you do.**"):
            assert label in matching[0], (topic, label)


def _example_blocks() -> list[str]:
    """The ```sql blocks of schema.md's "Example queries": PostgreSQL, SQLite, both databases."""
    section = _page("schema.md").split("## Example queries", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def _statements(block: str) -> list[str]:
    return [s.strip() for s in block.split(";\n") if s.strip() and not s.strip().startswith("SET ")]


def _fill_examples(engine: Engine, now_ms: int) -> None:
    trades, candles, coverage = (Base.metadata.tables[n] for n in ("trades", "candles", "coverage"))
    hour = 1_795_478_400_000  # 2026-11-24T00:00Z, the hour the examples ask for
    with engine.begin() as conn:
        conn.execute(insert(trades), [
            {"exchange": "okx", "inst_id": inst, "trade_id": tid, "ts": now_ms - 10_000 + tid, "price": Decimal(px),
             "size": Decimal("0.5"), "side": "buy", "source": "0", "recv_time": now_ms}
            for inst, tid, px in (("BTC-USDT", 1, "9.5"), ("BTC-USDT", 2, "10"), ("BTC-USDT", 5, "10.25"),
                                  ("ETH-USDT", 1, "3254.52"))
        ])  # fmt: skip
        conn.execute(insert(candles), [
            {"exchange": "okx", "inst_id": "BTC-USDT", "timeframe": "1m", "open_time": hour + 60_000 * k,
             "open": Decimal("63707.30"), "high": Decimal("63710"), "low": Decimal("63700.1"),
             "close": Decimal("63709.9"), "volume": Decimal("0.5"), "quote_volume": Decimal("31853.65"),
             "vwap": Decimal("63707.3"), "trade_count": 4, "buy_volume": Decimal("0.3"),
             "sell_volume": Decimal("0.2"), "first_trade_id": 1, "last_trade_id": 4, "first_trade_time": hour,
             "last_trade_time": hour + 30, "is_closed": True, "is_complete": True, "source": "live",
             "revision": 0, "updated_at": now_ms}
            for k in (0, 59, 60)  # 00:00 and 00:59 are in the hour, 01:00 is not
        ])  # fmt: skip
        conn.execute(
            insert(coverage),
            [
                {
                    "exchange": "okx",
                    "inst_id": "BTC-USDT",
                    "data_type": "trades",
                    "start_time": now_ms - 60_000,
                    "end_time": now_ms,
                    "status": "collected",
                    "reason": None,
                    "updated_at": now_ms,
                }
            ],
        )


def _run(engine: Engine, statement: str) -> list[tuple[object, ...]]:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(statement)  # no parameters: the SQL exactly as the page prints it
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        raw.close()


def test_the_example_queries_of_schema_md_run_and_answer(engine: Engine) -> None:
    postgres, sqlite, both = _example_blocks()
    _fill_examples(engine, int(time.time() * 1000))
    mine = _statements(postgres if engine.dialect.name == "postgresql" else sqlite)
    answers = [_run(engine, statement) for statement in mine]
    hour, recent, *rest = answers
    assert [str(row[1]) for row in hour] == ["63707.30", "63707.30"]  # 00:00 and 00:59, open with its scale
    assert [str(row[2]) for row in recent] == ["3254.52"]  # the one ETH-USDT trade of the last minute
    if engine.dialect.name == "sqlite":
        by_value = rest[0]
        assert dict((str(k), v) for k, v in by_value) == {"BTC-USDT": 10.25, "ETH-USDT": 3254.52}
    else:
        vwap = rest[0]
        assert sum(row[2] for row in vwap) == 3  # the three BTC-USDT trades of the last hour
    ledger = rest[-1]
    assert [row[:2] for row in ledger] == [("collected", 1)] and float(ledger[0][2]) == 60.0
    (holes,) = [_run(engine, statement) for statement in _statements(both)]
    assert holes == [(3, 4)]
