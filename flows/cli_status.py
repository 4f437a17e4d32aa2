"""``okx-collector status [--json]``: what a running collector is doing, and what the last 24 h hold.

The live part comes from a running collector's ``/status`` endpoint on the config's ``ops.metrics_port``
(``COLLECTOR_METRICS_PORT``): per pair and channel the state, last message age, rate, reconnects, gaps found /
filled / unrecoverable, rejected frames, and the writer's lag. The coverage part reads the database and works
with no collector running: per pair the seconds and share of the last 24 h that were collected, backfilled,
quiet, unrecoverable, an open gap or unwatched (:mod:`collectors.ops.coverage`). Exit 0 when the database could
be read (a collector that does not answer is reported, not an error). Registered by one line in
:func:`flows.cli.build_parser`.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported by the command itself: building the parser stays fast for every other command
    from collectors.ops.coverage import PairCoverage

__all__ = ["add_commands", "coverage_table", "live_table", "status_problem", "status_url"]

_EXCHANGE = "okx"
_CHANNEL_HEADER = (
    "pair", "channel", "state", "last msg", "msgs/s", "messages", "reconnects", "gaps found", "filled",
    "unrecoverable", "rejected",
)  # fmt: skip


def add_commands(sub: Any) -> None:
    """Add ``status`` to the ``okx-collector`` subparsers ``sub``."""
    status = sub.add_parser(
        "status", help="a running collector's streams (from its endpoint) and the last 24 h of coverage"
    )
    status.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    status.add_argument("--pairs", help="comma-separated instIds (default: every configured pair)")
    status.add_argument("--database-url", help="override DATABASE_URL")
    status.add_argument(
        "--endpoint",
        type=_endpoint,
        action="append",
        help="HOST:PORT of a collector's endpoint, repeatable (default: the config's ops.metrics_port)",
    )
    status.set_defaults(handler=_status)


_NUMBER = (int, float)
_OPTIONAL_TEXT = (str, type(None))
# what live_table reads from a /status document (collectors.ops.snapshot.snapshot_json writes it), with types
_PAIR_KEYS: dict[str, tuple[type, ...]] = {
    "inst_id": (str,), "state": (str,), "error": _OPTIONAL_TEXT, "channels": (list,),
    "gaps_found": (int,), "gaps_filled": (int,), "gaps_unrecoverable": (int,),
}  # fmt: skip
_CHANNEL_KEYS: dict[str, tuple[type, ...]] = {
    "channel": (str,), "state": (str,), "last_message_age_ms": (int, type(None)), "messages_per_s": _NUMBER,
    "messages": (int,), "reconnects": (int,), "rejected": (int,),
}  # fmt: skip
_WRITER_KEYS: dict[str, tuple[type, ...]] = {
    "lag_ms": _NUMBER, "pending_rows": (int,), "spilled_rows": (int,), "written_rows": (int,),
    "dead_rows": (int,), "healthy": (bool,),
}  # fmt: skip
_JSON_KIND = {list: "an array", str: "a string", type(None): "null", bool: "a boolean", int: "a number",
              float: "a number"}  # fmt: skip


def _shape_problem(doc: Any, keys: dict[str, tuple[type, ...]], where: str) -> str | None:
    if not isinstance(doc, dict):
        return f"{where} is not an object"
    for key, types in keys.items():
        if key not in doc:
            return f"{where} has no {key!r}" if where else f"no {key!r}"
        if not isinstance(doc[key], types) or (bool not in types and isinstance(doc[key], bool)):
            return f"{where + '.' if where else ''}{key} is {_JSON_KIND.get(type(doc[key]), 'another type')}"
    return None


def status_problem(doc: Any) -> str | None:
    """Why ``doc`` is not a ``/status`` document :func:`live_table` can show (None: it is one)."""
    if not isinstance(doc, dict):
        return f"a JSON {_JSON_KIND.get(type(doc), 'value').removeprefix('a ').removeprefix('an ')}, not an object"
    if "collector_id" not in doc:
        return "no 'collector_id'"
    if "pairs" not in doc:
        return "no 'pairs'"
    if not isinstance(doc["pairs"], list):
        return "'pairs' is not a list"
    for i, pair in enumerate(doc["pairs"]):
        problem = _shape_problem(pair, _PAIR_KEYS, f"pairs[{i}]")
        for j, channel in enumerate(pair["channels"] if problem is None else []):
            problem = problem or _shape_problem(channel, _CHANNEL_KEYS, f"pairs[{i}].channels[{j}]")
        if problem is not None:
            return problem
    return _shape_problem(doc.get("writer"), _WRITER_KEYS, "writer")


def _age(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


def live_table(doc: dict[str, Any]) -> str:
    """One row per pair and channel of a ``/status`` document, then the writer's line."""
    from collectors.live.status import table
    from collectors.logs import printable

    rows = []
    for p in doc["pairs"]:
        for c in p["channels"]:
            rows.append(
                (
                    p["inst_id"], c["channel"], c["state"], _age(c["last_message_age_ms"]),
                    f"{c['messages_per_s']:.1f}", c["messages"], c["reconnects"], p["gaps_found"],
                    p["gaps_filled"], p["gaps_unrecoverable"], c["rejected"],
                )
            )  # fmt: skip
    w = doc["writer"]
    writer = (
        f"writer: lag {w['lag_ms'] / 1000:.1f}s, queue {w['pending_rows']} rows, spilled {w['spilled_rows']}, "
        f"written {w['written_rows']}, dead {w['dead_rows']}, {'healthy' if w['healthy'] else 'UNHEALTHY'}"
    )
    pairs = "\n".join(
        printable(f"{p['inst_id']}: {p['state']}" + (f" ({p['error']})" if p["error"] else ""))
        for p in doc["pairs"]
    )
    return "\n".join([table(_CHANNEL_HEADER, rows), writer, pairs])


