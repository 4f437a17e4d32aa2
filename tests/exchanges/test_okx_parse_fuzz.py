"""Hypothesis on mutated real frames: parse_frame never raises, never rejects a valid frame, and both trade fast
paths (pure-Python and compiled) agree with the general path on everything they take."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.exchanges.okx.events import Event, Rejected
from collectors.exchanges.okx.fast import TradeFastPath, new_fast_path
from collectors.exchanges.okx.parse import FrameParser, parse_frame
from tests.exchanges.okx_frames import RECV_2026_MS, all_frames, compact

R = RECV_2026_MS
FRAMES = all_frames()
EVENT_TYPES = Event.__args__  # type: ignore[attr-defined]
FAST_PATHS = (TradeFastPath(memo_size=64).parse, new_fast_path(compiled=True))  # small memo: filled, cleared
PARSERS = (FrameParser(memo_size=64, compiled=False), FrameParser(compiled=True))
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE: list[Any] = [
    None, True, False, 0, -1, 2**63, 2**64 + 1, -(2**70), 1.5, 1e308, float("inf"), "", " ", "-0", "0", "-1",
    "NaN", "Infinity", "1e999999", "1E-7", "0x10", "1_000", " 1", "1 ", "１２３", "٣", "9" * 5000, "1." + "0" * 80,
    "buy ", "BUY", "\x00", "\ud800", [], {}, ["1"], {"a": 1}, "snapshot", "update",
]  # fmt: skip


# A fresh copy per draw: the mutations below append to drawn lists and dicts, which must never change HOSTILE
# itself (hypothesis replays draws and fails with FlakyStrategyDefinition when a sampled value changed).
HOSTILE_VALUES = st.sampled_from(HOSTILE).map(copy.deepcopy)


def _check(text: str | bytes) -> Event:
    event = parse_frame(text, recv_ms=R)
    assert isinstance(event, EVENT_TYPES)
    for parser in PARSERS:
        assert parser.parse(text, recv_ms=R) == event
    if isinstance(event, Rejected) and isinstance(text, str):
        assert event.text == text and event.reason
    for bad in getattr(event, "rejected", ()):
        assert bad.text == text and bad.row is not None
    if isinstance(text, str):
        for fast_path in FAST_PATHS:
            fast = fast_path(text, R)
            if fast is not None:  # the space forces the general path; repr: the same Decimal digits too
                assert repr(fast) == repr(parse_frame(" " + text, recv_ms=R))
    return event


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = node
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return node


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_byte_flips_and_truncations_never_raise(text: str, data: st.DataObject) -> None:
    raw = bytearray(text.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _check(bytes(raw))
    _check(bytes(raw).decode("utf-8", "replace"))
    _check(text[: data.draw(st.integers(0, len(text)))])


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_type_swaps_hostile_numbers_dropped_and_extra_fields_never_raise(
    text: str, data: st.DataObject
) -> None:
    frame = json.loads(text)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(frame)))
        action = data.draw(st.sampled_from(["swap", "drop", "extra"]))
        if action == "swap":
            frame = _set(frame, path, data.draw(HOSTILE_VALUES | st.text(max_size=8) | st.integers()))
        elif action == "drop" and path:
            parent = frame
            for step in path[:-1]:
                parent = parent[step]
            del parent[path[-1]]
        elif action == "extra":
            target = frame
            for step in path:
                target = target[step]
            if isinstance(target, dict):
                target[data.draw(st.text(max_size=6))] = data.draw(HOSTILE_VALUES)
            elif isinstance(target, list):
                target.append(data.draw(HOSTILE_VALUES))
    mutated = json.dumps(frame, separators=(",", ":"), ensure_ascii=data.draw(st.booleans()))
    _check(mutated)


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_a_valid_frame_in_another_layout_or_with_unknown_fields_gives_the_same_event(
    text: str, data: st.DataObject
) -> None:
    expected = parse_frame(text, recv_ms=R)
    frame = json.loads(text)
    if "data" in frame and frame["data"] and isinstance(frame["data"][0], dict):
        for row in frame["data"]:
            row["newField"] = data.draw(st.sampled_from(["", "1", "x"]))  # OKX adds fields over time
    if data.draw(st.booleans()):
        frame = dict(reversed(list(frame.items())))
    indent = data.draw(st.sampled_from([None, 1]))
    relaid = json.dumps(frame, indent=indent, ensure_ascii=data.draw(st.booleans()))
    event = _check(relaid)
    assert not isinstance(event, Rejected), (event, relaid)
    assert event == expected


def test_hostile_values_are_unchanged_by_the_mutations() -> None:
    assert HOSTILE[-6:-2] == [[], {}, ["1"], {"a": 1}]


def test_the_original_frames_are_all_accepted() -> None:
    assert not [t for t in FRAMES if isinstance(_check(t), Rejected)]
    assert compact(json.loads(FRAMES[0])) == FRAMES[0]