def coverage_table(coverage: list[PairCoverage]) -> str:
    """Seconds and share of the window per kind, one row per pair."""
    from collectors.live.status import table
    from collectors.ops.coverage import KINDS

    rows = [(c.inst_id, *(f"{c.ms[k] // 1000} s {c.percent(k):5.1f}%" for k in KINDS)) for c in coverage]
    return table(("pair", *KINDS), rows)


def _coverage_json(c: PairCoverage) -> dict[str, Any]:
    from collectors.ops.coverage import KINDS
    from collectors.quality.findings import iso

    return {
        "pair": c.inst_id,
        "from": iso(c.start_ms),
        "to": iso(c.end_ms),
        "seconds": {k: c.ms[k] / 1000 for k in KINDS},
        "percent": {k: round(c.percent(k), 3) for k in KINDS},
    }


def status_url(host: str, port: int) -> str:
    """The ``/status`` URL of a collector bound to ``host:port``: an IPv6 address in brackets, a wildcard bind
    (``0.0.0.0``, ``::``) dialled on loopback."""
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name
        return f"http://{host}:{port}/status"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}/status"


def _read_collector(host: str, port: int) -> tuple[dict[str, Any] | None, str]:
    """The ``/status`` document of the collector on ``host:port`` and its URL, or None and why not."""
    import httpx

    url = status_url(host, port)
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.TransportError as exc:
        return None, f"no collector answering at {url}: {type(exc).__name__}"
    if response.status_code != 200:
        return None, f"{url} answered {response.status_code}: {response.text[:200]}"
    try:
        doc: Any = response.json()
    except ValueError:  # something else listens there
        return None, f"{url} answered something other than a collector's status: {response.text[:200]!r}"
    problem = status_problem(doc)
    if problem is not None:  # another program's JSON, or a collector of another version
        return None, f"{url} answered JSON that is not a collector's status ({problem})"
    return doc, url


def _endpoint(text: str) -> tuple[str, int]:
    """``--endpoint``: ``HOST:PORT``, ``[IPv6]:PORT`` or ``PORT`` (host 127.0.0.1)."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HOST:PORT or PORT: {text!r}") from None
    if not 0 < number < 65_536:
        raise argparse.ArgumentTypeError(f"port out of range: {text!r}")
    return host or "127.0.0.1", number


def _collectors(args: argparse.Namespace, host: str, port: int) -> list[dict[str, Any]]:
    """``{"source", "status", "error"}`` of every endpoint asked: ``--endpoint``s, else the config's port."""
    endpoints = args.endpoint or ([(host, port)] if port else [])
    out = []
    for where_host, where_port in endpoints:
        doc, where = _read_collector(where_host, where_port)
        source = status_url(where_host, where_port)
        out.append({"source": source, "status": doc, "error": None if doc is not None else where})
    return out


def _status(args: argparse.Namespace) -> int:
    from collectors.config import load_config
    from collectors.logs import printable
    from collectors.ops.coverage import coverage_last_24h
    from collectors.ops.options import with_settings
    from collectors.quality.findings import iso
    from flows.cli import _database, _require_schema

    with _database(args) as (settings, engine):
        _require_schema(engine, settings)
        config = with_settings(load_config(settings.collector_config), settings)
        configured = (
            [p.inst_id for p in config.exchanges[_EXCHANGE].pairs] if _EXCHANGE in config.exchanges else []
        )
        pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else configured
        collectors = _collectors(args, config.ops.metrics_host, config.ops.metrics_port)
        now_ms = time.time_ns() // 1_000_000
        coverage = coverage_last_24h(engine, exchange=_EXCHANGE, inst_ids=pairs, now_ms=now_ms)
    if args.json:
        body = {"collectors": collectors, "coverage": [_coverage_json(c) for c in coverage]}
        print(json.dumps(body, indent=2))
        return 0
    if not collectors:
        print(
            "no collector endpoint configured (ops.metrics_port / COLLECTOR_METRICS_PORT is 0; or --endpoint)"
        )
    for c in collectors:  # an endpoint's text is the wire's: its control characters escaped
        if c["status"] is None:
            print(printable(c["error"]))
        else:
            print(printable(f"collector {c['status']['collector_id']} ({c['source']})"))
            print(live_table(c["status"]))
    if coverage:
        print(f"\ncoverage of the last 24 h ({iso(coverage[0].start_ms)} .. {iso(coverage[0].end_ms)}):")
        print(coverage_table(coverage))
    return 0
